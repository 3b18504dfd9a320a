// The KafkaSource class, declared once for the files that implement it, one concept each
// (docs/engine.md has the map): kafka_source.cpp (lifecycle, librdkafka callbacks, registration),
// kafka_consume.cpp (the consume loop), kafka_pausing.cpp (pausing, held partitions),
// kafka_commits.cpp, kafka_rebalance.cpp, kafka_claims.cpp (exactly-once), kafka_formats.cpp
// (format: avro) and kafka_stats.cpp.
// Not for includers outside connectors/kafka/: the stage is reached through its registration.
// Threading: every member runs on the source's strand (see kafka_source.cpp).
#pragma once

#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <simdjson.h>

#include "connectors/kafka/kafka_config.hpp"
#include "connectors/kafka/kafka_handles.hpp"
#include "connectors/kafka/kafka_partition_acks.hpp"
#include "connectors/kafka/static_membership.hpp"
#include "stages/engine/instance_scope.hpp"
#include "stages/engine/offset_store.hpp"
#include "stages/engine/stage.hpp"

namespace etld::kafka {

class StatsBoard;    // kafka_stats_board.hpp
struct AvroFormats;  // kafka_formats.cpp

class KafkaSource final : public Source {
 public:
  KafkaSource(const KafkaSettings& s, int instance);
  ~KafkaSource() override;

  void start(SourceContext& ctx) override;
  void on_demand() override;
  void stop() override;
  void close() override;

 private:
  using Clock = std::chrono::steady_clock;

  static constexpr std::size_t kPull = 512;                // messages per rd_kafka_consume_batch_queue call
  static constexpr std::size_t kTurnBudget = 8192;         // events pulled / emitted per strand turn
  static constexpr std::size_t kMaxBatch = 4096;           // events per emit()
  static constexpr std::size_t kLocalBufferEvents = 8192;  // fetched, undemanded events held (all partitions)
  // How long fetched messages may wait in librdkafka's queue for demand before the partitions are
  // paused (dropping that prefetch) so that rebalances and other events behind them get served.
  static constexpr std::chrono::milliseconds kHoldGrace{500};
  static constexpr std::chrono::milliseconds kTick{100};  // safety-net poll interval
  // How often a partition held at a failed record is logged again: a held partition is silent
  // otherwise, and one error line at the start scrolls out of sight.
  static constexpr std::chrono::seconds kHeldReminder{30};
  static constexpr std::chrono::seconds kLogEvery{10};  // rate limit for repeated warnings

  struct Part {
    SharedName topic;  // interned once per assignment: every event of it shares the name
    std::int32_t partition = 0;
    std::shared_ptr<PartitionAcks> acks;
    std::deque<Event> buffered;
    std::size_t buffered_bytes = 0;
    bool paused = false, revoking = false, poisoned = false;
    bool idle_paused = false;          // paused because nobody asked for events for kHoldGrace
    bool at_end = false;               // stop_at_end: read to its end, nothing newer taken since
    std::int64_t stop_offset = -1;     // stop_at: the offset its read ends before (-1: none)
    std::int64_t committed_sent = -1;  // last offset we asked Kafka to commit
    std::int64_t committed = -1;       // last offset Kafka confirmed
    std::uint64_t fetched = 0, emitted = 0;
    std::int64_t lag = -1;             // from the last statistics
    std::int64_t fetched_offset = -1;  // one past the last record taken
    std::int64_t first_offset = -1;    // the first record taken in this assignment
    Clock::time_point held_logged{};   // poisoned: when it was last logged
    // format: avro: the event at the front waits for this schema, fetched by the registry client.
    bool awaiting_schema = false;
    std::uint32_t schema_id = 0;
    // librdkafka's fetch queue for the partition (fetchq_cnt, fetchq_size), last statistics.
    std::int64_t prefetched = -1;
    std::int64_t prefetched_bytes = -1;
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

