// The stage reference (docs/stages.md), generated from the registered stage types' option
// declarations so that the docs cannot drift from what the loader accepts.
#pragma once

#include <string>

namespace etld {

// Markdown for every registered stage type (by role, then name) and the common stage options.
// Deterministic: the same registry gives the same bytes.
std::string stage_reference_markdown();

}  // namespace etld
