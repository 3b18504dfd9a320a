// Kafka helpers for the services tests: unique names, topic creation through the admin API, a
// small synchronous producer and a reader of a group's committed offsets.
// Threading: each object is used from one thread; the free functions are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace etld::test {

// prefix-<pid>-<counter>-<microseconds>: unique per process run and per call.
std::string unique_name(const std::string& prefix);

// Creates `topic` with `partitions` partitions (replication factor 1) and waits until its metadata
// shows every partition. Throws std::runtime_error on failure (an existing topic is an error).
void create_topic(const std::string& brokers, const std::string& topic, int partitions);

struct TestRecord {
  std::optional<std::string> key;    // nullopt: no key
  std::optional<std::string> value;  // nullopt: a tombstone
  std::vector<std::pair<std::string, std::string>> headers;
  std::int32_t partition = -1;    // -1: the partitioner decides (by key)
  std::int64_t timestamp_ms = 0;  // 0: now
};

class TestProducer {
 public:
  explicit TestProducer(const std::string& brokers);
  ~TestProducer();
  TestProducer(const TestProducer&) = delete;
  TestProducer& operator=(const TestProducer&) = delete;

  void send(const std::string& topic, const TestRecord& record);
  // Waits for every delivery; throws std::runtime_error if any failed.
  void flush();

  struct Impl;  // public for librdkafka's delivery callback

 private:
  std::unique_ptr<Impl> impl_;
};

// The committed offset of each of the topic's partitions 0..partitions-1 for `group`
// (-1001, RD_KAFKA_OFFSET_INVALID, where none is committed).
std::map<std::int32_t, std::int64_t> committed_offsets(const std::string& brokers, const std::string& group,
                                                       const std::string& topic, int partitions);

}  // namespace etld::test
