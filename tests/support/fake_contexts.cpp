#include "tests/support/fake_contexts.hpp"

#include <boost/asio/post.hpp>
#include <stdexcept>

#include <spdlog/sinks/null_sink.h>
#include <yaml-cpp/yaml.h>

#include "config/schema/diagnostics.hpp"

namespace etld::test {

spdlog::logger& null_logger() {
  static auto logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  return *logger;
}

bool run_until(boost::asio::io_context& io, const std::function<bool()>& pred,
               std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return pred();
    if (io.stopped()) io.restart();
    if (io.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now,
                                                                     std::chrono::milliseconds(20))) == 0) {
      // Out of work or timed out waiting: loop to re-check the predicate and the deadline.
      if (io.stopped()) io.restart();
    }
  }
  return true;
}

void run_idle(boost::asio::io_context& io) {
  if (io.stopped()) io.restart();
  while (io.poll() > 0) {
    if (io.stopped()) io.restart();
  }
  if (io.stopped()) io.restart();
}

namespace {
std::string exception_text(const std::exception_ptr& e) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}
}  // namespace

// ---- FakeSourceContext ------------------------------------------------------------------------

FakeSourceContext::FakeSourceContext(boost::asio::io_context& io, std::string name, int instance)
    : io_(io), strand_(boost::asio::make_strand(io)), name_(std::move(name)), instance_(instance) {}

void FakeSourceContext::check_strand(const char* what) {
  if (!strand_.running_in_this_thread()) {
    ++violations;
    last_violation = std::string(what) + " called off the stage's strand";
    throw std::logic_error(last_violation);
  }
}

void FakeSourceContext::fail(std::exception_ptr e) {
  check_strand("fail");
  error = e;
}

void FakeSourceContext::emit(Batch&& batch) {
  check_strand("emit");
  if (batch.size() > demand_) {
    ++violations;
    last_violation =
        "emitted " + std::to_string(batch.size()) + " events with demand " + std::to_string(demand_);
    throw std::logic_error(last_violation);
  }
  if (finish_calls > 0) {
    ++violations;
    last_violation = "emit after finish";
    throw std::logic_error(last_violation);
  }
  demand_ -= batch.size();
  batch_sizes.push_back(batch.size());
  for (auto& e : batch) events.push_back(std::move(e));
}

void FakeSourceContext::finish() {
  check_strand("finish");
  ++finish_calls;
}

void FakeSourceContext::start(Source& source) {
  boost::asio::post(strand_, [this, &source] { source.start(*this); });
}

void FakeSourceContext::grant(Source& source, std::size_t n) {
  boost::asio::post(strand_, [this, &source, n] {
    demand_ += n;
    source.on_demand();
  });
}

void FakeSourceContext::stop(Source& source) {
  boost::asio::post(strand_, [&source] { source.stop(); });
}

std::string FakeSourceContext::failure_text() const { return exception_text(error); }

// ---- FakeSinkContext --------------------------------------------------------------------------

FakeSinkContext::FakeSinkContext(boost::asio::io_context& io, std::string name, int instance)
    : io_(io), strand_(boost::asio::make_strand(io)), name_(std::move(name)), instance_(instance) {}

void FakeSinkContext::check_strand(const char* what) {
  if (!strand_.running_in_this_thread()) {
    ++violations;
    last_violation = std::string(what) + " called off the stage's strand";
    throw std::logic_error(last_violation);
  }
}

void FakeSinkContext::fail(std::exception_ptr e) {
  check_strand("fail");
  error = e;
}

void FakeSinkContext::done(std::size_t n) {
  check_strand("done");
  done_total += n;
  done_calls.push_back(n);
}

void FakeSinkContext::drained() {
  check_strand("drained");
  ++drained_calls;
}

void FakeSinkContext::start(Sink& sink) {
  boost::asio::post(strand_, [this, &sink] { sink.start(*this); });
}

void FakeSinkContext::consume(Sink& sink, Batch&& batch) {
  auto shared = std::make_shared<Batch>(std::move(batch));
  boost::asio::post(strand_, [&sink, shared] { sink.consume(std::move(*shared)); });
}

bool FakeSinkContext::consume_until_done(Sink& sink, Batch&& batch, std::chrono::milliseconds timeout) {
  const std::size_t want = done_total + batch.size();
  consume(sink, std::move(batch));
  return run_until(
             io_, [&] { return done_total >= want || error; }, timeout) &&
         done_total >= want;
}

void FakeSinkContext::drain(Sink& sink) {
  boost::asio::post(strand_, [&sink] { sink.drain(); });
}

std::string FakeSinkContext::failure_text() const { return exception_text(error); }

// ---- RecordingAcks ----------------------------------------------------------------------------

void RecordingAcks::settle(std::uint64_t token, AckStatus status) {
  std::lock_guard lock(mu_);
  seen_[token].push_back(status);
}

std::size_t RecordingAcks::total() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (auto& [token, statuses] : seen_) n += statuses.size();
  return n;
}

std::size_t RecordingAcks::count(AckStatus status) const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (auto& [token, statuses] : seen_)
    for (auto s : statuses) n += s == status;
  return n;
}

bool RecordingAcks::settled_once(std::uint64_t token, AckStatus status) const {
  std::lock_guard lock(mu_);
  auto it = seen_.find(token);
  return it != seen_.end() && it->second.size() == 1 && it->second.front() == status;
}

bool RecordingAcks::exactly_once(std::uint64_t n, AckStatus status) const {
  {
    std::lock_guard lock(mu_);
    if (seen_.size() != n) return false;
  }
  for (std::uint64_t t = 0; t < n; ++t)
    if (!settled_once(t, status)) return false;
  return true;
}

// ---- helpers ----------------------------------------------------------------------------------

StageConfig stage_config(const std::string& type_name, const std::string& options_yaml,
                         const std::string& name, int concurrency) {
  const StageType* type = find_stage_type(type_name);
  if (!type) throw std::logic_error("no stage type '" + type_name + "'");
  StageConfig cfg;
  cfg.name = name;
  cfg.type = type_name;
  cfg.concurrency = concurrency;
  cfg.node = YAML::Load(options_yaml);
  cfg.options = Options(cfg.node, &type->options);
  return cfg;
}

std::unique_ptr<StageFactory> configure_stage(const std::string& type_name, const std::string& options_yaml,
                                              const std::string& name, int concurrency) {
  StageConfig cfg = stage_config(type_name, options_yaml, name, concurrency);
  PipelineConfig pipeline;
  return find_stage_type(type_name)->configure(cfg, pipeline);
}

Batch make_events(const std::vector<std::string>& values, const std::shared_ptr<AckTarget>& acks,
                  std::uint64_t first_token) {
  Batch batch;
  batch.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    Event e;
    e.value = values[i];
    e.ack = Ack(acks, first_token + i);
    batch.push_back(std::move(e));
  }
  return batch;
}

}  // namespace etld::test