  // kafka_source.cpp: setup, teardown, waiting, librdkafka's callbacks
  void create_consumer();
  // Final commit (when asked), leave the group, release everything. Blocking: only from close()
  // (the pipeline has drained) or the destructor.
  void shutdown_consumer(bool commit);
  void arm_fd();
  void arm_tick();
  void schedule_pump();
  static void rebalance_cb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque);
  static void commit_cb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                        void* opaque);
  static void revoke_commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* offsets, void* commit_opaque);
  static void error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static int stats_cb(rd_kafka_t*, char* json, size_t len, void* opaque);
  static void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf);

  // kafka_consume.cpp: the loop
  void pump();
  // Pulls up to `budget` messages off the consumer queue into the partition buffers; serves
  // rebalances, logs, errors and commit results on the way. Returns how many messages came.
  std::size_t serve_queue(std::size_t budget, bool force = false);
  Part* find_part(rd_kafka_topic_t* rkt, std::int32_t partition);
  void take_message(const rd_kafka_message_t& m);
  void consumer_error(const rd_kafka_message_t& m);
  // Hands out buffered events round-robin across partitions, never beyond demand nor a partition's
  // in-flight cap; one emit() per batch. Returns the number emitted.
  std::size_t emit_ready(std::size_t budget);

  // kafka_formats.cpp: format / key_format avro. The registry client fetches schemas on its own
  // thread and wakes the strand when one arrives; a partition whose next event waits for one is
  // held (and paused), so that its events keep their order.
  void start_formats();
  void stop_formats();
  // Decodes `e`, the next event of `p` to leave (a dead letter when it does not decode); false
  // when it waits for its schema: `p` is then held, `e` untouched.
  bool decode_for_emit(Part& p, Event& e);
  // Whether `p`, held for a schema, may go on (the fetch ended): clears the hold.
  bool schema_arrived(Part& p);
  void report_formats();  // logs what the registry client reported since the last turn

  // kafka_pausing.cpp: pausing, and partitions held at a failed record
  std::size_t room() const;  // what may be pulled off librdkafka's queue now
  bool want_fetch(const Part& p) const;
  void check_hold();
  // stop_at_end: the input ends once every assigned partition was read to its end (librdkafka's
  // partition EOF, nothing newer taken since) and all of it was emitted. What is still unsettled
  // is committed as it settles, and on close.
  void check_end_of_input();
  void set_paused(Part& p, bool pause);
  void update_pauses();
  void resume_all(const rd_kafka_topic_partition_list_t* list);
  void clear_buffer(Part& p);
  void check_poison();
  void remind_held();

  // kafka_commits.cpp
  std::vector<Part*> all_parts();
  PartitionList commit_list(const std::vector<Part*>& parts);
  void commit_parts(const std::vector<Part*>& parts, bool sync, const char* why);
  static std::string describe_offsets(const rd_kafka_topic_partition_list_t* l);
  void on_commit(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets);

  // kafka_rebalance.cpp
  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list);
  void assign(rd_kafka_topic_partition_list_t* list, bool cooperative);
  // start_at / stop_at: sets the assigned partitions' start offsets in `list` and their stops.
  void bound_assignment(rd_kafka_topic_partition_list_t* list);
  void progress_revokes();
  bool finish_revoke(std::size_t index, bool commit, bool sync);
  std::vector<Part*> revoke_parts(const PendingRevoke& rev);
  void on_revoke_commit(std::uint64_t id, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets);
  void complete_revoke(std::size_t index);

  // kafka_claims.cpp: exactly_once
  void claim_then_assign(PartitionList list, bool cooperative);
  void on_claimed(const std::vector<PartitionClaim>& claims, const std::string& error);

  // kafka_stats.cpp
  void register_board();
  void unregister_board();
  void on_statistics(std::string_view json);
  void publish_stats();
  std::int64_t written_offset(const Part& p) const;
  void log_positions(const char* when);

  // A warning at most every kLogEvery per key, counting what it suppressed.
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

  const KafkaSettings& s_;
  int instance_;
  InFlightCap cap_;  // max_in_flight_per_partition
  SourceContext* ctx_ = nullptr;
  KafkaHandle rk_;  // declared before queue_: destroyed after it
  QueueHandle queue_;
  int pipe_[2] = {-1, -1};
  std::optional<boost::asio::posix::stream_descriptor> fd_;
  std::optional<StrandTimer> tick_;
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
  std::shared_ptr<AvroFormats> formats_;  // format or key_format avro (shared_ptr: an incomplete type)
  std::shared_ptr<OffsetStore> store_;    // exactly_once: the sink's store of our positions
  PartitionList claim_pending_;           // an assignment waiting for its claim
  bool claim_cooperative_ = false;
  std::uint64_t pauses_ = 0, resumes_ = 0, rebalances_ = 0, commits_ = 0, commit_failures_ = 0;
  simdjson::dom::parser stats_parser_;
  bool stopped_ = false, finished_ = false, closing_ = false, closed_ = false;
  bool in_pump_ = false, continuation_posted_ = false, failed_pipeline_ = false;
  bool ctx_log_ok_ = true;
  std::optional<InstanceScope> scope_;  // posts and completions: nothing runs once we are gone
};

}  // namespace etld::kafka
