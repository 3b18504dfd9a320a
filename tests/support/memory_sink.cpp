#include "tests/support/memory_sink.hpp"

#include <optional>
#include <utility>

#include "stages/sink/bisect.hpp"
#include "stages/sink/blocking_worker.hpp"
#include "stages/sink/retry.hpp"

namespace etld::test {

namespace {

struct Work {
  Batch events;
  std::vector<AckStatus> status;
  std::string fatal;
};

class MemorySink final : public Sink {
 public:
  MemorySink(MemorySinkOptions o, std::shared_ptr<MemoryTable> t, std::shared_ptr<MemoryDeadLetters> d)
      : o_(o),
        table_(std::move(t)),
        dead_(std::move(d)),
        backoff_(o.initial_backoff, o.max_backoff),
        guard_(o.max_dead_letter_ratio, o.on_ratio) {}

  void start(SinkContext& ctx) override {
    ctx_ = &ctx;
    log_ = &ctx.log();  // for the worker thread (spdlog is thread-safe; the context is strand-bound)
    batcher_.emplace(
        ctx.executor(), o_.limits, [] { return std::make_unique<Work>(); }, [this] { submit(); });
    worker_.emplace(ctx.executor(), stop_, nullptr);
    worker_->start();
  }
  void consume(Batch&& batch) override {
    for (auto& e : batch) {
      Work& w = batcher_->open();
      const std::size_t bytes = e.value.size();
      w.events.push_back(std::move(e));
      batcher_->added(1, bytes);
    }
    submit();
  }
  void drain() override {
    draining_ = true;
    batcher_->drain();
    submit();
  }

 private:
  void submit() {
    if (worker_->busy()) return;
    auto w = std::shared_ptr<Work>(batcher_->take_ready());
    if (!w) {
      if (draining_ && batcher_->empty() && !std::exchange(drained_, true)) ctx_->drained();
      return;
    }
    worker_->submit([this, w] { write(*w); }, [this, w] { written(*w); });
  }

  // Worker thread.
  void write(Work& w) {
    w.status.assign(w.events.size(), AckStatus::done);
    std::vector<std::size_t> bad;
    auto slice = [&](std::size_t lo, std::size_t hi) -> std::optional<std::string> {
      std::vector<const std::string*> rows;
      for (std::size_t i = lo; i < hi; ++i) rows.push_back(&w.events[i].value);
      try {
        sink::retry<MemoryTable::Rejected>(
            backoff_, stop_, [&] { table_->write(rows); },
            [](const auto& e) { return e.transient ? sink::Failure::transient : sink::Failure::bad_data; },
            [](const auto&, std::chrono::milliseconds) {});
        return std::nullopt;
      } catch (const MemoryTable::Rejected& e) {
        return e.what();
      }
    };
    std::vector<sink::DeadLetter> letters;
    auto on_bad = [&](std::size_t i, std::string&& why) {
      bad.push_back(i);
      letters.push_back({&w.events[i], std::move(why), ""});
    };
    sink::bisect(0, w.events.size(), slice, on_bad);
    const std::string why =
        guard_.check(w.events.size(), bad.size(), "memory", letters.empty() ? "" : letters[0].reason);
    auto verdict = why.empty() ? sink::GuardVerdict::dead_letter : guard_.act(why, *log_);
    if (verdict == sink::GuardVerdict::stop) w.fatal = sink::DeadLetterRatioGuard::stop_reason(why);
    if (verdict == sink::GuardVerdict::dead_letter)
      sink::write_dead_letters({dead_.get()}, letters, backoff_, stop_, [](auto&&...) {});
    for (auto i : bad)
      w.status[i] = verdict == sink::GuardVerdict::dead_letter ? AckStatus::dead_lettered : AckStatus::failed;
  }

  // Strand.
  void written(Work& w) {
    for (std::size_t i = 0; i < w.events.size(); ++i) w.events[i].ack.settle(w.status[i]);
    ctx_->done(w.events.size());
    if (!w.fatal.empty()) ctx_->fail(std::make_exception_ptr(FatalStageError(w.fatal)));
    submit();
  }

  MemorySinkOptions o_;
  std::shared_ptr<MemoryTable> table_;
  std::shared_ptr<MemoryDeadLetters> dead_;
  SinkContext* ctx_ = nullptr;
  spdlog::logger* log_ = nullptr;
  bool draining_ = false, drained_ = false;
  std::optional<sink::Batcher<Work>> batcher_;
  sink::StopSignal stop_;
  sink::Backoff backoff_;
  sink::DeadLetterRatioGuard guard_;
  std::optional<sink::BlockingWorker> worker_;  // last: stopped and joined first
};

}  // namespace

std::unique_ptr<Sink> make_memory_sink(MemorySinkOptions options, std::shared_ptr<MemoryTable> table,
                                       std::shared_ptr<MemoryDeadLetters> dead_letters) {
  return std::make_unique<MemorySink>(options, std::move(table), std::move(dead_letters));
}

}  // namespace etld::test
