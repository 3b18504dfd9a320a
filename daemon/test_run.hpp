// Runs one test case of `etld test` (docs/testing.md): the real transforms its stages' factories
// make, one instance each, driven as the engine's transform runner drives them, without Kafka,
// PostgreSQL or threads. The inputs go through the path in one batch; then each stage in turn
// reaches end of input (its finish(): a reduce's totals, the windows still open), and what that
// emits goes on through the stages after it. Rejected events pass the later stages untouched,
// as in a running pipeline. Timers of the stages never fire: a test is independent of the clock.
#pragma once

#include <string>
#include <vector>

#include "config/schema/pipeline.hpp"
#include "config/test_spec.hpp"
#include "stages/engine/event.hpp"

namespace etld {

struct CaseRun {
  std::vector<Event> outputs;       // what left the last stage, in order
  std::vector<Event> dead_letters;  // the rejected events, as a sink would receive them
  // What went wrong beyond the data: a stage threw or failed, an input left unsettled.
  std::vector<std::string> errors;
};

// `path` holds the case's stages, in its order; each has its factory (loaded by the loader).
CaseRun run_case(const TestCase& test, const std::vector<const StageConfig*>& path);

}  // namespace etld
