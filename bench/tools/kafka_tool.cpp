// kafka_tool: the Kafka side of bench/run, on librdkafka directly.
//   kafka_tool produce   BROKERS TOPIC COUNT narrow|wide [RATE]
//       COUNT records (record i of bench/tools/records.hpp, keyed by its id), as fast as the broker
//       takes them, or at RATE records/s (record timestamps = send time, for the latency scenario).
//   kafka_tool consume   BROKERS TOPIC GROUP COUNT
//       the baseline of the source scenario: a minimal consumer-group poll loop that discards
//       COUNT records; prints the seconds from start (group join included) to the last record.
//   kafka_tool committed BROKERS TOPIC GROUP COUNT TIMEOUT_S
//       waits until GROUP's committed offsets on TOPIC add up to COUNT; prints the seconds waited.
// Output: one JSON line on stdout. Errors: a message on stderr and exit status 1.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "bench/tools/records.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void set(rd_kafka_conf_t* conf, const char* name, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name, value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    throw std::runtime_error(std::string("kafka_tool: ") + name + "=" + value + ": " + err);
}

rd_kafka_t* make(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(std::string("kafka_tool: rd_kafka_new: ") + err);
  return rk;
}

int produce(const std::string& brokers, const std::string& topic, long long count, bool wide, double rate) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", brokers);
  // At a steady rate (the latency scenario) batches wait at most 5 ms: that wait is inside the
  // latency measured, and at 1 ms the broker handled 8 small produce requests per millisecond,
  // half a core taken from what is measured.
  set(conf, "linger.ms", rate > 0 ? "5" : "20");
  set(conf, "batch.size", "1000000");
  set(conf, "queue.buffering.max.kbytes", "262144");
  set(conf, "compression.type", "none");
  rd_kafka_t* rk = make(RD_KAFKA_PRODUCER, conf);
  auto t0 = Clock::now();
  std::string value;
  for (long long i = 0; i < count; ++i) {
    if (rate > 0) {
      auto due = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / rate));
      if (due > Clock::now()) std::this_thread::sleep_until(due);
    }
    auto rec = etld::bench::make_record(i, wide);
    value.clear();
    etld::bench::append_json(value, rec, wide);
    std::string key = std::to_string(rec.id);
    for (;;) {
      rd_kafka_resp_err_t err =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(key.data(), key.size()),
                            RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        throw std::runtime_error(std::string("kafka_tool: produce: ") + rd_kafka_err2str(err));
      rd_kafka_poll(rk, 10);
    }
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("kafka_tool: flush timed out");
  double s = since(t0);
  rd_kafka_destroy(rk);
  std::printf("{\"produced\":%lld,\"seconds\":%.3f,\"bytes_per_record\":%zu}\n", count, s, value.size());
  return 0;
}

rd_kafka_t* consumer(const std::string& brokers, const std::string& group) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", brokers);
  set(conf, "group.id", group);
  set(conf, "auto.offset.reset", "earliest");
  set(conf, "enable.auto.commit", "false");
  rd_kafka_t* rk = make(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

int consume(const std::string& brokers, const std::string& topic, const std::string& group, long long count) {
  auto t0 = Clock::now();
  rd_kafka_t* rk = consumer(brokers, group);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_subscribe(rk, topics)) throw std::runtime_error("kafka_tool: subscribe failed");
  rd_kafka_topic_partition_list_destroy(topics);
  long long got = 0, bytes = 0;
  double first = -1;
  while (got < count) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (first < 0) first = since(t0);
      ++got;
      bytes += static_cast<long long>(m->len);
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      std::fprintf(stderr, "kafka_tool: consume: %s\n", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
  }
  double s = since(t0);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  std::printf("{\"consumed\":%lld,\"bytes\":%lld,\"seconds\":%.3f,\"first_record_s\":%.3f}\n", got, bytes, s,
              first);
  return 0;
}

int committed(const std::string& brokers, const std::string& topic, const std::string& group, long long count,
              double timeout_s) {
  auto t0 = Clock::now();
  rd_kafka_t* rk = consumer(brokers, group);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1)
    throw std::runtime_error("kafka_tool: no metadata for topic " + topic);
  int partitions = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  long long sum = 0;
  while (since(t0) < timeout_s) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
    sum = 0;
    if (rd_kafka_committed(rk, list, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      for (int p = 0; p < list->cnt; ++p)
        if (list->elems[p].offset > 0) sum += list->elems[p].offset;
    rd_kafka_topic_partition_list_destroy(list);
    if (sum >= count) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double s = since(t0);
  rd_kafka_destroy(rk);
  std::printf("{\"committed\":%lld,\"seconds\":%.3f}\n", sum, s);
  return sum >= count ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "produce" && (argc == 6 || argc == 7))
      return produce(argv[2], argv[3], std::atoll(argv[4]), std::string(argv[5]) == "wide",
                     argc == 7 ? std::atof(argv[6]) : 0);
    if (mode == "consume" && argc == 6) return consume(argv[2], argv[3], argv[4], std::atoll(argv[5]));
    if (mode == "committed" && argc == 7)
      return committed(argv[2], argv[3], argv[4], std::atoll(argv[5]), std::atof(argv[6]));
    std::fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
