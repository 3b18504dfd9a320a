// kafka: a consumer-group source (see docs/connectors/kafka.md).
//
// How it runs, in short:
// - librdkafka's main queue is forwarded to the consumer queue (rd_kafka_poll_set_consumer), and
//   logs, errors, commit results and rebalances arrive there too. The queue signals a pipe when it
//   becomes non-empty (rd_kafka_queue_io_event_enable); the source waits on that pipe with
//   stream_descriptor::async_wait on its strand, plus a 100 ms timer as a safety net. Every call
//   into librdkafka on the data path uses timeout 0: no pool thread ever blocks on Kafka.
// - Messages are pulled with rd_kafka_consume_batch_queue into per-partition buffers, as long as
//   the local buffer (all partitions) has room. When it is full (no demand) the rest waits in
//   librdkafka's bounded prefetch queue; after kHoldGrace every partition is paused so that
//   rebalances queued behind the prefetch get served. A partition is also paused when its commit
//   window plus buffer reaches max_in_flight_per_partition (resumed with hysteresis). Pausing bumps
//   librdkafka's fetch version, so what it had prefetched for that partition is dropped and
//   fetched again on resume from the position after the last message we took: nothing is lost.
// - Events are emitted round-robin across partitions (one emit per batch, never beyond demand),
//   each with an Ack on its partition's PartitionAcks (token = offset).
// - Rebalances are handled by a rebalance callback that runs inside our own consume call (on the
//   strand). A revoke is deferred: librdkafka's group state machine waits for our (incremental)
//   unassign call, which we make once the revoked partitions' in-flight events have settled or
//   revoke_timeout passed, after committing them.
// - Commits: every commit_interval (async), on revoke (async, before the unassign) and on close
//   (sync), each partition at its first offset not yet settled (or failed).
// Threading: every member of KafkaSource runs on its strand (callbacks from librdkafka are served
// inside our own calls into it); PartitionAcks is thread-safe and may wake the strand.

#include "connectors/kafka/kafka_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "config/diagnostics.hpp"
#include "config/pipeline.hpp"
#include "config/secrets.hpp"
#include "connectors/kafka/kafka_handles.hpp"
#include "connectors/kafka/kafka_message.hpp"
#include "connectors/kafka/static_membership.hpp"
#include "stages/offset_store.hpp"
#include "stages/registry.hpp"

namespace etld {

namespace kafka {

std::string describe_partitions(const rd_kafka_topic_partition_list_t* list) {
  if (!list || list->cnt == 0) return "(none)";
  std::map<std::string, std::vector<std::int32_t>> by_topic;
  for (int i = 0; i < list->cnt; ++i) by_topic[list->elems[i].topic].push_back(list->elems[i].partition);
  std::string out;
  for (auto& [topic, parts] : by_topic) {
    std::sort(parts.begin(), parts.end());
    if (!out.empty()) out += ' ';
    out += topic + '[';
    for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + std::to_string(parts[i]);
    out += ']';
  }
  return out;
}

}  // namespace kafka

namespace {

using namespace kafka;
using Clock = std::chrono::steady_clock;

// ---- settings -----------------------------------------------------------------------------------

constexpr std::size_t kNoInFlightCap = std::numeric_limits<std::size_t>::max();

struct KafkaSettings {
  std::string pipeline;
  std::string stage;
  std::string group;
  std::vector<std::string> topics;  // names, or one "^regex" pattern
  // Final librdkafka configuration in the order applied (ours first, then the user's map).
  std::vector<std::pair<std::string, std::string>> properties;
  std::string overrides_text;         // the user's map for the log, secrets redacted
  std::size_t max_in_flight = 10000;  // kNoInFlightCap: none (stop_at_end without the option)
  bool stop_at_end = false;           // finish once every assigned partition is read to its end
  std::size_t prefetch_bytes = 16384 * 1024;
  std::chrono::milliseconds commit_interval{1000};
  std::chrono::milliseconds revoke_timeout{10000};
  PoisonPolicy on_poison = PoisonPolicy::dead_letter;
  // group.instance.id from the user's map: "" = etld's default (static_membership.hpp);
  // `member_id_off` when the user set it to "" (a dynamic member).
  std::string member_id;
  bool member_id_off = false;
};

// Properties the stage owns: setting them in `librdkafka:` would break its guarantees.
const std::map<std::string, std::string>& reserved_properties() {
  static const std::map<std::string, std::string> reserved{
      {"group.id", "set the stage's `group` option instead"},
      {"bootstrap.servers", "set the stage's `brokers` option instead"},
      {"metadata.broker.list", "set the stage's `brokers` option instead"},
      {"enable.auto.commit", "the source commits only settled offsets itself; remove it"},
      {"enable.auto.offset.store", "the source commits only settled offsets itself; remove it"},
      {"auto.commit.enable", "the source commits only settled offsets itself; remove it"},
      {"log.queue", "the source serves librdkafka's logs on its own strand; remove it"},
      {"enable.partition.eof", "the source sets it itself for stop_at_end; remove it"},
  };
  return reserved;
}

// ---- per-partition acknowledgements -------------------------------------------------------------

// Wakes the source's strand from any thread, at most one pending post at a time. Cleared when the
// source closes, so late settlements never touch a dead strand.
class Waker {
 public:
  void arm(boost::asio::any_io_executor ex, std::function<void()> fn) {
    std::lock_guard lock(mu_);
    ex_ = std::move(ex);
    fn_ = std::move(fn);
  }
  void clear() {
    std::lock_guard lock(mu_);
    ex_.reset();
    fn_ = nullptr;
  }
  void wake() {
    std::lock_guard lock(mu_);
    if (!ex_ || posted_) return;
    posted_ = true;
    boost::asio::post(*ex_, fn_);
  }
  void rearm() {
    std::lock_guard lock(mu_);
    posted_ = false;
  }

 private:
  std::mutex mu_;
  std::optional<boost::asio::any_io_executor> ex_;
  std::function<void()> fn_;
  bool posted_ = false;
};

// The ack target of one assigned partition (one per assignment: a partition revoked and assigned
// again gets a fresh one). Tokens are offsets. Keeps the commit window: the emitted offsets from
// the first one not yet settled (or failed) on. Thread-safe: sinks settle from their strands.
class PartitionAcks final : public TrackedPartition {
 public:
  explicit PartitionAcks(std::shared_ptr<Waker> waker) : waker_(std::move(waker)) {}

  void settle(std::uint64_t token, AckStatus status) override {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      wake = settle_locked(static_cast<std::int64_t>(token), status);
      wake = advance_locked() || wake;
    }
    if (wake) waker_->wake();
  }

  void settle_many(std::span<const std::uint64_t> tokens, AckStatus status) override {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      for (auto t : tokens) wake = settle_locked(static_cast<std::int64_t>(t), status) || wake;
      wake = advance_locked() || wake;
    }
    if (wake) waker_->wake();
  }

  // Source strand: these offsets (increasing, above every earlier one) are being emitted.
  void add(const std::vector<std::int64_t>& offsets) {
    std::lock_guard lock(mu_);
    for (auto o : offsets) window_.push_back(Slot{o, AckStatus::done, false});
    if (!offsets.empty()) next_ = offsets.back() + 1;
    unsettled_ += offsets.size();
  }

  // The offset to commit: the first emitted one not settled (or failed), else one past the last
  // emitted; -1 before anything was emitted.
  std::int64_t commit_offset() const {
    std::lock_guard lock(mu_);
    return window_.empty() ? next_ : window_.front().offset;
  }
  std::size_t window() const {
    std::lock_guard lock(mu_);
    return window_.size();
  }
  // Events emitted and not settled.
  std::size_t unsettled() const {
    std::lock_guard lock(mu_);
    return unsettled_;
  }
  std::int64_t next_offset_with(std::span<const std::uint64_t> also) const override {
    std::vector<std::uint64_t> extra(also.begin(), also.end());
    if (!std::is_sorted(extra.begin(), extra.end())) std::sort(extra.begin(), extra.end());
    std::lock_guard lock(mu_);
    // Both in offset order: one walk along the two.
    auto x = extra.begin();
    for (const Slot& s : window_) {
      const auto offset = static_cast<std::uint64_t>(s.offset);
      while (x != extra.end() && *x < offset) ++x;
      bool covered = (s.settled && s.status != AckStatus::failed) || (x != extra.end() && *x == offset);
      if (!covered) return s.offset;
    }
    return next_;
  }
  std::int64_t failed_offset() const {
    std::lock_guard lock(mu_);
    return failed_;
  }
  // Wake the source once the window shrinks to `n` events (or below).
  void wake_at(std::size_t n) {
    bool now = false;
    {
      std::lock_guard lock(mu_);
      wake_at_ = n;
      now = window_.size() <= n;
      if (now) wake_at_ = kNever;
    }
    if (now) waker_->wake();
  }
  // After a revoke: later settlements change nothing.
  void detach() {
    std::lock_guard lock(mu_);
    detached_ = true;
    wake_at_ = kNever;
  }

