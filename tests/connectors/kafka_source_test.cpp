// The kafka source against the real broker of scripts/dev-env (started on demand by
// etld::test::services()): delivery with all metadata, demand and pausing, commits across restarts
// (never past a failed event), start_from, rebalances between two members and poison policies.
// Option validation needs no broker: kafka_config_test.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "connectors/kafka/kafka_handles.hpp"
#include "connectors/kafka/kafka_source.hpp"
#include "stages/engine/instance_scope.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/kafka_test_util.hpp"
#include "tests/support/services.hpp"

namespace etld {
namespace {

using namespace std::chrono_literals;

// ---- a test-only sink: keeps copies of what it got, fails chosen offsets, can be slow ----------

struct Collected {
  std::mutex mu;
  std::vector<Event> events;    // clones, in arrival order
  std::size_t outstanding = 0;  // received, not yet done()
  std::size_t max_outstanding = 0;

  std::size_t size() {
    std::lock_guard lock(mu);
    return events.size();
  }
  std::vector<Event> copy() {
    std::lock_guard lock(mu);
    std::vector<Event> out;
    for (const auto& e : events) out.push_back(e.clone());
    return out;
  }
};

std::mutex g_collect_mu;
std::map<std::string, std::shared_ptr<Collected>> g_collected;

std::shared_ptr<Collected> collected(const std::string& id) {
  std::lock_guard lock(g_collect_mu);
  auto& c = g_collected[id];
  if (!c) c = std::make_shared<Collected>();
  return c;
}

struct TestSinkSettings {
  std::string id;
  std::set<std::pair<std::int32_t, std::int64_t>> fail;  // (partition, offset) settled failed
  std::chrono::milliseconds delay{0};                    // per batch
};

class KafkaTestSink : public Sink {
 public:
  explicit KafkaTestSink(const TestSinkSettings& s) : s_(s), out_(collected(s.id)) {}
  void start(SinkContext& ctx) override {
    ctx_ = &ctx;
    timer_.emplace(ctx.executor());
  }
  void consume(Batch&& batch) override {
    {
      std::lock_guard lock(out_->mu);
      for (const auto& e : batch) out_->events.push_back(e.clone());
      out_->outstanding += batch.size();
      out_->max_outstanding = std::max(out_->max_outstanding, out_->outstanding);
    }
    pending_.push_back(std::move(batch));
    if (s_.delay.count() == 0) {
      while (!pending_.empty()) complete_front();
      return;
    }
    if (!waiting_) wait();
  }
  void drain() override {
    if (pending_.empty()) return ctx_->drained();
    drain_ = true;
  }

 private:
  void wait() {
    waiting_ = true;
    timer_->start(s_.delay, [this] {
      waiting_ = false;
      complete_front();
      if (!pending_.empty()) return wait();
      if (drain_) ctx_->drained();
    });
  }
  void complete_front() {
    Batch b = std::move(pending_.front());
    pending_.pop_front();
    for (auto& e : b)
      e.ack.settle(s_.fail.count({e.partition, e.offset}) ? AckStatus::failed : AckStatus::done);
    {
      std::lock_guard lock(out_->mu);
      out_->outstanding -= b.size();
    }
    ctx_->done(b.size());
  }

  const TestSinkSettings& s_;
  std::shared_ptr<Collected> out_;
  SinkContext* ctx_ = nullptr;
  std::optional<StrandTimer> timer_;  // never fires once the sink is gone
  std::deque<Batch> pending_;
  bool waiting_ = false, drain_ = false;
};

class KafkaTestSinkFactory : public StageFactory {
 public:
  explicit KafkaTestSinkFactory(TestSinkSettings s) : s_(std::move(s)) {}
  std::unique_ptr<Sink> make_sink(int) override { return std::make_unique<KafkaTestSink>(s_); }

