// The engine binds a sink's offset store to the source feeding it when it builds the graph, and
// keeps that binding across a restart of the source, a reload that changes the source, and one
// that changes the sink (then the source is rebuilt with the new store). Validating another file
// meanwhile changes nothing: configure has no side effect.
#include <doctest/doctest.h>

#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "stages/engine/offset_store.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/test_stages.hpp"

using namespace etld;
using namespace std::chrono_literals;

namespace {

// What each start of a test_positions source saw as its offset store, by probe name.
std::mutex seen_mu;
std::map<std::string, std::vector<OffsetStore*>> seen_stores;
std::map<std::string, int> failures_left;

std::vector<OffsetStore*> starts(const std::string& probe) {
  std::lock_guard lock(seen_mu);
  return seen_stores[probe];
}

class NullStore final : public OffsetStore {
 public:
  std::string description() const override { return "test store"; }
  void claim(std::vector<PartitionClaimRequest>, ClaimDone done) override { done({}, ""); }
  void release(const std::string&, std::int32_t, const TrackedPartition*) override {}
  std::int64_t written(const std::string&, std::int32_t) const override { return -1; }
  std::int64_t epoch(const std::string&, std::int32_t) const override { return 0; }
};

// Emits nothing; records its store on start, then fails (asynchronously) `fail` times in all.
class PositionsSource final : public Source {
 public:
  explicit PositionsSource(std::string probe) : probe_(std::move(probe)) {}
  void start(SourceContext& ctx) override {
    ctx_ = &ctx;
    bool fail = false;
    {
      std::lock_guard lock(seen_mu);
      seen_stores[probe_].push_back(ctx.offset_store().get());
      fail = failures_left[probe_]-- > 0;
    }
    if (fail) ctx.fail(std::make_exception_ptr(std::runtime_error("test failure")));
  }
  void on_demand() override {}
  void stop() override { ctx_->finish(); }

 private:
  std::string probe_;
  SourceContext* ctx_ = nullptr;
};

struct PositionsFactory final : StageFactory {
  std::string probe;
  std::unique_ptr<Source> make_source(int) override { return std::make_unique<PositionsSource>(probe); }
};

class SettlingSink final : public Sink {
 public:
  void start(SinkContext& ctx) override { ctx_ = &ctx; }
  void consume(Batch&& batch) override {
    settle_all(batch, AckStatus::done);
    ctx_->done(batch.size());
  }
  void drain() override { ctx_->drained(); }

 private:
  SinkContext* ctx_ = nullptr;
};

struct StoreSinkFactory final : StageFactory {
  std::shared_ptr<OffsetStore> store = std::make_shared<NullStore>();
  std::unique_ptr<Sink> make_sink(int) override { return std::make_unique<SettlingSink>(); }
  std::shared_ptr<OffsetStore> offset_store() const override { return store; }
};

const StageRegistration positions_reg{StageType{
    .name = "test_positions",
    .role = Role::source,
    .summary = "test source recording the offset store it is bound to",
    .options = {{.name = "probe", .kind = OptionKind::string, .doc = "probe name", .required = true},
                {.name = "setting", .kind = OptionKind::integer, .doc = "changed by reloads"}},
    .configure = [](const StageConfig& sc, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
      auto f = std::make_unique<PositionsFactory>();
      f->probe = sc.options.get_string("probe");
      return f;
    },
    .traits = {.positions_in_store = true}}};

const StageRegistration store_sink_reg{
    StageType{.name = "test_store_sink",
              .role = Role::sink,
              .summary = "test sink offering an offset store",
              .options = {{.name = "delivery", .kind = OptionKind::string, .doc = "for the error's location"},
                          {.name = "setting", .kind = OptionKind::integer, .doc = "changed by reloads"}},
              .configure = [](const StageConfig&, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
                return std::make_unique<StoreSinkFactory>();
              }}};

std::string yaml(const std::string& probe, int source_setting, int sink_setting,
                 const std::string& middle = "") {
  return "threads: 2\nstages:\n  in: { type: test_positions, probe: " + probe +
         ", setting: " + std::to_string(source_setting) + ", restart_backoff: 1ms }\n" + middle +
         "  out: { type: test_store_sink, inputs: [" + (middle.empty() ? "in" : "mid") +
         "], delivery: exactly_once, setting: " + std::to_string(sink_setting) + " }\n";
}

OffsetStore* store_of(const PipelineConfig& c) { return c.find("out")->factory->offset_store().get(); }

bool wait_starts(const std::string& probe, std::size_t n) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (starts(probe).size() < n && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  return starts(probe).size() >= n;
}

std::string load_error(const std::string& text) {
  Diagnostics diags("p.yaml");
  return load_pipeline_text(text, "p.yaml", diags) ? "" : diags.format();
}

}  // namespace

