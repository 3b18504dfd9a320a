// `etld test FILE...`: runs the test cases of each file (config/test_spec.hpp) against the real
// transforms of the pipeline they name (daemon/test_run.hpp) and prints each result; a failure
// with its file:line, its name and a diff of the expected and actual events. docs/testing.md.
#pragma once

#include <string>
#include <vector>

namespace etld {

// What `etld test --help` prints.
extern const char* const kTestUsage;

// 0 when every case passed, 1 when one failed, 2 when a test file or its pipeline is invalid
// (its errors on stderr as file:line:column; its cases are not run).
int run_test_files(const std::vector<std::string>& files);

}  // namespace etld