 private:
  static constexpr std::size_t kNever = static_cast<std::size_t>(-1);
  struct Slot {
    std::int64_t offset;
    AckStatus status;
    bool settled;
  };

  // Returns whether the source should wake (a first failure).
  bool settle_locked(std::int64_t offset, AckStatus status) {
    if (detached_ || window_.empty()) return false;
    // Offsets are consecutive but for gaps (compaction, transaction markers): look where the
    // offset would be without gaps first, and search only when a gap moved it.
    auto it = window_.end();
    if (auto at = offset - window_.front().offset; at >= 0 && static_cast<std::size_t>(at) < window_.size() &&
                                                   window_[static_cast<std::size_t>(at)].offset == offset)
      it = window_.begin() + at;
    else
      it = std::lower_bound(window_.begin(), window_.end(), offset,
                            [](const Slot& s, std::int64_t o) { return s.offset < o; });
    if (it == window_.end() || it->offset != offset || it->settled) return false;  // unknown or twice
    it->settled = true;
    it->status = status;
    if (unsettled_ > 0) --unsettled_;
    if (status == AckStatus::failed && (failed_ < 0 || offset < failed_)) {
      failed_ = offset;
      return true;
    }
    return false;
  }

  // Drops the settled prefix (never past a failed slot); returns whether the source should wake.
  bool advance_locked() {
    while (!window_.empty() && window_.front().settled && window_.front().status != AckStatus::failed)
      window_.pop_front();
    if (wake_at_ != kNever && (window_.size() <= wake_at_ || unsettled_ == 0)) {
      wake_at_ = kNever;
      return true;
    }
    return false;
  }

  mutable std::mutex mu_;
  std::deque<Slot> window_;
  std::int64_t next_ = -1;
  std::int64_t failed_ = -1;
  std::size_t unsettled_ = 0;
  std::size_t wake_at_ = kNever;
  bool detached_ = false;
  std::shared_ptr<Waker> waker_;
};

// ---- stats registry -----------------------------------------------------------------------------

class StatsBoard {
 public:
  void publish(KafkaSourceStats s) {
    std::lock_guard lock(mu_);
    stats_ = std::move(s);
  }
  KafkaSourceStats read() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  mutable std::mutex mu_;
  KafkaSourceStats stats_;
};

std::mutex& boards_mutex() {
  static std::mutex mu;
  return mu;
}
std::vector<std::weak_ptr<StatsBoard>>& boards() {
  static std::vector<std::weak_ptr<StatsBoard>> all;
  return all;
}

// ---- the source ---------------------------------------------------------------------------------

constexpr std::size_t kPull = 512;                // messages per rd_kafka_consume_batch_queue call
constexpr std::size_t kTurnBudget = 8192;         // events pulled / emitted per strand turn
constexpr std::size_t kMaxBatch = 4096;           // events per emit()
constexpr std::size_t kLocalBufferEvents = 8192;  // fetched, undemanded events held (all partitions)
// How long fetched messages may wait in librdkafka's queue for demand before the partitions are
// paused (dropping that prefetch) so that rebalances and other events behind them get served.
constexpr std::chrono::milliseconds kHoldGrace{500};
constexpr std::chrono::milliseconds kTick{100};  // safety-net poll interval
// How often a partition held at a failed record is logged again: a held partition is silent
// otherwise, and one error line at the start scrolls out of sight.
constexpr std::chrono::seconds kHeldReminder{30};
constexpr std::chrono::seconds kLogEvery{10};  // rate limit for repeated warnings

class KafkaSource final : public Source {
 public:
  KafkaSource(const KafkaSettings& s, int instance) : s_(s), instance_(instance) {}

  ~KafkaSource() override {
    ctx_log_ok_ = false;  // the context may be gone already
    try {
      shutdown_consumer(true);  // commits only what is settled: safe whenever we go
    } catch (...) {
    }
    unregister_board();
  }

  void start(SourceContext& ctx) override {
    ctx_ = &ctx;
    waker_->arm(ctx.executor(), [this, alive = std::weak_ptr<int>(alive_)] {
      if (alive.expired()) return;
      waker_->rearm();
      pump();
    });
    store_ = ctx.offset_store();
    create_consumer();
    board_ = std::make_shared<StatsBoard>();
    {
      std::lock_guard lock(boards_mutex());
      auto& all = boards();
      all.erase(std::remove_if(all.begin(), all.end(), [](auto& w) { return w.expired(); }), all.end());
      all.push_back(board_);
    }
    std::string what = s_.topics.size() == 1 && s_.topics[0].starts_with("^")
                           ? "topics matching " + s_.topics[0]
                           : "topics " + join(s_.topics);
    ctx.log().info(
        "kafka: consuming {} as group '{}' (librdkafka {}, max_in_flight_per_partition {}, commit every {} "
        "ms, {}){}{}{}",
        what, s_.group, rd_kafka_version_str(),
        s_.max_in_flight == kNoInFlightCap ? std::string("none") : std::to_string(s_.max_in_flight),
        s_.commit_interval.count(),
        member_id_.empty() ? std::string("dynamic member") : "group.instance.id " + member_id_,
        s_.overrides_text.empty() ? "" : "; librdkafka overrides: " + s_.overrides_text,
        store_ ? "; exactly once: positions from " + store_->description() : "",
        s_.stop_at_end ? "; stops at the end of its partitions" : "");
    last_commit_ = Clock::now();
    arm_fd();
    arm_tick();
  }

