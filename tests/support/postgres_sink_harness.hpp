// A postgres sink for service tests, outside the engine: its stage config from YAML options, the
// ConfigError they raise, and one instance on a real io_context (the dev environment's
// PostgreSQL, batches of up to 1,000 rows cut after 10 ms) fed batches whose every event
// settles before `consume` returns.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "config/schema/diagnostics.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/postgres_scalar.hpp"
#include "tests/support/test_stages.hpp"

namespace etld::test {

// "<prefix>_<base>_<pid>_<n>": a name no other test process uses.
inline std::string unique_name(const std::string& prefix, const std::string& base) {
  static int n = 0;
  return prefix + "_" + base + "_" + std::to_string(::getpid()) + "_" + std::to_string(++n);
}

inline StageConfig postgres_stage(const std::string& name, const std::string& yaml) {
  const StageType* type = find_stage_type("postgres");
  REQUIRE(type != nullptr);
  StageConfig cfg;
  cfg.name = name;
  cfg.type = "postgres";
  cfg.node = YAML::Load(yaml);
  cfg.options = Options(cfg.node, &type->options);
  return cfg;
}

// "line: message" of the ConfigError the options (after a first line `dsn: ...`) raise, or "".
inline std::string postgres_option_error(const std::string& yaml) {
  try {
    PipelineConfig pipeline;
    pg::parse_config(postgres_stage("to_pg", "dsn: 'host=localhost'\n" + yaml), pipeline);
  } catch (const ConfigError& e) {
    return std::to_string(e.mark().line + 1) + ": " + e.what();
  }
  return "";
}

struct PostgresSinkHarness {
  boost::asio::io_context io;
  FakeSinkContext ctx{io, "to_pg"};
  std::shared_ptr<RecordingAcks> acks = std::make_shared<RecordingAcks>();
  std::unique_ptr<StageFactory> factory;
  std::unique_ptr<Sink> sink;
  std::uint64_t next = 0;  // the next event's offset and ack token

  PostgresSinkHarness(const std::string& name, const std::string& options, const std::string& pipeline_name) {
    PipelineConfig pipeline;
    pipeline.name = pipeline_name;
    factory =
        find_stage_type("postgres")
            ->configure(postgres_stage(name, "dsn: '" + dsn() +
                                                 "'\nbatch: {max_rows: 1000, max_wait: 10ms}\n" + options),
                        pipeline);
    sink = factory->make_sink(0);
    ctx.start(*sink);
    run_idle(io);
  }
  ~PostgresSinkHarness() {
    sink.reset();
    run_idle(io);
  }
  // The event's offset and ack, numbered in turn.
  void number(Event& e) {
    e.offset = static_cast<std::int64_t>(next);
    e.ack = Ack(acks, next++);
  }
  // Sends the batch and waits until every event of it is settled.
  void consume(Batch b) {
    using namespace std::chrono_literals;
    const std::size_t want = ctx.done_total + b.size();
    ctx.consume(*sink, std::move(b));
    REQUIRE(run_until(
        io, [&] { return ctx.done_total >= want || ctx.error != nullptr; }, 20s));
    REQUIRE_MESSAGE(ctx.error == nullptr, ctx.failure_text());
  }
};

}  // namespace etld::test
