// `etld tap STAGE`: prints a sample of the live events leaving a stage of a running etld, from its
// admin endpoint's GET /tap (daemon/admin_tap.hpp), with the admin bearer token. Text: one line
// per event; --json: the endpoint's NDJSON as it comes.
#pragma once

#include <string>
#include <vector>

namespace etld {

extern const char* const kTapUsage;

// `args`: what follows `etld tap`. 0 done, 1 the endpoint could not be read or refused, 2 usage
// error.
int tap_main(const std::vector<std::string>& args);

}  // namespace etld