  void on_demand() override {
    if (!closed_ && !stopped_) pump();
  }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    for (auto& [key, p] : parts_) clear_buffer(*p);
    if (rk_) update_pauses();
    if (!finished_) {
      finished_ = true;
      ctx_->finish();
    }
  }

  void close() override {
    stopped_ = true;
    shutdown_consumer(true);
    publish_stats();
    unregister_board();
  }

 private:
  struct Part {
    SharedName topic;  // interned once per assignment: every event of it shares the name
    std::int32_t partition = 0;
    std::shared_ptr<PartitionAcks> acks;
    std::deque<Event> buffered;
    std::size_t buffered_bytes = 0;
    bool paused = false, revoking = false, poisoned = false;
    bool idle_paused = false;          // paused because nobody asked for events for kHoldGrace
    bool at_end = false;               // stop_at_end: read to its end, nothing newer taken since
    std::int64_t committed_sent = -1;  // last offset we asked Kafka to commit
    std::int64_t committed = -1;       // last offset Kafka confirmed
    std::uint64_t fetched = 0, emitted = 0;
    std::int64_t lag = -1;             // from the last statistics
    std::int64_t fetched_offset = -1;  // one past the last record taken
    std::int64_t first_offset = -1;    // the first record taken in this assignment
    Clock::time_point held_logged{};   // poisoned: when it was last logged
  };
  using Key = std::pair<std::string, std::int32_t>;

  struct PendingRevoke {
    PartitionList list;
    Clock::time_point deadline;
    bool cooperative = false;
    std::uint64_t id = 0;
    bool committing = false;  // the revoke commit is out; the unassign follows its result
    // The group moved on without us. With exactly_once its claims stay in the store: a batch
    // already on its way either commits before the new owner claims, or is fenced by it.
    bool lost = false;
  };

  // ---- setup and teardown ----

  void create_consumer() {
    char err[512];
    ConfHandle conf(rd_kafka_conf_new());
    for (const auto& [k, v] : s_.properties)
      if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
        throw std::runtime_error("kafka: librdkafka property '" + k + "': " +
                                 (is_secret_setting(k) ? std::string("librdkafka rejects its value") : err));
    if (rd_kafka_conf_set(conf.get(), "log.queue", "true", err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(std::string("kafka: log.queue: ") + err);
    if (!s_.member_id_off) {
      // Several instances of the stage (concurrency) in one process each need their own id.
      const std::string id = !s_.member_id.empty()
                                 ? s_.member_id + (instance_ > 0 ? "." + std::to_string(instance_) : "")
                                 : member_.acquire(s_.pipeline, s_.stage, instance_);
      if (id.empty())
        ctx_->log().warn("kafka: no default group.instance.id ({}): joining as a dynamic member",
                         member_.problem());
      else if (rd_kafka_conf_set(conf.get(), "group.instance.id", id.c_str(), err, sizeof err) !=
               RD_KAFKA_CONF_OK)
        throw std::runtime_error("kafka: group.instance.id: " + std::string(err));
      member_id_ = id;
    }
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaSource::rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf.get(), &KafkaSource::commit_cb);
    rd_kafka_conf_set_error_cb(conf.get(), &KafkaSource::error_cb);
    rd_kafka_conf_set_log_cb(conf.get(), &KafkaSource::log_cb);
    rd_kafka_conf_set_stats_cb(conf.get(), &KafkaSource::stats_cb);

    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err);
    if (!rk) throw std::runtime_error(std::string("kafka: cannot create the consumer: ") + err);
    conf.release();  // owned by rk now
    rk_.reset(rk);
    rd_kafka_set_log_queue(rk, nullptr);  // logs to the main queue, which the next line forwards
    rd_kafka_poll_set_consumer(rk);
    queue_.reset(rd_kafka_queue_get_consumer(rk));

    if (::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "kafka: pipe2");
    rd_kafka_queue_io_event_enable(queue_.get(), pipe_[1], "1", 1);
    fd_.emplace(ctx_->executor(), pipe_[0]);
    pipe_[0] = -1;  // owned by fd_
    tick_.emplace(ctx_->executor());

    PartitionList topics = make_partition_list(static_cast<int>(s_.topics.size()));
    for (const auto& t : s_.topics)
      rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    if (auto e = rd_kafka_subscribe(rk, topics.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error(std::string("kafka: subscribe failed: ") + rd_kafka_err2str(e));
  }

  // Final commit (when asked), leave the group, release everything. Blocking: only from close()
  // (the pipeline has drained) or the destructor.
  void shutdown_consumer(bool commit) {
    if (closed_) return;
    closed_ = true;
    closing_ = true;
    waker_->clear();
    if (tick_) tick_->cancel();
    if (fd_) fd_->cancel();
    if (rk_) {
      // A claim still out: librdkafka waits for our assign call before it can leave the group.
      if (claim_pending_) {
        PartitionList list = std::move(claim_pending_);
        assign(list.get(), claim_cooperative_);
      }
      // Pending revokes first: librdkafka waits for our unassign before it can leave the group.
      while (!revokes_.empty()) {
        if (revokes_[0].committing)
          complete_revoke(0);
        else
          finish_revoke(0, commit, /*sync=*/true);
      }
      if (commit) commit_parts(all_parts(), /*sync=*/true, "close");
      if (queue_) rd_kafka_queue_io_event_enable(queue_.get(), -1, nullptr, 0);
      queue_.reset();  // rdkafka.h: destroy the consumer queue before rd_kafka_consumer_close()
      if (auto e = rd_kafka_consumer_close(rk_.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("close", "kafka: closing the consumer: {}", rd_kafka_err2str(e));
      rk_.reset();
    }
    member_.release();  // after the close: the id may be taken again (a reload's new source)
    for (auto& [key, p] : parts_) {
      p->acks->detach();
      if (store_) store_->release(p->topic.str(), p->partition, p->acks.get());
    }
    parts_.clear();
    cache_part_ = nullptr;
    fd_.reset();
    tick_.reset();
    if (pipe_[0] >= 0) ::close(pipe_[0]);
    if (pipe_[1] >= 0) ::close(pipe_[1]);
    pipe_[0] = pipe_[1] = -1;
  }

  void unregister_board() {
    if (!board_) return;
    std::lock_guard lock(boards_mutex());
    auto& all = boards();
    all.erase(
        std::remove_if(all.begin(), all.end(), [&](auto& w) { return w.expired() || w.lock() == board_; }),
        all.end());
    board_.reset();
  }

  // ---- waiting ----

  void arm_fd() {
    if (!fd_ || closed_) return;
    fd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                    [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
                      if (alive.expired() || ec || closed_) return;
                      char buf[256];
                      while (::read(fd_->native_handle(), buf, sizeof buf) > 0) {
                      }
                      pump();
                      arm_fd();
                    });
  }

  void arm_tick() {
    if (!tick_ || closed_) return;
    tick_->expires_after(kTick);
    tick_->async_wait([this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
      if (alive.expired() || ec || closed_) return;
      pump();
      remind_held();
      publish_stats();
      arm_tick();
    });
  }

  void schedule_pump() {
    if (continuation_posted_) return;
    continuation_posted_ = true;
    boost::asio::post(ctx_->executor(), [this, alive = std::weak_ptr<int>(alive_)] {
      if (alive.expired()) return;
      continuation_posted_ = false;
      pump();
    });
  }

  // ---- the loop ----

  void pump() {
    if (closed_ || !rk_ || in_pump_) return;
    in_pump_ = true;
    bool more = false;
    try {
      std::size_t pulled = 0, emitted = 0;
      while (true) {
        std::size_t n = serve_queue(kTurnBudget - pulled);
        pulled += n;
        check_poison();
        std::size_t e = stopped_ ? 0 : emit_ready(kTurnBudget - emitted);
        emitted += e;
        if (pulled >= kTurnBudget || emitted >= kTurnBudget) {
          more = true;
          break;
        }
        if (n == 0 && e == 0) break;  // nothing came and nothing went: done for now
      }
      check_hold();
      progress_revokes();
      if (s_.stop_at_end) check_end_of_input();
      update_pauses();
      if (Clock::now() - last_commit_ >= s_.commit_interval) {
        last_commit_ = Clock::now();
        commit_parts(all_parts(), /*sync=*/false, "interval");
      }
    } catch (const std::exception& e) {
      in_pump_ = false;
      ctx_->fail(std::make_exception_ptr(std::runtime_error(std::string("kafka: ") + e.what())));
      return;
    }
    in_pump_ = false;
    if (more) schedule_pump();
  }

  // Pulls up to `budget` messages off the consumer queue into the partition buffers; serves
  // rebalances, logs, errors and commit results on the way. Returns how many messages came.
  std::size_t serve_queue(std::size_t budget, bool force = false) {
    if (!force && !stopped_) budget = std::min(budget, room());
    std::array<rd_kafka_message_t*, kPull> msgs;
    std::size_t pulled = 0;
    while (pulled < budget && queue_) {
      std::size_t want = std::min(kPull, budget - pulled);
      ssize_t n = rd_kafka_consume_batch_queue(queue_.get(), 0, msgs.data(), want);
      if (n < 0) {
        log_warn("consume", "kafka: consume failed: {}", rd_kafka_err2str(rd_kafka_last_error()));
        break;
      }
      for (ssize_t i = 0; i < n; ++i) {
        MessageHandle m(msgs[static_cast<std::size_t>(i)]);
        take_message(*m);
      }
      pulled += static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) < want) break;
    }
    return pulled;
  }

  Part* find_part(rd_kafka_topic_t* rkt, std::int32_t partition) {
    if (cache_part_ && rkt == cache_rkt_ && partition == cache_partition_) return cache_part_;
    auto it = parts_.find(Key(rd_kafka_topic_name(rkt), partition));
    if (it == parts_.end()) return nullptr;
    cache_rkt_ = rkt;
    cache_partition_ = partition;
    cache_part_ = it->second.get();
    return cache_part_;
  }

  void take_message(const rd_kafka_message_t& m) {
    if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF && s_.stop_at_end) {
      if (Part* p = find_part(m.rkt, m.partition)) p->at_end = true;
      return;
    }
    if (m.err) return consumer_error(m);
    if (stopped_ || closing_) return;
    Part* p = find_part(m.rkt, m.partition);
    if (!p || p->revoking || p->poisoned) return;  // stale: fetched before a revoke or poison pause
    p->at_end = false;
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(&m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) hdrs = nullptr;
    rd_kafka_timestamp_type_t tstype;
    Event e = kafka::message_to_event(m, hdrs, rd_kafka_message_timestamp(&m, &tstype));
    e.topic = p->topic;
    e.partition = p->partition;
    auto bytes = e.value.size() + e.key.size();
    p->buffered_bytes += bytes;
    total_buffered_bytes_ += bytes;
    ++total_buffered_;
    if (p->first_offset < 0) p->first_offset = m.offset;
    p->fetched_offset = m.offset + 1;
    p->buffered.push_back(std::move(e));
    ++p->fetched;
    if (!p->paused && !want_fetch(*p)) set_paused(*p, true);
  }

  void consumer_error(const rd_kafka_message_t& m) {
    std::string where = m.rkt ? std::string(rd_kafka_topic_name(m.rkt)) : std::string();
    if (m.rkt && m.partition >= 0) where += "[" + std::to_string(m.partition) + "]";
    std::string what = rd_kafka_message_errstr(&m);
    log_warn("consumer-error:" + where + ":" + std::to_string(m.err), "kafka: consumer error{}: {}",
             where.empty() ? "" : " on " + where, what);
  }

  // Hands out buffered events round-robin across partitions, never beyond demand nor a partition's
  // in-flight cap; one emit() per batch. Returns the number emitted.
  std::size_t emit_ready(std::size_t budget) {
    std::size_t total = 0;
    while (total < budget && ctx_->demand() > 0) {
      std::size_t want = std::min({ctx_->demand(), kMaxBatch, budget - total});
      // Ready partitions, starting after the one served last.
      std::vector<Part*> ready;
      auto start = parts_.upper_bound(rr_);
      for (std::size_t i = 0, n = parts_.size(); i < n; ++i, ++start) {
        if (start == parts_.end()) start = parts_.begin();
        Part& p = *start->second;
        if (!p.buffered.empty() && !p.revoking && !p.poisoned && p.acks->window() < s_.max_in_flight)
          ready.push_back(&p);
      }
      if (ready.empty()) break;
      Batch batch;
      batch.reserve(want);
      std::vector<std::size_t> room(ready.size());
      for (std::size_t i = 0; i < ready.size(); ++i) room[i] = s_.max_in_flight - ready[i]->acks->window();
      std::vector<std::vector<std::int64_t>> offsets(ready.size());
      std::size_t quantum = std::max<std::size_t>(1, want / ready.size());
      bool progress = true;
      while (batch.size() < want && progress) {
        progress = false;
        for (std::size_t i = 0; i < ready.size() && batch.size() < want; ++i) {
          Part& p = *ready[i];
          std::size_t k = std::min({quantum, want - batch.size(), p.buffered.size(), room[i]});
          for (std::size_t j = 0; j < k; ++j) {
            Event& e = p.buffered.front();
            auto bytes = std::min(p.buffered_bytes, e.value.size() + e.key.size());
            p.buffered_bytes -= bytes;
            total_buffered_bytes_ -= std::min(total_buffered_bytes_, bytes);
            --total_buffered_;
            offsets[i].push_back(e.offset);
            e.ack = Ack(p.acks, static_cast<std::uint64_t>(e.offset));
            batch.push_back(std::move(e));
            p.buffered.pop_front();
          }
          if (k > 0) {
            room[i] -= k;
            p.emitted += k;
            progress = true;
            rr_ = Key(p.topic.str(), p.partition);
          }
        }
      }
      for (std::size_t i = 0; i < ready.size(); ++i) {
        if (offsets[i].empty()) continue;
        ready[i]->acks->add(offsets[i]);  // before emit: a sink may settle at once
      }
      total += batch.size();
      ctx_->emit(std::move(batch));
    }
    return total;
  }

  // stop_at_end: the input ends once every assigned partition was read to its end (librdkafka's
  // partition EOF, nothing newer taken since) and all of it was emitted. What is still unsettled
  // is committed as it settles, and on close.
  void check_end_of_input() {
    if (stopped_ || parts_.empty() || !revokes_.empty()) return;
    for (const auto& [key, p] : parts_)
      if (!p->at_end || !p->buffered.empty()) return;
    ctx_->log().info("kafka: every assigned partition ({}) is read to its end: input ends (stop_at_end)",
                     parts_.size());
    stop();
  }

  // ---- pausing ----

  // Room in the local buffer: what may be pulled off librdkafka's queue now.
  std::size_t room() const {
    if (total_buffered_bytes_ >= s_.prefetch_bytes || total_buffered_ >= kLocalBufferEvents) return 0;
    return kLocalBufferEvents - total_buffered_;
  }
  std::size_t cap_low() const { return s_.max_in_flight - std::max<std::size_t>(1, s_.max_in_flight / 4); }

  // Whether the partition should be fetching: with hysteresis, so a partition near its limits
  // does not flap between paused and resumed.
  bool want_fetch(const Part& p) const {
    if (stopped_ || closing_ || p.revoking || p.poisoned) return false;
    std::size_t buf = p.buffered.size(), win = p.acks->window();
    if (p.paused ? win + buf > cap_low() : win + buf >= s_.max_in_flight) return false;
    if (p.idle_paused)
      return total_buffered_ <= kLocalBufferEvents / 2 && total_buffered_bytes_ <= s_.prefetch_bytes / 2;
    return true;
  }

  // The local buffer is full and messages wait in librdkafka's queue: leave them there (librdkafka
  // bounds its prefetch and stops fetching), unless that lasted kHoldGrace. Then pause every
  // partition, so that their prefetch is dropped and whatever waits behind it gets served.
  void check_hold() {
    if (room() > 0 || !queue_ || rd_kafka_queue_length(queue_.get()) == 0) {
      holding_ = false;
      return;
    }
    auto now = Clock::now();
    if (!holding_) {
      holding_ = true;
      hold_since_ = now;
      return;
    }
    if (now - hold_since_ < kHoldGrace) return;
    for (auto& [key, p] : parts_)
      if (!p->paused) {
        set_paused(*p, true);
        if (p->paused) p->idle_paused = true;
      }
    holding_ = false;
    serve_queue(kPull, /*force=*/true);  // outdated messages are dropped; rebalances served
  }

  void set_paused(Part& p, bool pause) {
    PartitionList l = make_partition_list(1);
    rd_kafka_topic_partition_list_add(l.get(), p.topic.str().c_str(), p.partition);
    auto e = pause ? rd_kafka_pause_partitions(rk_.get(), l.get())
                   : rd_kafka_resume_partitions(rk_.get(), l.get());
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log_warn("pause", "kafka: {} {}[{}]: {}", pause ? "pausing" : "resuming", p.topic.str(), p.partition,
               rd_kafka_err2str(e));
      return;
    }
    p.paused = pause;
    if (!pause) p.idle_paused = false;
    ++(pause ? pauses_ : resumes_);
  }

  void update_pauses() {
    PartitionList to_pause = make_partition_list(), to_resume = make_partition_list();
    std::vector<Part*> paused, resumed;
    for (auto& [key, ptr] : parts_) {
      Part& p = *ptr;
      bool want = want_fetch(p);
      if (p.paused == !want) {
        // Cap-limited: ask to be woken when enough settles, rather than waiting for the tick.
        if (p.paused && !p.revoking && !p.poisoned && p.acks->window() > cap_low())
          p.acks->wake_at(cap_low());
        continue;
      }
      auto* l = want ? to_resume.get() : to_pause.get();
      rd_kafka_topic_partition_list_add(l, p.topic.str().c_str(), p.partition);
      (want ? resumed : paused).push_back(&p);
    }
    if (to_pause->cnt > 0) {
      rd_kafka_pause_partitions(rk_.get(), to_pause.get());
      for (int i = 0; i < to_pause->cnt; ++i)
        if (!to_pause->elems[i].err) {
          paused[static_cast<std::size_t>(i)]->paused = true;
          ++pauses_;
        }
    }
    if (to_resume->cnt > 0) {
      rd_kafka_resume_partitions(rk_.get(), to_resume.get());
      for (int i = 0; i < to_resume->cnt; ++i)
        if (!to_resume->elems[i].err) {
          resumed[static_cast<std::size_t>(i)]->paused = false;
          resumed[static_cast<std::size_t>(i)]->idle_paused = false;
          ++resumes_;
        }
    }
  }

  // Clears the application pause of these partitions (in librdkafka; our Part state is gone).
  void resume_all(const rd_kafka_topic_partition_list_t* list) {
    if (!rk_ || !list || list->cnt == 0) return;
    PartitionList l = copy_partition_list(list);
    rd_kafka_resume_partitions(rk_.get(), l.get());
  }

  void clear_buffer(Part& p) {
    total_buffered_ -= std::min(total_buffered_, p.buffered.size());
    total_buffered_bytes_ -= std::min(total_buffered_bytes_, p.buffered_bytes);
    p.buffered.clear();
    p.buffered_bytes = 0;
  }

  // ---- poison ----

  void check_poison() {
    for (auto& [key, ptr] : parts_) {
      Part& p = *ptr;
      if (p.poisoned || p.revoking) continue;
      auto failed = p.acks->failed_offset();
      if (failed < 0) continue;
      p.poisoned = true;
      p.held_logged = Clock::now();
      clear_buffer(p);
      if (!p.paused) set_paused(p, true);
      const char* policy = s_.on_poison == PoisonPolicy::stop              ? "stop"
                           : s_.on_poison == PoisonPolicy::pause_partition ? "pause_partition"
                                                                           : "dead_letter";
      ctx_->log().error(
          "kafka: the event at {}[{}] offset {} failed (it was neither written nor dead-lettered); "
          "partition {}[{}] is paused at offset {} for good (on_poison: {}): offsets will not be committed "
          "past it, and it is consumed again after a restart or rebalance",
          p.topic.str(), p.partition, failed, p.topic.str(), p.partition, failed, policy);
      if (s_.on_poison == PoisonPolicy::stop && !failed_pipeline_) {
        failed_pipeline_ = true;
        ctx_->fail(std::make_exception_ptr(FatalStageError(
            "kafka: poison event at " + p.topic.str() + "[" + std::to_string(p.partition) + "] offset " +
            std::to_string(failed) + " could not be written; stopping (on_poison: stop)")));
      }
    }
  }

  void remind_held() {
    const auto now = Clock::now();
    for (auto& [key, ptr] : parts_) {
      Part& p = *ptr;
      if (!p.poisoned || p.revoking || now - p.held_logged < kHeldReminder) continue;
      p.held_logged = now;
      ctx_->log().error(
          "kafka: partition {}[{}] is still held at offset {}, a record that was neither written nor "
          "dead-lettered; it stays held until a restart or rebalance (docs/operations.md, \"The dead-letter "
          "guard tripped\")",
          p.topic.str(), p.partition, p.acks->failed_offset());
    }
  }

  // ---- commits ----

  std::vector<Part*> all_parts() {
    std::vector<Part*> out;
    for (auto& [key, p] : parts_) out.push_back(p.get());
    return out;
  }

  // The offsets of `parts` that moved since the last commit (marked as sent).
  PartitionList commit_list(const std::vector<Part*>& parts) {
    PartitionList l = make_partition_list(static_cast<int>(parts.size()));
    for (Part* p : parts) {
      // exactly_once: Kafka gets what PostgreSQL holds under our claim, for lag monitoring only.
      auto off = store_ ? store_->written(p->topic.str(), p->partition) : p->acks->commit_offset();
      if (off < 0 || off <= p->committed_sent) continue;
      rd_kafka_topic_partition_list_add(l.get(), p->topic.str().c_str(), p->partition)->offset = off;
      p->committed_sent = off;
    }
    return l;
  }

  void commit_parts(const std::vector<Part*>& parts, bool sync, const char* why) {
    if (!rk_) return;
    PartitionList l = commit_list(parts);
    if (l->cnt == 0) return;
    ++commits_;
    auto e = rd_kafka_commit(rk_.get(), l.get(), sync ? 0 : 1);
    if (!sync) return;  // commit_cb reports
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      commit_failures_ += static_cast<std::uint64_t>(l->cnt);
      log_warn("commit", "kafka: {} commit of {} failed: {}", why, describe_offsets(l.get()),
               rd_kafka_err2str(e));
    } else if (ctx_log_ok_)
      ctx_->log().debug("kafka: {} commit: {}", why, describe_offsets(l.get()));
    for (int i = 0; i < l->cnt; ++i) {
      const auto& el = l->elems[i];
      auto it = parts_.find(Key(el.topic, el.partition));
      if (it == parts_.end()) continue;
      if (e || el.err)
        it->second->committed_sent = -1;  // retried at the next interval
      else
        it->second->committed = std::max(it->second->committed, el.offset);
    }
  }

  static std::string describe_offsets(const rd_kafka_topic_partition_list_t* l) {
    std::string out;
    for (int i = 0; i < l->cnt; ++i) {
      if (i) out += ' ';
      out += std::string(l->elems[i].topic) + "[" + std::to_string(l->elems[i].partition) + "]@" +
             std::to_string(l->elems[i].offset);
    }
    return out;
  }

  void on_commit(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets) {
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    for (int i = 0; offsets && i < offsets->cnt; ++i) {
      const auto& el = offsets->elems[i];
      auto it = parts_.find(Key(el.topic, el.partition));
      auto perr = el.err ? el.err : err;
      if (perr == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || perr == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
          perr == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID) {
        // Expected while the group rebalances: retried at the next interval.
        if (ctx_log_ok_)
          ctx_->log().debug("kafka: commit of {}[{}]@{} deferred: {}", el.topic, el.partition, el.offset,
                            rd_kafka_err2str(perr));
        if (it != parts_.end()) it->second->committed_sent = -1;
      } else if (perr) {
        ++commit_failures_;
        log_warn(std::string("commit:") + el.topic, "kafka: commit of {}[{}]@{} failed: {}", el.topic,
                 el.partition, el.offset, rd_kafka_err2str(perr));
        if (it != parts_.end()) it->second->committed_sent = -1;  // retried at the next interval
      } else if (it != parts_.end()) {
        it->second->committed = std::max(it->second->committed, el.offset);
      }
    }
  }

  // ---- rebalances ----

  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list) {
    ++rebalances_;
    log_positions(err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "before assign" : "before revoke");
    cache_part_ = nullptr;
    bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_.get()), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      for (int i = 0; i < list->cnt; ++i) {
        auto p = std::make_unique<Part>();
        p->topic = list->elems[i].topic;
        p->partition = list->elems[i].partition;
        p->acks = std::make_shared<PartitionAcks>(waker_);
        auto& slot = parts_[Key(p->topic.str(), p->partition)];
        if (slot) slot->acks->detach();
        slot = std::move(p);
      }
      if (ctx_log_ok_ && !closing_ && list->cnt > 0)
        ctx_->log().info("kafka: assigned {} ({}; {} partitions now)", describe_partitions(list),
                         cooperative ? "cooperative" : "eager", parts_.size());
      if (store_ && list->cnt > 0 && !closing_) {
        claim_then_assign(copy_partition_list(list), cooperative);
      } else {
        assign(list, cooperative);
      }
      publish_stats();
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      bool lost = rd_kafka_assignment_lost(rk_.get());
      PendingRevoke rev{copy_partition_list(list), Clock::now() + s_.revoke_timeout, cooperative,
                        ++revoke_ids_};
      rev.lost = lost;
      std::size_t in_flight = 0;
      for (int i = 0; i < list->cnt; ++i) {
        auto it = parts_.find(Key(list->elems[i].topic, list->elems[i].partition));
        if (it == parts_.end()) continue;
        Part& p = *it->second;
        p.revoking = true;
        clear_buffer(p);
        if (lost) p.acks->detach();
        if (!p.poisoned) in_flight += p.acks->unsettled();
      }
      if (ctx_log_ok_ && !closing_) {
        if (lost)
          ctx_->log().warn(
              "kafka: lost {} (the group moved on without us): not committing them; their "
              "in-flight events will be delivered again to the new owner",
              describe_partitions(list));
        else
          ctx_->log().info("kafka: revoking {} ({} events in flight; waiting up to {} ms for them)",
                           describe_partitions(list), in_flight, s_.revoke_timeout.count());
      }
      revokes_.push_back(std::move(rev));
      if (lost) {
        finish_revoke(revokes_.size() - 1, /*commit=*/false, /*sync=*/false);
      } else {
        for (int i = 0; i < list->cnt; ++i) {
          auto it = parts_.find(Key(list->elems[i].topic, list->elems[i].partition));
          if (it != parts_.end()) {
            if (!it->second->paused) set_paused(*it->second, true);
            it->second->acks->wake_at(0);
          }
        }
        if (closing_)
          finish_revoke(revokes_.size() - 1, /*commit=*/true, /*sync=*/true);
        else
          progress_revokes();
      }
      publish_stats();
      return;
    }
    log_warn("rebalance", "kafka: rebalance error: {}; dropping the assignment", rd_kafka_err2str(err));
    PartitionList all = make_partition_list(static_cast<int>(parts_.size()));
    for (auto& [key, p] : parts_) {
      p->acks->detach();
      if (store_) store_->release(p->topic.str(), p->partition, p->acks.get());
      rd_kafka_topic_partition_list_add(all.get(), p->topic.str().c_str(), p->partition);
    }
    resume_all(all.get());
    parts_.clear();
    revokes_.clear();
    rd_kafka_assign(rk_.get(), nullptr);
  }

  void assign(rd_kafka_topic_partition_list_t* list, bool cooperative) {
    if (cooperative) {
      ErrorHandle e(rd_kafka_incremental_assign(rk_.get(), list));
      if (e) log_warn("assign", "kafka: incremental assign failed: {}", rd_kafka_error_string(e.get()));
    } else if (auto e = rd_kafka_assign(rk_.get(), list); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log_warn("assign", "kafka: assign failed: {}", rd_kafka_err2str(e));
    }
  }

  // exactly_once: before fetching, the partitions are claimed in the sink's offset store (which
  // fences their previous owner) and each starts at the offset stored there, not Kafka's. The
  // claim runs on the store's thread; librdkafka's group state machine waits for the assign call.
  void claim_then_assign(PartitionList list, bool cooperative) {
    std::vector<PartitionClaimRequest> requests;
    for (int i = 0; i < list->cnt; ++i) {
      auto it = parts_.find(Key(list->elems[i].topic, list->elems[i].partition));
      if (it != parts_.end())
        requests.push_back({it->second->topic, it->second->partition, it->second->acks, s_.group});
    }
    claim_pending_ = std::move(list);
    claim_cooperative_ = cooperative;
    store_->claim(std::move(requests), [this, alive = std::weak_ptr<int>(alive_), ex = ctx_->executor()](
                                           std::vector<PartitionClaim> claims, std::string error) {
      auto shared = std::make_shared<std::vector<PartitionClaim>>(std::move(claims));
      boost::asio::post(ex, [this, alive, shared, error = std::move(error)] {
        if (alive.expired()) return;
        on_claimed(*shared, error);
      });
    });
  }

  void on_claimed(const std::vector<PartitionClaim>& claims, const std::string& error) {
    if (!claim_pending_ || closed_) return;
    PartitionList list = std::move(claim_pending_);
    if (!error.empty()) {
      if (ctx_log_ok_ && !closing_)
        ctx_->fail(std::make_exception_ptr(std::runtime_error("kafka: " + error)));
      assign(list.get(), claim_cooperative_);  // nothing fetches: close() gives them back
      return;
    }
    std::string resumed;
    for (const auto& c : claims) {
      for (int i = 0; i < list->cnt; ++i)
        if (list->elems[i].partition == c.partition && c.topic == list->elems[i].topic)
          list->elems[i].offset = c.next_offset >= 0 ? c.next_offset : RD_KAFKA_OFFSET_INVALID;
      resumed += fmt::format("{}{}[{}]@{} (epoch {})", resumed.empty() ? "" : " ", c.topic, c.partition,
                             c.next_offset >= 0 ? std::to_string(c.next_offset) : "committed", c.epoch);
    }
    if (ctx_log_ok_ && !closing_)
      ctx_->log().info("kafka: claimed in {}: {}", store_->description(), resumed);
    assign(list.get(), claim_cooperative_);
    publish_stats();
    schedule_pump();
  }

  // Finishes revokes whose partitions have nothing in flight, or whose time is up.
  void progress_revokes() {
    for (std::size_t i = 0; i < revokes_.size();) {
      const auto& rev = revokes_[i];
      if (rev.committing) {
        ++i;
        continue;
      }
      std::size_t in_flight = 0;
      for (int j = 0; j < rev.list->cnt; ++j) {
        auto it = parts_.find(Key(rev.list->elems[j].topic, rev.list->elems[j].partition));
        if (it != parts_.end() && !it->second->poisoned) in_flight += it->second->acks->unsettled();
      }
      if (!(in_flight == 0 || Clock::now() >= rev.deadline) ||
          !finish_revoke(i, /*commit=*/true, /*sync=*/false))
        ++i;
    }
  }

  // Commits the revoked partitions (when asked), then forgets them and hands them back to
  // librdkafka. On the data path the commit is asynchronous and the unassign follows its result
  // (on_revoke_commit); when closing (sync) both happen now. Returns whether the revoke is done.
  bool finish_revoke(std::size_t index, bool commit, bool sync) {
    auto& rev = revokes_[index];
    if (rev.committing) return false;
    std::vector<Part*> parts = revoke_parts(rev);
    std::size_t left = 0;
    for (Part* p : parts)
      if (!p->poisoned) left += p->acks->unsettled();
    if (ctx_log_ok_ && !closing_ && commit && left > 0)
      ctx_->log().warn(
          "kafka: revoking {} with {} events still in flight after revoke_timeout ({} ms); committing what "
          "was settled, the rest will be delivered again to the new owner",
          describe_partitions(rev.list.get()), left, s_.revoke_timeout.count());
    for (Part* p : parts) p->acks->detach();  // what settles from now on cannot be committed by us
    if (commit && rk_) {
      if (!sync && queue_) {
        PartitionList list = commit_list(parts);
        if (list->cnt > 0) {
          ++commits_;
          auto e = rd_kafka_commit_queue(rk_.get(), list.get(), queue_.get(), &KafkaSource::revoke_commit_cb,
                                         reinterpret_cast<void*>(static_cast<std::uintptr_t>(rev.id)));
          if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rev.committing = true;
            return false;  // on_revoke_commit completes it
          }
          log_warn("commit", "kafka: revoke commit of {} failed: {}", describe_offsets(list.get()),
                   rd_kafka_err2str(e));
        }
      } else {
        commit_parts(parts, /*sync=*/true, "revoke");
      }
    }
    complete_revoke(index);
    return true;
  }

  std::vector<Part*> revoke_parts(const PendingRevoke& rev) {
    std::vector<Part*> parts;
    for (int j = 0; j < rev.list->cnt; ++j) {
      auto it = parts_.find(Key(rev.list->elems[j].topic, rev.list->elems[j].partition));
      if (it != parts_.end()) parts.push_back(it->second.get());
    }
    return parts;
  }

  void on_revoke_commit(std::uint64_t id, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets) {
    on_commit(err, offsets);
    for (std::size_t i = 0; i < revokes_.size(); ++i)
      if (revokes_[i].id == id) return complete_revoke(i);
  }

  void complete_revoke(std::size_t index) {
    PendingRevoke rev = std::move(revokes_[index]);
    revokes_.erase(revokes_.begin() + static_cast<std::ptrdiff_t>(index));
    for (Part* p : revoke_parts(rev)) {
      p->acks->detach();
      if (store_ && !rev.lost) store_->release(p->topic.str(), p->partition, p->acks.get());
      parts_.erase(Key(p->topic.str(), p->partition));
    }
    cache_part_ = nullptr;
    if (ctx_log_ok_ && !closing_)
      ctx_->log().info("kafka: revoked {} ({} partitions left)", describe_partitions(rev.list.get()),
                       parts_.size());
    if (!rk_) return;
    // librdkafka keeps an application pause across assignments: clear ours before handing the
    // partitions back, or a partition assigned to us again would never fetch.
    resume_all(rev.list.get());
    if (rev.cooperative) {
      ErrorHandle e(rd_kafka_incremental_unassign(rk_.get(), rev.list.get()));
      if (e) log_warn("unassign", "kafka: incremental unassign failed: {}", rd_kafka_error_string(e.get()));
    } else if (auto e = rd_kafka_assign(rk_.get(), nullptr); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log_warn("unassign", "kafka: unassign failed: {}", rd_kafka_err2str(e));
    }
  }

  // ---- librdkafka callbacks (served inside our own calls, on the strand) ----

  static void rebalance_cb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    static_cast<KafkaSource*>(opaque)->on_rebalance(err, parts);
  }
  static void commit_cb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                        void* opaque) {
    static_cast<KafkaSource*>(opaque)->on_commit(err, offsets);
  }
  static void revoke_commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* offsets, void* commit_opaque) {
    static_cast<KafkaSource*>(rd_kafka_opaque(rk))
        ->on_revoke_commit(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(commit_opaque)), err,
                           offsets);
  }
  static void error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaSource*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      auto orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
      if (self->ctx_log_ok_ && !self->failed_pipeline_) {
        self->failed_pipeline_ = true;
        self->ctx_->fail(std::make_exception_ptr(FatalStageError(
            std::string("kafka: fatal consumer error: ") + rd_kafka_err2name(orig) + ": " + buf)));
      }
      return;
    }
    self->log_warn(std::string("error:") + std::to_string(err), "kafka: {}: {}",
                   rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
  }
  // librdkafka's statistics (every statistics.interval.ms), served inside our consume calls on the
  // strand: keeps each assigned partition's consumer lag for the metrics.
  static int stats_cb(rd_kafka_t*, char* json, size_t len, void* opaque) {
    static_cast<KafkaSource*>(opaque)->on_statistics(std::string_view(json, len));
    return 0;  // librdkafka frees json
  }
  void on_statistics(std::string_view json) {
    simdjson::dom::object topics;
    if (stats_parser_.parse(json.data(), json.size()).get_object()["topics"].get(topics)) return;
    for (auto& [key, p] : parts_) {
      std::int64_t lag = -1;
      simdjson::dom::object part;
      if (topics[key.first]["partitions"][std::to_string(key.second)].get(part) ||
          part["consumer_lag"].get(lag))
        lag = -1;
      p->lag = lag;
    }
  }
  static void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    auto* self = static_cast<KafkaSource*>(rd_kafka_opaque(rk));
    if (!self || !self->ctx_log_ok_ || !self->ctx_) return;
    auto lvl = level <= 3   ? spdlog::level::err
               : level == 4 ? spdlog::level::warn
               : level <= 6 ? spdlog::level::info
                            : spdlog::level::debug;
    self->ctx_->log().log(lvl, "librdkafka {}: {}", fac, buf);
  }

  // ---- logging and stats ----

  template <typename... Args>
  void log_warn(const std::string& key, fmt::format_string<Args...> f, Args&&... args) {
    if (!ctx_log_ok_ || !ctx_) return;
    auto now = Clock::now();
    auto& entry = rate_[key];
    if (entry.first != Clock::time_point{} && now - entry.first < kLogEvery) {
      ++entry.second;
      return;
    }
    auto text = fmt::format(f, std::forward<Args>(args)...);
    if (entry.second > 0) text += fmt::format(" ({} more like this suppressed)", entry.second);
    entry = {now, 0};
    ctx_->log().warn("{}", text);
  }

  void publish_stats() {
    if (!board_) return;
    KafkaSourceStats s;
    s.stage = ctx_ && ctx_log_ok_ ? ctx_->stage_name() : s_.stage;
    s.instance = instance_;
    s.group = s_.group;
    s.exactly_once = store_ != nullptr;
    s.pauses = pauses_;
    s.resumes = resumes_;
    s.rebalances = rebalances_;
    s.commits = commits_;
    s.commit_failures = commit_failures_;
    s.pipeline = s_.pipeline;
    for (auto& [key, p] : parts_) {
      KafkaPartitionStats ps;
      ps.topic = p->topic;
      ps.partition = p->partition;
      ps.fetched = p->fetched;
      ps.emitted = p->emitted;
      ps.buffered = p->buffered.size();
      ps.in_flight = p->acks->window();
      ps.fetched_offset = p->fetched_offset;
      ps.written_offset = written_offset(*p);
      ps.committed_offset = p->committed;
      if (!store_ && ps.written_offset > 0)
        ps.duplicate_exposure = static_cast<std::uint64_t>(std::max<std::int64_t>(
            0, ps.written_offset - std::max<std::int64_t>(p->first_offset, p->committed)));
      ps.epoch = store_ ? store_->epoch(p->topic.str(), p->partition) : 0;
      ps.poisoned_offset = p->poisoned ? p->acks->failed_offset() : -1;
      ps.paused = p->paused;
      ps.revoking = p->revoking;
      ps.consumer_lag = p->lag;
      s.partitions.push_back(std::move(ps));
    }
    board_->publish(std::move(s));
  }

  std::int64_t written_offset(const Part& p) const {
    return store_ ? store_->written(p.topic.str(), p.partition) : p.acks->commit_offset();
  }

  // One line per rebalance: where each partition stands, so that what a rebalance may replay
  // (at_least_once: written but not committed) is on record.
  void log_positions(const char* when) {
    if (!ctx_log_ok_ || closing_ || parts_.empty()) return;
    std::string text;
    for (auto& [key, p] : parts_) {
      auto written = written_offset(*p);
      text += fmt::format("{}{}[{}] fetched {} in flight {} written {} committed {}",
                          text.empty() ? "" : "; ", p->topic.str(), p->partition, p->fetched_offset,
                          p->acks->window(), written, p->committed);
      if (store_)
        text += fmt::format(" epoch {}", store_->epoch(p->topic.str(), p->partition));
      else if (written > 0)
        text += fmt::format(" exposure {}",
                            std::max<std::int64_t>(0, written - std::max(p->first_offset, p->committed)));
    }
    ctx_->log().info("kafka: positions {}: {}", when, text);
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  const KafkaSettings& s_;
  int instance_;
  SourceContext* ctx_ = nullptr;
  KafkaHandle rk_;  // declared before queue_: destroyed after it
  QueueHandle queue_;
  int pipe_[2] = {-1, -1};
  std::optional<boost::asio::posix::stream_descriptor> fd_;
  std::optional<boost::asio::steady_timer> tick_;
  std::shared_ptr<Waker> waker_ = std::make_shared<Waker>();
  kafka::StaticMemberId member_;  // the default group.instance.id's lock
  std::string member_id_;         // group.instance.id in use, "" for a dynamic member
  std::map<Key, std::unique_ptr<Part>> parts_;
  Key rr_;  // the partition served last
  std::vector<PendingRevoke> revokes_;
  std::uint64_t revoke_ids_ = 0;
  std::size_t total_buffered_ = 0, total_buffered_bytes_ = 0;  // over all partitions
  bool holding_ = false;
  Clock::time_point hold_since_;
  rd_kafka_topic_t* cache_rkt_ = nullptr;
  std::int32_t cache_partition_ = -1;
  Part* cache_part_ = nullptr;
  Clock::time_point last_commit_;
  std::map<std::string, std::pair<Clock::time_point, std::uint64_t>> rate_;
  std::shared_ptr<StatsBoard> board_;
  std::shared_ptr<OffsetStore> store_;  // exactly_once: the sink's store of our positions
  PartitionList claim_pending_;         // an assignment waiting for its claim
  bool claim_cooperative_ = false;
  std::uint64_t pauses_ = 0, resumes_ = 0, rebalances_ = 0, commits_ = 0, commit_failures_ = 0;
  simdjson::dom::parser stats_parser_;
  bool stopped_ = false, finished_ = false, closing_ = false, closed_ = false;
  bool in_pump_ = false, continuation_posted_ = false, failed_pipeline_ = false;
  bool ctx_log_ok_ = true;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // callbacks check it before touching this
};

