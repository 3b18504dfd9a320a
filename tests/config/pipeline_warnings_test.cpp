// Valid configurations that lose data quietly are warned about, naming the stage.
#include <doctest/doctest.h>

#include <string>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "config/warnings.hpp"

namespace {

std::vector<std::string> warnings_of(const std::string& yaml) {
  etld::Diagnostics diags("p.yaml");
  auto config = etld::load_pipeline_text(yaml, "p.yaml", diags);
  REQUIRE_MESSAGE(config, diags.format());
  return etld::pipeline_warnings(*config);
}

const std::string kStages = R"(stages:
  gen: {type: generate, count: 1, template: '{}'}
  out: {type: stdout, inputs: [gen]}
  discard: {type: "null", inputs: [gen]}
)";

}  // namespace

TEST_SUITE("pipeline warnings") {
  TEST_CASE("sinks without a dead-letter destination are named: their bad records are dropped") {
    auto w = warnings_of("pipeline: p\n" + kStages);
    REQUIRE(w.size() == 2);
    CHECK(w[0].starts_with("p.yaml:4:3: warning: stage 'out' (stdout) has no dead-letter destination"));
    CHECK(w[0].find("dropped") != std::string::npos);
    CHECK(w[1].find("stage 'discard' (null)") != std::string::npos);
    // Under pause_partition nothing is committed past a bad record: nothing to warn about.
    CHECK(warnings_of("pipeline: p\non_poison: pause_partition\n" + kStages).empty());
  }
}
