// A stage's metrics and readiness come from its context: series labelled with the pipeline,
// stage and instance, and probes owned by the pipeline that runs the stage, so that one
// pipeline's probes never make another unready and a destroyed instance's probe stops counting.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stages/engine/metrics_scope.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/readiness.hpp"
#include "stages/engine/registry.hpp"
#include "stages/engine/stage.hpp"
#include "tests/support/test_stages.hpp"

namespace etld {
namespace {

using namespace std::chrono_literals;

constexpr metrics::Metric kMeteredEvents{"etld_test_metered_events_total", metrics::Type::counter,
                                         "Events the test_metered sink consumed."};

std::atomic<int> lives{0};  // test_metered instances made, for the probes' names

// A sink that counts what it consumes through its scope and holds a readiness probe, ready from
// its start, from its first batch, or never (`ready`); with `fail_first`, its first life throws
// on its first batch (the restart policy then replaces the instance) before it sets anything.
class MeteredSink : public Sink {
 public:
  enum class Ready { start, first_batch, never };
  MeteredSink(Ready ready, bool fail) : ready_(ready), fail_(fail) {}
  void start(SinkContext& ctx) override {
    ctx_ = &ctx;
    events_ = ctx.metrics().counter(kMeteredEvents);
    probe_ = ctx.readiness("metered sink '" + ctx.stage_name() + "' life " + std::to_string(++lives));
    probe_.set(ready_ == Ready::start);
  }
  void consume(Batch&& batch) override {
    if (fail_) throw std::runtime_error("test_metered: first life fails");
    if (ready_ == Ready::first_batch) probe_.set(true);
    events_->inc(batch.size());
    settle_all(batch, AckStatus::done);
    ctx_->done(batch.size());
  }
  void drain() override { ctx_->drained(); }

