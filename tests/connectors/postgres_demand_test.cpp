// The postgres sink asks for several batches of credit unless the pipeline says otherwise: the
// engine's default of 1000 cut every default batch of 10,000 rows at 1,000 and left nothing in
// flight while a batch was written.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"

namespace {

const etld::StageConfig& sink_of(const std::string& sink_options,
                                 std::unique_ptr<etld::PipelineConfig>& keep) {
  const std::string yaml =
      "pipeline: p\nstages:\n  in:\n    type: generate\n  out:\n    type: postgres\n    inputs: [in]\n"
      "    dsn: 'host=127.0.0.1'\n    table: t\n    columns: {id: bigint}\n" +
      sink_options;
  etld::Diagnostics diags("p.yaml");
  keep = etld::load_pipeline_text(yaml, "p.yaml", diags);
  REQUIRE_MESSAGE(keep, diags.format());
  return *keep->find("out");
}

}  // namespace

TEST_SUITE("postgres sink demand") {
  TEST_CASE("the default max_demand holds at least two batches, and never less than 20000") {
    std::unique_ptr<etld::PipelineConfig> p;
    CHECK(sink_of("", p).max_demand == 20000);
    CHECK(sink_of("", p).min_demand == 10000);
    CHECK(sink_of("    batch: {max_rows: 1000}\n", p).max_demand == 20000);
    CHECK(sink_of("    batch: {max_rows: 50000, max_wait: 1s}\n", p).max_demand == 100000);
  }

  TEST_CASE("a max_rows from the environment sizes the default max_demand as written out would") {
    // The default demand once read max_rows without expanding ${...}: it sized for 10,000 rows.
    ::setenv("ETLD_DEMAND_TEST_ROWS", "50000", 1);
    std::unique_ptr<etld::PipelineConfig> p;
    CHECK(sink_of("    batch: {max_rows: '${ETLD_DEMAND_TEST_ROWS}'}\n", p).max_demand == 100000);
  }

  TEST_CASE("what the pipeline sets wins") {
    std::unique_ptr<etld::PipelineConfig> p;
    CHECK(sink_of("    max_demand: 500\n", p).max_demand == 500);
    CHECK(sink_of("    max_demand: 500\n    batch: {max_rows: 50000}\n", p).max_demand == 500);
  }

  TEST_CASE("a bad max_rows is still reported by the sink, not by the default") {
    etld::Diagnostics diags("p.yaml");
    auto p = etld::load_pipeline_text(
        "pipeline: p\nstages:\n  in:\n    type: generate\n  out:\n    type: postgres\n    inputs: [in]\n"
        "    dsn: 'host=127.0.0.1'\n    table: t\n    columns: {id: bigint}\n    batch: {max_rows: lots}\n",
        "p.yaml", diags);
    CHECK(p == nullptr);
    CHECK(diags.format().find("p.yaml:11:") != std::string::npos);
  }
}