class KafkaFactory : public StageFactory {
 public:
  explicit KafkaFactory(KafkaSettings s) : s_(std::move(s)) {}
  std::unique_ptr<Source> make_source(int instance) override {
    return std::make_unique<KafkaSource>(s_, instance);
  }
  SourceBound source_bound() const override {
    std::optional<std::size_t> cap;
    if (s_.max_in_flight != kNoInFlightCap) cap = s_.max_in_flight;
    return {.ends = s_.stop_at_end,
            .max_unsettled = cap,
            .limit = "max_in_flight_per_partition, per partition",
            .to_end = "set stop_at_end: true"};
  }

 private:
  KafkaSettings s_;
};

// ---- configuration ------------------------------------------------------------------------------

void check_property(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
                    const YAML::Mark& mark) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    throw ConfigError(
        mark,
        "librdkafka property '" + key +
            "': " + (is_secret_setting(key) ? std::string("librdkafka rejects its value") : std::string(err)),
        "see librdkafka's CONFIGURATION.md for the consumer properties");
}

std::unique_ptr<StageFactory> configure(const StageConfig& cfg, const PipelineConfig& pipeline) {
  const Options& o = cfg.options;
  KafkaSettings s;
  s.stage = cfg.name;
  s.pipeline = pipeline.name;
  s.on_poison = pipeline.on_poison;

  auto brokers = o.get_string("brokers");
  if (brokers.empty())
    throw ConfigError(o.mark("brokers"), "brokers is empty", "e.g. brokers: ${KAFKA_BROKERS}");
  s.group = o.get_string("group");
  if (s.group.empty()) throw ConfigError(o.mark("group"), "group is empty", "name the consumer group");

  bool has_topics = o.has("topics"), has_pattern = o.has("topic_pattern");
  if (has_topics == has_pattern)
    throw ConfigError(has_pattern ? o.mark("topic_pattern") : cfg.mark,
                      has_topics ? "set either topics or topic_pattern, not both"
                                 : "the kafka source needs topics or topic_pattern",
                      has_topics ? "Please delete one." : "e.g. topics: [orders]");
  if (has_topics) {
    s.topics = o.get_string_list("topics");
    if (s.topics.empty()) throw ConfigError(o.mark("topics"), "topics is empty", "name at least one topic");
    for (const auto& t : s.topics)
      if (t.empty() || t.starts_with("^"))
        throw ConfigError(o.mark("topics"), "topic name '" + t + "' is empty or a pattern",
                          "use topic_pattern for a regular expression");
  } else {
    auto pattern = o.get_string("topic_pattern");
    if (pattern.empty()) throw ConfigError(o.mark("topic_pattern"), "topic_pattern is empty");
    if (!pattern.starts_with("^")) pattern = "^" + pattern;
    try {
      std::regex re(pattern.substr(1), std::regex::extended);
    } catch (const std::regex_error& e) {
      throw ConfigError(o.mark("topic_pattern"),
                        "topic_pattern is not a valid regular expression: " + std::string(e.what()));
    }
    s.topics = {pattern};
  }

  auto max_in_flight = o.get_int("max_in_flight_per_partition", 10000);
  if (max_in_flight < 1)
    throw ConfigError(o.mark("max_in_flight_per_partition"),
                      "max_in_flight_per_partition must be at least 1");
  s.max_in_flight = static_cast<std::size_t>(max_in_flight);
  // A bounded input needs no cap, and a stage holding its acks to the end must not meet one.
  s.stop_at_end = o.get_bool("stop_at_end", false);
  if (s.stop_at_end && !o.has("max_in_flight_per_partition")) s.max_in_flight = kNoInFlightCap;
  s.commit_interval = o.get_duration("commit_interval", std::chrono::milliseconds(1000));
  if (s.commit_interval.count() <= 0)
    throw ConfigError(o.mark("commit_interval"), "commit_interval must be positive");
  s.revoke_timeout = o.get_duration("revoke_timeout", std::chrono::milliseconds(10000));
  if (s.revoke_timeout.count() < 0)
    throw ConfigError(o.mark("revoke_timeout"), "revoke_timeout must not be negative");
  auto prefetch_kb = o.get_int("prefetch_kbytes", 16384);
  if (prefetch_kb < 64 || prefetch_kb > 2097151)
    throw ConfigError(o.mark("prefetch_kbytes"), "prefetch_kbytes must be between 64 and 2097151");
  s.prefetch_bytes = static_cast<std::size_t>(prefetch_kb) * 1024;
  auto start_from = o.get_string("start_from", "earliest");

  // Ours first; the user's map may override any of them but the reserved few.
  std::int64_t partition_fetch =
      std::min<std::int64_t>(1 << 20, std::max<std::int64_t>(64 * 1024, prefetch_kb * 1024 / 4));
  s.properties = {
      {"bootstrap.servers", brokers},
      {"group.id", s.group},
      {"client.id", "etld-" + pipeline.name + "-" + cfg.name},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", start_from},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"queued.max.messages.kbytes", std::to_string(prefetch_kb)},
      {"max.partition.fetch.bytes", std::to_string(partition_fetch)},
      {"fetch.queue.backoff.ms", "50"},
      // A partition resumed after a pause joins the broker's next fetch request; with the default
      // 500 ms long poll, that request waits whenever the other partitions have nothing new, so
      // every resume could stall its partition half a second (the tail of a backlog drained in
      // 1.3 s instead of 0.4 s). Idle, this costs 20 fetch requests per second and broker.
      {"fetch.wait.max.ms", "50"},
      {"statistics.interval.ms", "5000"},  // consumer lag for the metrics
  };
  if (s.stop_at_end) s.properties.emplace_back("enable.partition.eof", "true");
  ConfHandle conf(rd_kafka_conf_new());
  for (const auto& [k, v] : s.properties) check_property(conf.get(), k, v, o.mark("brokers"));
  auto user = o.get_string_map("librdkafka");
  YAML::Node user_node = o.node("librdkafka");
  for (const auto& [k, v] : user) {
    YAML::Mark mark = o.mark("librdkafka");
    if (user_node.IsMap())
      for (const auto& kv : user_node)
        if (kv.first.as<std::string>("") == k) mark = kv.first.Mark();
    if (auto it = reserved_properties().find(k); it != reserved_properties().end())
      throw ConfigError(mark, "librdkafka property '" + k + "' is set by the kafka source itself",
                        it->second);
    if (is_secret_setting(k)) remember_secret(v);
    check_property(conf.get(), k, v, mark);
    if (k == "group.instance.id") {  // set per instance by create_consumer
      s.member_id = v;
      s.member_id_off = v.empty();
    } else {
      s.properties.emplace_back(k, v);
    }
    if (!s.overrides_text.empty()) s.overrides_text += ", ";
    s.overrides_text += k + "=" + (is_secret_setting(k) ? std::string("***") : v);
  }
  // The group's rebalance timeout is max.poll.interval.ms: a revoke that drains longer than that
  // gets this member thrown out of the group, and its partitions replayed elsewhere.
  std::int64_t rebalance_timeout_ms = 300000;
  for (const auto& [k, v] : s.properties)
    if (k == "max.poll.interval.ms") rebalance_timeout_ms = std::stoll(v);
  if (s.revoke_timeout.count() >= rebalance_timeout_ms)
    throw ConfigError(
        o.mark("revoke_timeout"),
        "revoke_timeout (" + std::to_string(s.revoke_timeout.count()) +
            " ms) must be shorter than the group's rebalance timeout, max.poll.interval.ms (" +
            std::to_string(rebalance_timeout_ms) + " ms)",
        "lower revoke_timeout (and max_in_flight_per_partition, which bounds what a revoke drains)");
  return std::make_unique<KafkaFactory>(std::move(s));
}