 private:
  Ready ready_;
  bool fail_;
  SinkContext* ctx_ = nullptr;
  std::shared_ptr<metrics::Counter> events_;
  ReadinessProbe probe_;
};

struct MeteredFactory : StageFactory {
  MeteredSink::Ready ready = MeteredSink::Ready::start;
  bool fail_first = false;
  std::atomic<int> made{0};
  std::unique_ptr<Sink> make_sink(int) override {
    return std::make_unique<MeteredSink>(ready, fail_first && made++ == 0);
  }
};

const StageRegistration metered_reg{
    StageType{.name = "test_metered",
              .role = Role::sink,
              .summary = "test sink counting through its metrics scope, with a readiness probe",
              .options = {{.name = "ready",
                           .kind = OptionKind::choice,
                           .doc = "when the probe is ready",
                           .default_text = "start",
                           .choices = {"start", "first_batch", "never"}},
                          {.name = "fail_first",
                           .kind = OptionKind::boolean,
                           .doc = "first instance throws",
                           .default_text = "false"}},
              .configure = [](const StageConfig& sc, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
                auto f = std::make_unique<MeteredFactory>();
                auto ready = sc.options.get_string("ready");
                f->ready = ready == "never"         ? MeteredSink::Ready::never
                           : ready == "first_batch" ? MeteredSink::Ready::first_batch
                                                    : MeteredSink::Ready::start;
                f->fail_first = sc.options.get_bool("fail_first");
                return f;
              }}};

std::string scrape(const metrics::Registry& r) {
  metrics::Exposition out;
  r.collect(out);
  return out.render();
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

std::string yaml(const std::string& pipeline, const std::string& sink_options,
                 const std::string& source_options) {
  return "pipeline: " + pipeline + "\nstages:\n  gen: { type: generate" + source_options +
         " }\n  out: { type: test_metered, inputs: [gen]" + sink_options + " }\n";
}

}  // namespace

TEST_CASE("a scope's series carry its pipeline, stage and instance labels, declared once") {
  metrics::Registry r;
  metrics::MetricsScope scope(r, "orders", "db", 3);
  scope.counter(kMeteredEvents)->inc(2);
  scope.counter(kMeteredEvents)->inc();  // the same series again
  CHECK(scrape(r) ==
        "# HELP etld_test_metered_events_total Events the test_metered sink consumed.\n"
        "# TYPE etld_test_metered_events_total counter\n"
        "etld_test_metered_events_total{pipeline=\"orders\",stage=\"db\",instance=\"3\"} 3\n");
  CHECK_THROWS_AS(scope.gauge(kMeteredEvents), std::logic_error);  // declared a counter
}

TEST_CASE("a running stage's scope renders its series with its pipeline, stage and instance") {
  auto shared = std::make_shared<metrics::Registry>();  // as the daemon shares one across pipelines
  Pipeline a(test::config_from(yaml("alpha", ", concurrency: 2", ", count: 10")), shared);
  Pipeline b(test::config_from(yaml("beta", "", ", count: 4")), shared);
  a.start();
  b.start();
  REQUIRE(a.wait_for(10s));
  REQUIRE(b.wait_for(10s));
  CHECK_FALSE(a.error().has_value());
  CHECK_FALSE(b.error().has_value());
  auto text = scrape(*shared);
  CHECK(text.find("# TYPE etld_test_metered_events_total counter\n") != std::string::npos);
  CHECK(text.find("etld_test_metered_events_total{pipeline=\"beta\",stage=\"out\",instance=\"0\"} 4\n") !=
        std::string::npos);
  // Two instances of alpha's sink, ten events between them, each under its own instance label.
  double alpha = 0;
  for (const char* instance : {"0", "1"}) {
    auto at =
        text.find(std::string("etld_test_metered_events_total{pipeline=\"alpha\",stage=\"out\",instance=\"") +
                  instance + "\"} ");
    REQUIRE(at != std::string::npos);
    alpha += std::stod(text.substr(text.find("} ", at) + 2));
  }
  CHECK(alpha == 10);
  // A pipeline of its own registry sees only its own series.
  Pipeline c(test::config_from(yaml("gamma", "", ", count: 1")));
  c.start();
  REQUIRE(c.wait_for(10s));
  CHECK(scrape(c.metrics()) ==
        "# HELP etld_test_metered_events_total Events the test_metered sink consumed.\n"
        "# TYPE etld_test_metered_events_total counter\n"
        "etld_test_metered_events_total{pipeline=\"gamma\",stage=\"out\",instance=\"0\"} 1\n");
}

TEST_CASE("one pipeline's readiness probe does not make another, running or stopped, unready") {
  Pipeline waiting(test::config_from(yaml("waiting", ", ready: never", ", rate: 1000")));
  Pipeline ready(test::config_from(yaml("ready", "", ", rate: 1000")));
  waiting.start();
  ready.start();
  REQUIRE(wait_until([&] { return !waiting.unready_components().empty(); }));
  auto unready = waiting.unready_components();
  REQUIRE(unready.size() == 1);
  CHECK(unready[0].starts_with("metered sink 'out' life "));
  CHECK(ready.unready_components().empty());
  CHECK(unready_reason(ready.running(), ready.unready_components()).empty());
  CHECK(unready_reason(waiting.running(), waiting.unready_components()) == unready[0]);

  // Stopped, its sink still holds the unready probe: the running pipeline stays ready.
  waiting.stop();
  REQUIRE(waiting.wait_for(10s));
  CHECK(unready_reason(waiting.running(), waiting.unready_components()) ==
        "the pipeline is not running (starting, draining or stopped)");
  CHECK(ready.unready_components().empty());
  CHECK(unready_reason(ready.running(), ready.unready_components()).empty());
  ready.stop();
  REQUIRE(ready.wait_for(10s));
}

TEST_CASE("a destroyed instance's readiness probe stops counting") {
  Readiness readiness;
  {
    auto probe = readiness.probe("sink 'db' (instance 0): not connected");
    CHECK(readiness.unready() == std::vector<std::string>{"sink 'db' (instance 0): not connected"});
    auto moved = std::move(probe);  // the probe moves with its owner, still counted once
    CHECK(readiness.unready().size() == 1);
    moved.set(true);
    CHECK(readiness.unready().empty());
    moved.set(false);
    CHECK(readiness.unready().size() == 1);
  }
  CHECK(readiness.unready().empty());

  // In a pipeline: the first instance fails before it is ready and is replaced by the restart
  // policy; the replacement becomes ready, and the failed one's probe no longer counts.
  Pipeline p(test::config_from(yaml("restarts", ", fail_first: true, ready: first_batch", ", rate: 1000")));
  p.start();
  CHECK(wait_until([&] {
    for (const auto& s : p.stats())
      if (s.name == "out" && s.restarts == 1 && s.acked > 0) return true;
    return false;
  }));
  CHECK(p.unready_components().empty());
  p.stop();
  REQUIRE(p.wait_for(10s));  // its error (the batch the first life dropped settled failed) is not ours
}

}  // namespace etld