TEST_CASE("binding: the source gets its sink's store, and keeps it across its restarts") {
  {
    std::lock_guard lock(seen_mu);
    failures_left["restart"] = 1;
  }
  auto config =
      test::config_from(yaml("restart", 1, 1, "  mid: { type: map, inputs: [in], set: { x: '1' } }\n"));
  Pipeline p(config);
  p.start();
  // Loading (validating) the same file again makes new factories and must not disturb the
  // running graph's binding (a reload used to unregister the running sink's store here).
  REQUIRE(load_error(yaml("restart", 1, 1)).empty());
  REQUIRE(wait_starts("restart", 2));  // the first start failed; the restart policy ran it again
  auto seen = starts("restart");
  CHECK(seen[0] == store_of(*config));
  CHECK(seen[1] == store_of(*config));
  p.stop();
  CHECK(p.wait_for(10s));
}

namespace {

// Starts yaml(probe, 1, 1), waits for the source, reloads it into yaml(probe, source_setting,
// sink_setting) and waits for the source's second start.
struct Reloaded {
  std::shared_ptr<const PipelineConfig> before, after;
  Reconfiguration result;
};
Reloaded reload(const std::string& probe, int source_setting, int sink_setting) {
  Reloaded out{
      test::config_from(yaml(probe, 1, 1)), test::config_from(yaml(probe, source_setting, sink_setting)), {}};
  Pipeline p(out.before);
  p.start();
  REQUIRE(wait_starts(probe, 1));
  out.result = p.reconfigure(out.after, 10s);
  REQUIRE(wait_starts(probe, 2));
  p.stop();
  CHECK(p.wait_for(10s));
  return out;
}

}  // namespace

TEST_CASE("binding: a reload that changes the source binds the new source to the running sink's store") {
  auto r = reload("source-change", 2, 1);
  CHECK(r.result.error == "");
  CHECK(r.result.restarted == std::vector<std::string>{"in"});
  CHECK(starts("source-change")[1] == store_of(*r.before));  // the sink kept its store
}

TEST_CASE("binding: a reload that changes the sink rebuilds its source with the new store") {
  auto r = reload("sink-change", 1, 2);
  CHECK(r.result.error == "");
  CHECK(r.result.restarted == std::vector<std::string>{"in", "out"});
  CHECK(starts("sink-change")[1] == store_of(*r.after));
  CHECK(store_of(*r.after) != store_of(*r.before));
}

TEST_CASE("binding: validation refuses the shapes under which the store cannot hold the positions") {
  auto err = load_error(
      "stages:\n  in: { type: generate, count: 1 }\n  out: { type: test_store_sink, inputs: [in], "
      "delivery: exactly_once }\n");
  CHECK(err.find("p.yaml:3:") == 0);
  CHECK(err.find("needs a source that can keep its positions") != std::string::npos);
  err = load_error(yaml("shape", 1, 1, "  mid: { type: flat_map, inputs: [in], explode: items }\n"));
  CHECK(err.find("stage 'mid' (type flat_map) between the source and the sink does not keep one output") !=
        std::string::npos);
  err = load_error(yaml("shape", 1, 1) + "  other: { type: stdout, inputs: [in] }\n");
  CHECK(err.find("stage 'other' also reads from 'in'") != std::string::npos);
  err = load_error(
      yaml("shape", 1, 1, "  mid: { type: map, inputs: [in], concurrency: 2, set: { x: '1' } }\n"));
  CHECK(err.find("needs each partition's records in order") != std::string::npos);
  err = load_error(
      "stages:\n  a: { type: test_positions, probe: two }\n  b: { type: test_positions, probe: two }\n"
      "  out: { type: test_store_sink, inputs: [a, b], delivery: exactly_once }\n");
  CHECK(err.find("needs exactly one source upstream; stage 'out' is fed by 'b' and 'a'") !=
        std::string::npos);
}
