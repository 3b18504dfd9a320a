// Minimal SourceContext / SinkContext implementations for unit tests of single stages. Callbacks
// run on a real strand of a boost::asio::io_context that the test drives from its own thread
// (run_until / run_idle), so a test observes exactly what a stage did after each step.
// Threading: everything runs on the test thread; the contexts record (and throw on) calls made
// off the stage's strand and emits beyond demand, so contract violations fail the test.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "config/schema/pipeline.hpp"
#include "stages/engine/event.hpp"
#include "stages/engine/metrics_scope.hpp"
#include "stages/engine/readiness.hpp"
#include "stages/engine/registry.hpp"
#include "stages/engine/stage.hpp"

namespace etld::test {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

// A logger that discards everything (shared by all fake contexts).
spdlog::logger& null_logger();

// Runs `io` until `pred` holds or `timeout` passes; returns pred(). Restarts a stopped context.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));
// Runs every handler that is ready now (and those they post), without waiting for timers.
void run_idle(boost::asio::io_context& io);

class FakeSourceContext : public SourceContext {
 public:
  explicit FakeSourceContext(boost::asio::io_context& io, std::string name = "src", int instance = 0);

  const std::string& stage_name() const override { return name_; }
  int instance() const override { return instance_; }
  boost::asio::any_io_executor executor() const override { return strand_; }
  spdlog::logger& log() const override { return null_logger(); }
  const metrics::MetricsScope& metrics() const override { return scope_; }
  ReadinessProbe readiness(std::string what) override { return readiness_probes.probe(std::move(what)); }
  void fail(std::exception_ptr error) override;
  void emit(Batch&& events) override;
  std::size_t demand() const override { return demand_; }
  void finish() override;

  // Test side: each posts to the stage's strand, like the runtime does.
  void start(Source& source);
  void grant(Source& source, std::size_t n);  // demand += n, then source.on_demand()
  void stop(Source& source);

  std::vector<Event> events;             // everything emitted, in order
  std::vector<std::size_t> batch_sizes;  // size of each emit() call
  int finish_calls = 0;
  std::exception_ptr error;
  int violations = 0;  // off-strand calls or emits beyond demand (each also throws)
  std::string last_violation;

  bool finished() const { return finish_calls > 0; }
  std::string failure_text() const;  // the fail() exception's message, "" if none
  metrics::Registry registry;        // what the stage registered through metrics()
  Readiness readiness_probes;        // the probes it asked for

 private:
  void check_strand(const char* what);
  boost::asio::io_context& io_;
  Strand strand_;
  std::string name_;
  int instance_;
  std::size_t demand_ = 0;
  metrics::MetricsScope scope_{registry, "test", name_, instance_};
};

class FakeSinkContext : public SinkContext {
 public:
  explicit FakeSinkContext(boost::asio::io_context& io, std::string name = "sink", int instance = 0);

  const std::string& stage_name() const override { return name_; }
  int instance() const override { return instance_; }
  boost::asio::any_io_executor executor() const override { return strand_; }
  spdlog::logger& log() const override { return null_logger(); }
  const metrics::MetricsScope& metrics() const override { return scope_; }
  ReadinessProbe readiness(std::string what) override { return readiness_probes.probe(std::move(what)); }
  void fail(std::exception_ptr error) override;
  void done(std::size_t n) override;
  void drained() override;

  void start(Sink& sink);
  void consume(Sink& sink, Batch&& batch);  // moves the batch onto the strand
  // consume(), then runs the io_context until the sink has called done() for the whole batch,
  // or failed, or `timeout` passed: whether all of it is done.
  bool consume_until_done(Sink& sink, Batch&& batch, std::chrono::milliseconds timeout);
  void drain(Sink& sink);

  std::size_t done_total = 0;
  std::vector<std::size_t> done_calls;
  int drained_calls = 0;
  std::exception_ptr error;
  int violations = 0;
  std::string last_violation;

  std::string failure_text() const;
  metrics::Registry registry;  // what the stage registered through metrics()
  Readiness readiness_probes;  // the probes it asked for

 private:
  void check_strand(const char* what);
  boost::asio::io_context& io_;
  Strand strand_;
  std::string name_;
  int instance_;
  metrics::MetricsScope scope_{registry, "test", name_, instance_};
};

// An AckTarget that remembers every settlement, to assert "each event settled exactly once".
class RecordingAcks : public AckTarget {
 public:
  void settle(std::uint64_t token, AckStatus status) override;

  std::size_t total() const;                  // settlements, duplicates included
  std::size_t count(AckStatus status) const;  // settlements with this status
  bool settled_once(std::uint64_t token, AckStatus status) const;
  // Tokens [0, n) each settled exactly once with `status`, and nothing else settled.
  bool exactly_once(std::uint64_t n, AckStatus status) const;

 private:
  mutable std::mutex mu_;
  std::map<std::uint64_t, std::vector<AckStatus>> seen_;
};

// A stage of a registered type with its options from YAML text ("{}" for none), as the loader
// would hand it to the type's configure (without the common options' checks).
StageConfig stage_config(const std::string& type, const std::string& options_yaml,
                         const std::string& name = "stage", int concurrency = 1);

// Configures a registered stage type from YAML text holding just its options ("{}" for none).
// Throws ConfigError like the loader would.
std::unique_ptr<StageFactory> configure_stage(const std::string& type, const std::string& options_yaml,
                                              const std::string& name = "stage", int concurrency = 1);

// Events whose raw Event::value is each of `values` (unparsed), acked to `acks` with tokens 0, 1, ...
Batch make_events(const std::vector<std::string>& values, const std::shared_ptr<AckTarget>& acks,
                  std::uint64_t first_token = 0);

}  // namespace etld::test
