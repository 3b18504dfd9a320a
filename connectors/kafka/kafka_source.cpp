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
//
// The class is declared in kafka_source_internal.hpp; this file holds its lifecycle (start, stop,
// close, the consumer's setup and teardown, waiting) and librdkafka's callbacks, and registers the
// stage. The other parts are one file each: kafka_config, kafka_consume, kafka_pausing,
// kafka_partition_acks, kafka_commits, kafka_rebalance, kafka_claims, kafka_formats and kafka_stats.

#include "connectors/kafka/kafka_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "config/schema/secrets.hpp"
#include "connectors/kafka/kafka_source_internal.hpp"
#include "stages/engine/registry.hpp"

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

namespace kafka {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

KafkaSource::KafkaSource(const KafkaSettings& s, int instance)
    : s_(s), instance_(instance), cap_(s.max_in_flight) {}

KafkaSource::~KafkaSource() {
  ctx_log_ok_ = false;  // the context may be gone already
  try {
    shutdown_consumer(true);  // commits only what is settled: safe whenever we go
  } catch (...) {
  }
  unregister_board();
}

void KafkaSource::start(SourceContext& ctx) {
  ctx_ = &ctx;
  scope_.emplace(ctx.executor());
  // The waker is shared with the partitions' acks, which sinks may settle after we are gone.
  waker_->arm(ctx.executor(), scope_->bind([this] {
    waker_->rearm();
    pump();
  }));
  store_ = ctx.offset_store();
  start_formats();
  create_consumer();
  register_board();
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
      s_.stop_at_end ? "; stops at the end of its partitions"
      : s_.stop_at   ? "; a bounded read (start_at/stop_at)"
                     : "");
  last_commit_ = Clock::now();
  arm_fd();
  arm_tick();
}

void KafkaSource::on_demand() {
  if (!closed_ && !stopped_) pump();
}

void KafkaSource::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& [key, p] : parts_) clear_buffer(*p);
  if (rk_) update_pauses();
  if (!finished_) {
    finished_ = true;
    ctx_->finish();
  }
}

void KafkaSource::close() {
  stopped_ = true;
  shutdown_consumer(true);
  publish_stats();
  unregister_board();
}

void KafkaSource::create_consumer() {
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
void KafkaSource::shutdown_consumer(bool commit) {
  if (closed_) return;
  closed_ = true;
  closing_ = true;
  waker_->clear();
  stop_formats();
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

void KafkaSource::arm_fd() {
  if (!fd_ || closed_) return;
  fd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  scope_->bind([this](const boost::system::error_code& ec) {
                    if (ec || closed_) return;
                    char buf[256];
                    while (::read(fd_->native_handle(), buf, sizeof buf) > 0) {
                    }
                    pump();
                    arm_fd();
                  }));
}

void KafkaSource::arm_tick() {
  if (!tick_ || closed_) return;
  tick_->start(kTick, [this] {
    if (closed_) return;
    pump();
    remind_held();
    publish_stats();
    arm_tick();
  });
}

void KafkaSource::schedule_pump() {
  if (continuation_posted_) return;
  continuation_posted_ = true;
  scope_->post([this] {
    continuation_posted_ = false;
    pump();
  });
}

// ---- librdkafka callbacks (served inside our own calls, on the strand) ----

void KafkaSource::rebalance_cb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                               void* opaque) {
  static_cast<KafkaSource*>(opaque)->on_rebalance(err, parts);
}

void KafkaSource::commit_cb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                            void* opaque) {
  static_cast<KafkaSource*>(opaque)->on_commit(err, offsets);
}

void KafkaSource::revoke_commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* offsets, void* commit_opaque) {
  static_cast<KafkaSource*>(rd_kafka_opaque(rk))
      ->on_revoke_commit(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(commit_opaque)), err,
                         offsets);
}

void KafkaSource::error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaSource*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    auto orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
    if (self->ctx_log_ok_ && !self->failed_pipeline_) {
      self->failed_pipeline_ = true;
      self->ctx_->fail(std::make_exception_ptr(FatalStageError(std::string("kafka: fatal consumer error: ") +
                                                               rd_kafka_err2name(orig) + ": " + buf)));
    }
    return;
  }
  self->log_warn(std::string("error:") + std::to_string(err), "kafka: {}: {}",
                 rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
}

// librdkafka's statistics (every statistics.interval.ms), served inside our consume calls on the
// strand: keeps each assigned partition's consumer lag for the metrics.
int KafkaSource::stats_cb(rd_kafka_t*, char* json, size_t len, void* opaque) {
  static_cast<KafkaSource*>(opaque)->on_statistics(std::string_view(json, len));
  return 0;  // librdkafka frees json
}

void KafkaSource::log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto* self = static_cast<KafkaSource*>(rd_kafka_opaque(rk));
  if (!self || !self->ctx_log_ok_ || !self->ctx_) return;
  auto lvl = level <= 3   ? spdlog::level::err
             : level == 4 ? spdlog::level::warn
             : level <= 6 ? spdlog::level::info
                          : spdlog::level::debug;
  self->ctx_->log().log(lvl, "librdkafka {}: {}", fac, buf);
}

namespace {

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
  // librdkafka's messages may quote them (a SASL or TLS failure), and they go to our log.
  std::vector<std::string> secrets() const override {
    std::vector<std::string> out;
    for (const auto& [name, value] : s_.properties)
      if (is_secret_setting(name)) out.push_back(value);
    out.insert(out.end(), s_.registry.secrets.begin(), s_.registry.secrets.end());
    return out;
  }

 private:
  KafkaSettings s_;
};

std::unique_ptr<StageFactory> configure(const StageConfig& cfg, const PipelineConfig& pipeline) {
  return std::make_unique<KafkaFactory>(read_kafka_settings(cfg, pipeline));
}

const StageRegistration reg{StageType{
    "kafka",
    Role::source,
    "Consumes Kafka topics as a consumer group; demand-driven, commits only offsets whose events are settled",
    kafka_source_options(),
    configure,
    /*check_live=*/{},
    /*takes_rejected=*/false,
    /*default_max_demand=*/{},
    StageTraits{.positions_in_store = true},
}};

}  // namespace

}  // namespace kafka

}  // namespace etld
