#include "daemon/test_run.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <memory>
#include <mutex>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include "stages/engine/metrics_scope.hpp"
#include "stages/engine/readiness.hpp"
#include "stages/engine/registry.hpp"
#include "stages/engine/stage.hpp"

namespace etld {

namespace {

std::string exception_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

// The context of one stage instance under test. Its executor belongs to an io_context nothing
// runs, so timers a stage arms never fire; its logs are dropped (the test's result is what it
// shows); fail() is kept as the case's error.
class CaseStageContext final : public StageContext {
 public:
  CaseStageContext(boost::asio::io_context& io, std::string name, std::vector<std::string>& errors)
      : io_(io), name_(std::move(name)), errors_(errors) {}
  const std::string& stage_name() const override { return name_; }
  int instance() const override { return 0; }
  boost::asio::any_io_executor executor() const override { return io_.get_executor(); }
  spdlog::logger& log() const override {
    static auto logger =
        std::make_shared<spdlog::logger>("etld-test", std::make_shared<spdlog::sinks::null_sink_mt>());
    return *logger;
  }
  const metrics::MetricsScope& metrics() const override { return scope_; }
  ReadinessProbe readiness(std::string what) override { return readiness_.probe(std::move(what)); }
  void fail(std::exception_ptr error) override {
    errors_.push_back("stage '" + name_ + "' failed: " + exception_text(error));
  }

 private:
  boost::asio::io_context& io_;
  std::string name_;
  std::vector<std::string>& errors_;
  metrics::Registry registry_;
  metrics::MetricsScope scope_{registry_, "etld-test", name_, 0};
  Readiness readiness_;
};

// How each input was settled, to find one a stage dropped without settling it.
class InputAcks final : public AckTarget {
 public:
  explicit InputAcks(std::size_t n) : statuses_(n, kUnsettled) {}
  void settle(std::uint64_t token, AckStatus status) override {
    std::lock_guard lock(mu_);
    if (token < statuses_.size()) statuses_[token] = static_cast<int>(status);
  }
  // "input 2 (...)" for each input settled `failed` (an Ack destroyed unsettled) or not at all.
  std::vector<std::string> lost() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < statuses_.size(); ++i)
      if (statuses_[i] == kUnsettled || statuses_[i] == static_cast<int>(AckStatus::failed))
        out.push_back("input " + std::to_string(i + 1) +
                      " was dropped without being settled (a stage lost it: its offset would never commit)");
    return out;
  }

 private:
  static constexpr int kUnsettled = -1;
  mutable std::mutex mu_;
  std::vector<int> statuses_;
};

Event input_event(const TestInput& in, const std::shared_ptr<InputAcks>& acks, std::uint64_t token) {
  Event e;
  e.value = in.payload;
  e.has_value = !in.tombstone;
  if (in.key) {
    e.key = *in.key;
    e.has_key = true;
  }
  e.topic = in.topic;
  e.partition = in.partition;
  e.offset = in.offset;
  e.timestamp_ms = in.timestamp_ms;
  e.headers = in.headers;
  e.ack = Ack(acks, token);
  return e;
}

class CaseChain {
 public:
  CaseChain(const std::vector<const StageConfig*>& path, CaseRun& run) : run_(run) {
    for (const auto* stage : path) {
      contexts_.push_back(std::make_unique<CaseStageContext>(io_, stage->name, run.errors));
      names_.push_back(stage->name);
    }
    for (std::size_t k = 0; k < path.size(); ++k) {
      guard(k, [&] {
        transforms_.push_back(path[k]->factory->make_transform(0));
        transforms_.back()->start(*contexts_[k]);
      });
      if (transforms_.size() != k + 1) return;
    }
  }

  bool ready() const { return transforms_.size() == names_.size() && run_.errors.empty(); }

  // `batch` into stage `from`, and what it makes through the stages after it.
  void push(Batch batch, std::size_t from) {
    for (std::size_t k = from; k < transforms_.size() && run_.errors.empty(); ++k) {
      Batch out;
      // Rejected events pass a transform untouched, ahead of its output.
      auto rejected =
          std::stable_partition(batch.begin(), batch.end(), [](const Event& e) { return !e.rejected(); });
      for (auto it = rejected; it != batch.end(); ++it) out.push_back(std::move(*it));
      batch.erase(rejected, batch.end());
      guard(k, [&] {
        transforms_[k]->process(batch, out);
        release_held(k, out);
      });
      batch = std::move(out);
    }
    if (!run_.errors.empty()) return;
    for (auto& e : batch) (e.rejected() ? run_.dead_letters : run_.outputs).push_back(std::move(e));
  }

  // End of input, stage by stage, as the engine's drain does.
  void finish() {
    for (std::size_t k = 0; k < transforms_.size() && run_.errors.empty(); ++k) {
      Batch out;
      guard(k, [&] {
        transforms_[k]->finish(out);
        release_held(k, out);
      });
      push(std::move(out), k + 1);
    }
  }

  void end() {
    transforms_.clear();  // on their context's io_context, before it goes
    contexts_.clear();
  }

 private:
  void release_held(std::size_t k, Batch& out) {
    while (transforms_[k]->held() > 0) {
      const std::size_t before = out.size();
      transforms_[k]->resume(out, transforms_[k]->held());
      if (out.size() == before) {
        run_.errors.push_back("stage '" + names_[k] + "' holds " + std::to_string(transforms_[k]->held()) +
                              " events it does not hand on");
        return;
      }
    }
  }

  template <class Fn>
  void guard(std::size_t k, Fn&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      run_.errors.push_back("stage '" + names_[k] + "' threw: " + e.what());
    }
  }

  CaseRun& run_;
  boost::asio::io_context io_;
  std::vector<std::unique_ptr<CaseStageContext>> contexts_;
  std::vector<std::unique_ptr<Transform>> transforms_;
  std::vector<std::string> names_;
};

}  // namespace

CaseRun run_case(const TestCase& test, const std::vector<const StageConfig*>& path) {
  CaseRun run;
  auto acks = std::make_shared<InputAcks>(test.inputs.size());
  {
    CaseChain chain(path, run);
    if (chain.ready()) {
      Batch inputs;
      for (std::size_t i = 0; i < test.inputs.size(); ++i)
        inputs.push_back(input_event(test.inputs[i], acks, i));
      chain.push(std::move(inputs), 0);
      chain.finish();
    }
    chain.end();
  }
  // As a sink would: what it writes is done, what it dead-letters is dead_lettered.
  for (auto& e : run.outputs) e.ack.settle(AckStatus::done);
  for (auto& e : run.dead_letters) e.ack.settle(AckStatus::dead_lettered);
  if (run.errors.empty())
    for (auto& lost : acks->lost()) run.errors.push_back(std::move(lost));
  return run;
}

}  // namespace etld