 private:
  TestSinkSettings s_;
};

const StageRegistration test_sink_reg{StageType{
    "kafka_test_sink",
    Role::sink,
    "test only: collects events, fails chosen partition:offset pairs",
    {
        {"id", OptionKind::string, "collection id", true, "", {}},
        {"fail", OptionKind::string_list, "partition:offset pairs to settle failed", false, "", {}},
        {"delay", OptionKind::duration, "delay per batch", false, "0", {}},
    },
    [](const StageConfig& cfg, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
      TestSinkSettings s;
      s.id = cfg.options.get_string("id");
      for (const auto& f : cfg.options.get_string_list("fail")) {
        auto colon = f.find(':');
        s.fail.insert({std::stoi(f.substr(0, colon)), std::stoll(f.substr(colon + 1))});
      }
      s.delay = cfg.options.get_duration("delay");
      return std::make_unique<KafkaTestSinkFactory>(std::move(s));
    },
}};

// ---- helpers ------------------------------------------------------------------------------------

std::shared_ptr<const PipelineConfig> load(const std::string& yaml) {
  Diagnostics diags("test.yaml");
  auto cfg = load_pipeline_text(yaml, "test.yaml", diags);
  INFO(diags.format());
  REQUIRE(cfg);
  return std::shared_ptr<const PipelineConfig>(std::move(cfg));
}

struct PipelineSpec {
  std::string topic, group, sink_id;
  std::string source_extra;  // more source options, each line "    key: value\n"
  std::string sink_extra;    // more sink options
  std::string top_extra;     // more top-level options
};

std::string pipeline_yaml(const PipelineSpec& p) {
  return "pipeline: ktest\nthreads: 2\n" + p.top_extra +
         "stages:\n"
         "  src:\n"
         "    type: kafka\n"
         "    brokers: ${KAFKA_BROKERS}\n"
         "    topics: [" +
         p.topic +
         "]\n"
         "    group: " +
         p.group +
         "\n"
         "    commit_interval: 200ms\n"
         "    librdkafka: {session.timeout.ms: '6000', heartbeat.interval.ms: '500'}\n" +
         p.source_extra +
         "  out:\n"
         "    type: kafka_test_sink\n"
         "    inputs: [src]\n"
         "    id: " +
         p.sink_id + "\n" + p.sink_extra;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// The stats of the kafka source instances of `pipelines` in `group`.
std::vector<KafkaSourceStats> stats_of(std::initializer_list<const Pipeline*> pipelines,
                                       const std::string& group) {
  std::vector<KafkaSourceStats> out;
  for (const auto* p : pipelines)
    for (auto& s : kafka_source_stats(p->metrics()))
      if (s.group == group) out.push_back(std::move(s));
  return out;
}
std::vector<KafkaSourceStats> stats_of(const Pipeline& p, const std::string& group) {
  return stats_of({&p}, group);
}

std::size_t assigned_partitions(const Pipeline& p, const std::string& group) {
  std::size_t n = 0;
  for (auto& s : stats_of(p, group)) n += s.partitions.size();
  return n;
}

void stop_and_wait(Pipeline& p) {
  p.stop();
  REQUIRE(p.wait_for(60s));
  auto err = p.error();
  INFO(err.value_or(""));
  CHECK_FALSE(err.has_value());
}

// One record per (partition, index) with a recognisable key, value, headers and timestamp.
test::TestRecord record_for(std::int32_t partition, int i) {
  test::TestRecord r;
  r.partition = partition;
  if (i % 7 != 3) r.key = "k" + std::to_string(partition) + "-" + std::to_string(i);
  if (i % 11 != 5) r.value = "{\"p\":" + std::to_string(partition) + ",\"i\":" + std::to_string(i) + "}";
  r.headers = {{"idx", std::to_string(i)}, {"src", "test"}};
  r.timestamp_ms = 1'700'000'000'000 + i;
  return r;
}

void produce(const std::string& topic, int partitions, int per_partition, int first = 0) {
  test::TestProducer producer(test::services().kafka_brokers);
  for (int i = first; i < first + per_partition; ++i)
    for (int p = 0; p < partitions; ++p) producer.send(topic, record_for(p, i));
  producer.flush();
}

// By partition: the offsets seen, in arrival order.
std::map<std::int32_t, std::vector<std::int64_t>> offsets_by_partition(const std::vector<Event>& events) {
  std::map<std::int32_t, std::vector<std::int64_t>> out;
  for (const auto& e : events) out[e.partition].push_back(e.offset);
  return out;
}

}  // namespace

TEST_CASE("kafka: every record arrives once with key, value, headers and metadata; offsets are committed") {
  const auto& svc = test::services();
  auto topic = test::unique_name("etld-deliver");
  auto group = test::unique_name("g-deliver");
  auto sink = test::unique_name("c");
  constexpr int kParts = 3, kPer = 200;
  test::create_topic(svc.kafka_brokers, topic, kParts);
  produce(topic, kParts, kPer);

  Pipeline p(load(pipeline_yaml({topic, group, sink, "", "", ""})));
  p.start();
  auto out = collected(sink);
  CHECK(wait_until([&] { return out->size() >= kParts * kPer; }, 60s));
  std::this_thread::sleep_for(300ms);  // anything extra would show up now
  stop_and_wait(p);

  auto events = out->copy();
  REQUIRE(events.size() == kParts * kPer);
  auto by_part = offsets_by_partition(events);
  REQUIRE(by_part.size() == kParts);
  for (auto& [part, offsets] : by_part) {
    REQUIRE(offsets.size() == kPer);
    for (int i = 0; i < kPer; ++i) CHECK(offsets[static_cast<std::size_t>(i)] == i);  // in order, no gaps
  }
  for (const auto& e : events) {
    auto i = static_cast<int>(e.offset);
    auto want = record_for(e.partition, i);
    CHECK(e.topic == topic);
    CHECK(e.has_key == want.key.has_value());
    if (want.key) CHECK(e.key == *want.key);
    CHECK(e.has_value == want.value.has_value());
    if (want.value) CHECK(e.value == *want.value);
    REQUIRE(e.headers.size() == 2);
    CHECK(e.headers[0].name == "idx");
    CHECK(e.headers[0].value == std::to_string(i));
    CHECK(e.headers[1].name == "src");
    CHECK(e.headers[1].value == "test");
    CHECK(e.timestamp_ms == 1'700'000'000'000 + i);
  }
  auto committed = test::committed_offsets(svc.kafka_brokers, group, topic, kParts);
  for (int part = 0; part < kParts; ++part) CHECK(committed[part] == kPer);
}

TEST_CASE("kafka: a slow sink bounds what is in flight; partitions pause and nothing is lost or duplicated") {
  const auto& svc = test::services();
  auto topic = test::unique_name("etld-demand");
  auto group = test::unique_name("g-demand");
  auto sink = test::unique_name("c");
  constexpr int kParts = 2, kPer = 600;
  constexpr std::size_t kCap = 40;
  test::create_topic(svc.kafka_brokers, topic, kParts);
  produce(topic, kParts, kPer);

  Pipeline p(load(pipeline_yaml({topic, group, sink, "    max_in_flight_per_partition: 40\n",
                                 "    max_demand: 30\n    min_demand: 10\n    delay: 5ms\n", ""})));
  p.start();
  auto out = collected(sink);
  std::size_t max_in_flight = 0, max_held = 0;
  bool ok = wait_until(
      [&] {
        for (auto& s : stats_of(p, group))
          for (auto& ps : s.partitions) {
            max_in_flight = std::max<std::size_t>(max_in_flight, ps.in_flight);
            max_held = std::max<std::size_t>(max_held, ps.in_flight + ps.buffered);
          }
        return out->size() >= kParts * kPer;
      },
      120s);
  CHECK(ok);
  auto stats = stats_of(p, group);
  REQUIRE(stats.size() == 1);
  CHECK(stats[0].pauses > 0);
  CHECK(stats[0].resumes > 0);
  stop_and_wait(p);

  CHECK(max_in_flight <= kCap);
  CHECK(max_held <= kCap + 512);  // the cap plus at most one consume batch fetched before the pause
  {
    std::lock_guard lock(out->mu);
    CHECK(out->max_outstanding <= 30);  // the sink's max_demand: the source never ran ahead of it
  }
  auto events = out->copy();
  CHECK(events.size() == kParts * kPer);
  auto by_part = offsets_by_partition(events);
  for (auto& [part, offsets] : by_part) {
    REQUIRE(offsets.size() == kPer);
    for (int i = 0; i < kPer; ++i) CHECK(offsets[static_cast<std::size_t>(i)] == i);
  }
  auto committed = test::committed_offsets(svc.kafka_brokers, group, topic, kParts);
  for (int part = 0; part < kParts; ++part) CHECK(committed[part] == kPer);
}

TEST_CASE("kafka: a stalled sink: prefetch waits, then partitions pause idle and resume without loss") {
  const auto& svc = test::services();
  auto topic = test::unique_name("etld-idle");
  auto group = test::unique_name("g-idle");
  auto sink = test::unique_name("c");
  constexpr int kParts = 2, kPer = 6000;  // more than the source's local buffer (8192 events)
  test::create_topic(svc.kafka_brokers, topic, kParts);
  produce(topic, kParts, kPer);

  // Each batch takes 700 ms, longer than the source holds a full buffer before pausing idle.
  Pipeline p(load(pipeline_yaml(
      {topic, group, sink, "", "    max_demand: 3000\n    min_demand: 0\n    delay: 700ms\n", ""})));
  p.start();
  auto out = collected(sink);
  std::uint64_t pauses = 0;
  CHECK(wait_until(
      [&] {
        for (auto& st : stats_of(p, group)) pauses = std::max(pauses, st.pauses);
        return out->size() >= kParts * kPer;
      },
      120s));
  CHECK(pauses > 0);
  stop_and_wait(p);
  auto by_part = offsets_by_partition(out->copy());
  for (auto& [part, offsets] : by_part) {
    REQUIRE(offsets.size() == kPer);
    for (int i = 0; i < kPer; ++i) CHECK(offsets[static_cast<std::size_t>(i)] == i);
  }
}

TEST_CASE("kafka: commits never pass a failed event; a restart redelivers from it and nothing settled") {
  const auto& svc = test::services();
  auto topic = test::unique_name("etld-commit");
  auto group = test::unique_name("g-commit");
  constexpr int kParts = 2, kPer = 100;
  test::create_topic(svc.kafka_brokers, topic, kParts);
  produce(topic, kParts, kPer);

  // Run 1: partition 0 fails at offset 37 (on_poison: pause_partition); partition 1 goes through.
  auto sink1 = test::unique_name("c");
  {
    Pipeline p(load(
        pipeline_yaml({topic, group, sink1, "", "    fail: ['0:37']\n", "on_poison: pause_partition\n"})));
    p.start();
    auto out = collected(sink1);
    CHECK(wait_until(
        [&] {
          auto by = offsets_by_partition(out->copy());
          return by[1].size() >= kPer && !by[0].empty() && by[0].back() >= 37;
        },
        60s));
    CHECK(wait_until(
        [&] {
          for (auto& s : stats_of(p, group))
            for (auto& ps : s.partitions)
              if (ps.partition == 0 && ps.poisoned_offset == 37 && ps.paused) return true;
          return false;
        },
        10s));
    stop_and_wait(p);
  }
  auto committed = test::committed_offsets(svc.kafka_brokers, group, topic, kParts);
  CHECK(committed[0] == 37);
  CHECK(committed[1] == kPer);

  // Run 2, same group, no failures: partition 0 resumes at the failed offset, partition 1 is done.
  auto sink2 = test::unique_name("c");
  {
    Pipeline p(load(pipeline_yaml({topic, group, sink2, "", "", ""})));
    p.start();
    auto out = collected(sink2);
    CHECK(wait_until([&] { return out->size() >= kPer - 37; }, 60s));
    std::this_thread::sleep_for(500ms);
    stop_and_wait(p);
    auto by = offsets_by_partition(out->copy());
    CHECK(by.count(1) == 0);
    REQUIRE(by[0].size() == kPer - 37);
    CHECK(by[0].front() == 37);
    CHECK(by[0].back() == kPer - 1);
  }
  committed = test::committed_offsets(svc.kafka_brokers, group, topic, kParts);
  CHECK(committed[0] == kPer);
  CHECK(committed[1] == kPer);
}

TEST_CASE("kafka: on_poison stop fails the pipeline at once, naming the offset") {
  const auto& svc = test::services();
  auto topic = test::unique_name("etld-stop");
  auto group = test::unique_name("g-stop");
  auto sink = test::unique_name("c");
  test::create_topic(svc.kafka_brokers, topic, 1);
  produce(topic, 1, 20);
  Pipeline p(load(pipeline_yaml({topic, group, sink, "", "    fail: ['0:5']\n", "on_poison: stop\n"})));
  p.start();
  REQUIRE(p.wait_for(60s));
  auto err = p.error();
  REQUIRE(err.has_value());
  CHECK(err->find("offset 5") != std::string::npos);
  // A poison stop is final: the default restart policy does not retry it.
  CHECK(err->find("not restartable") != std::string::npos);
  auto committed = test::committed_offsets(svc.kafka_brokers, group, topic, 1);
  CHECK(committed[0] <= 5);
}

TEST_CASE("kafka: start_from latest skips what was there before the group existed") {
  const auto& svc = test::services();
  auto topic = test::unique_name("etld-latest");
  auto group = test::unique_name("g-latest");
  auto sink = test::unique_name("c");
  test::create_topic(svc.kafka_brokers, topic, 1);
  produce(topic, 1, 10);
  Pipeline p(load(pipeline_yaml({topic, group, sink, "    start_from: latest\n", "", ""})));
  p.start();
  REQUIRE(wait_until([&] { return assigned_partitions(p, group) == 1; }, 30s));
  std::this_thread::sleep_for(2s);  // let the consumer resolve the latest offset
  produce(topic, 1, 5, 10);
  auto out = collected(sink);
  CHECK(wait_until([&] { return out->size() >= 5; }, 30s));
  std::this_thread::sleep_for(300ms);
  stop_and_wait(p);
  auto events = out->copy();
  REQUIRE(events.size() == 5);
  CHECK(events.front().offset == 10);
}

namespace {

// Two members of one group: A alone first (slow sink, so that its revoke finds events in flight),
// then B joins and takes half of the partitions. Every record must arrive exactly once overall.
void two_members(const std::string& strategy) {
  const auto& svc = test::services();
  auto topic = test::unique_name("etld-rebalance");
  auto group = test::unique_name("g-rebalance");
  auto sink_a = test::unique_name("a"), sink_b = test::unique_name("b");
  constexpr int kParts = 4, kPer = 2000;
  test::create_topic(svc.kafka_brokers, topic, kParts);
  produce(topic, kParts, kPer / 2);

  auto spec = [&](const std::string& sink, const std::string& sink_extra) {
    auto yaml = pipeline_yaml({topic, group, sink, "", sink_extra, ""});
    auto at = yaml.find("heartbeat.interval.ms: '500'");
    return yaml.insert(at, "partition.assignment.strategy: " + strategy + ", ");
  };
  Pipeline a(load(spec(sink_a, "    max_demand: 400\n    delay: 200ms\n")));
  a.start();
  auto out_a = collected(sink_a), out_b = collected(sink_b);
  REQUIRE(wait_until([&] { return assigned_partitions(a, group) == kParts; }, 30s));
  REQUIRE(wait_until([&] { return out_a->size() > 0; }, 30s));

  Pipeline b(load(spec(sink_b, "")));
  b.start();
  CHECK(wait_until(
      [&] {
        auto st = stats_of({&a, &b}, group);
        if (st.size() != 2) return false;
        return st[0].partitions.size() == kParts / 2 && st[1].partitions.size() == kParts / 2;
      },
      60s));
  produce(topic, kParts, kPer / 2, kPer / 2);
  CHECK(wait_until([&] { return out_a->size() + out_b->size() >= kParts * kPer; }, 60s));
  std::this_thread::sleep_for(500ms);
  stop_and_wait(b);
  stop_and_wait(a);

  std::map<std::int32_t, std::multiset<std::int64_t>> seen;
  for (auto* out : {out_a.get(), out_b.get()})
    for (auto& e : out->copy()) seen[e.partition].insert(e.offset);
  for (int part = 0; part < kParts; ++part) {
    CHECK(seen[part].size() == kPer);  // all there, none twice
    for (int i = 0; i < kPer; ++i) CHECK(seen[part].count(i) == 1);
  }
  auto committed = test::committed_offsets(svc.kafka_brokers, group, topic, kParts);
  for (int part = 0; part < kParts; ++part) CHECK(committed[part] == kPer);
}

}  // namespace

TEST_CASE("kafka: cooperative rebalance: revoked partitions drain, commit and move without duplicates") {
  two_members("cooperative-sticky");
}

TEST_CASE("kafka: eager rebalance (range): the whole assignment drains, commits and is re-spread") {
  two_members("range");
}

// A rough throughput figure, skipped by default: etld_tests -tc='*throughput*' --no-skip
TEST_CASE("kafka: throughput of kafka -> null (benchmark)" * doctest::skip(true)) {
  const auto& svc = test::services();
  auto topic = test::unique_name("etld-bench");
  auto group = test::unique_name("g-bench");
  constexpr int kParts = 4, kPer = 250000;
  test::create_topic(svc.kafka_brokers, topic, kParts);
  {
    test::TestProducer producer(svc.kafka_brokers);
    for (int i = 0; i < kPer; ++i)
      for (int p = 0; p < kParts; ++p) {
        test::TestRecord r;
        r.partition = p;
        r.key = std::to_string(i);
        r.value = "{\"id\":" + std::to_string(i) + ",\"status\":\"paid\",\"amount\":12.5}";
        producer.send(topic, r);
      }
    producer.flush();
  }
  auto yaml =
      "pipeline: bench\nthreads: 2\nstages:\n  src:\n    type: kafka\n    brokers: ${KAFKA_BROKERS}\n"
      "    topics: [" +
      topic + "]\n    group: " + group +
      "\n    max_demand: 5000\n"
      "  out:\n    type: 'null'\n    inputs: [src]\n    max_demand: 5000\n";
  Pipeline p(load(yaml));
  auto t0 = std::chrono::steady_clock::now();
  p.start();
  auto done = [&] {
    std::uint64_t n = 0;
    for (auto& s : p.stats())
      if (s.name == "out") n += s.events_in;
    return n >= static_cast<std::uint64_t>(kParts) * kPer;
  };
  CHECK(wait_until(done, 300s));
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("kafka -> null: " << (kParts * kPer) / secs / 1e6 << " M events/s (" << secs
                            << " s, incl. group join)");
  for (auto& st : stats_of(p, group))
    MESSAGE("pauses " << st.pauses << ", resumes " << st.resumes << ", commits " << st.commits);
  stop_and_wait(p);
}

}  // namespace etld