const StageRegistration reg{StageType{
    "kafka",
    Role::source,
    "Consumes Kafka topics as a consumer group; demand-driven, commits only offsets whose events are settled",
    {
        {"brokers",
         OptionKind::string,
         "Bootstrap brokers, host:port[,host:port...], e.g. ${KAFKA_BROKERS}.",
         true,
         "",
         {}},
        {"group", OptionKind::string, "Consumer group id; offsets are committed for it.", true, "", {}},
        {"topics", OptionKind::string_list, "Topics to consume (this or topic_pattern).", false, "", {}},
        {"topic_pattern",
         OptionKind::string,
         "Regular expression (POSIX extended) of topics to consume, matched against whole names; "
         "new matching topics are picked up (this or topics).",
         false,
         "",
         {}},
        {"start_from",
         OptionKind::choice,
         "Where a group without committed offsets starts: earliest or latest (auto.offset.reset).",
         false,
         "earliest",
         {"earliest", "latest"}},
        {"librdkafka",
         OptionKind::string_map,
         "Extra librdkafka consumer properties (SASL, TLS, tuning), passed through as they are; values of "
         "properties named like password, secret or key are never logged.",
         false,
         "",
         {}},
        {"max_in_flight_per_partition",
         OptionKind::integer,
         "Most events of one partition emitted and not yet committable; the partition pauses at this cap.",
         false,
         "10000",
         {}},
        {"stop_at_end",
         OptionKind::boolean,
         "Finish once every assigned partition is read to its end (a bounded input, as reduce needs), "
         "committing as the rest settles; max_in_flight_per_partition then caps nothing unless set.",
         false,
         "false",
         {}},
        {"commit_interval",
         OptionKind::duration,
         "How often settled offsets are committed (asynchronously).",
         false,
         "1s",
         {}},
        {"prefetch_kbytes",
         OptionKind::integer,
         "Bound on librdkafka's prefetch queue in KiB (queued.max.messages.kbytes); also sizes fetch "
         "requests.",
         false,
         "16384",
         {}},
        {"revoke_timeout",
         OptionKind::duration,
         "On a rebalance, how long to wait for the revoked partitions' in-flight events to settle before "
         "committing what is settled and giving them up.",
         false,
         "10s",
         {}},
    },
    configure,
    /*check_live=*/{},
    /*takes_rejected=*/false,
    /*default_max_demand=*/{},
    StageTraits{.positions_in_store = true},
}};

}  // namespace

std::vector<KafkaSourceStats> kafka_source_stats() {
  std::vector<std::shared_ptr<StatsBoard>> live;
  {
    std::lock_guard lock(boards_mutex());
    for (auto& w : boards())
      if (auto b = w.lock()) live.push_back(std::move(b));
  }
  std::vector<KafkaSourceStats> out;
  for (auto& b : live) out.push_back(b->read());
  return out;
}

}  // namespace etld
