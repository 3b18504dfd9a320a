// RAII owners for librdkafka's C handles: each is a std::unique_ptr with the matching destroy
// function, so a handle is released exactly once on every path, exceptions included.
// Threading: as for the handles themselves (see rdkafka.h); the wrappers add no state.
#pragma once

#include <memory>
#include <string>

#include <librdkafka/rdkafka.h>

namespace etld::kafka {

struct KafkaDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
  void operator()(rd_kafka_topic_partition_list_t* p) const { rd_kafka_topic_partition_list_destroy(p); }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); }
  void operator()(rd_kafka_error_t* p) const { rd_kafka_error_destroy(p); }
  void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); }
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
};

using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using ConfHandle = std::unique_ptr<rd_kafka_conf_t, KafkaDeleter>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaDeleter>;
using QueueHandle = std::unique_ptr<rd_kafka_queue_t, KafkaDeleter>;
using EventHandle = std::unique_ptr<rd_kafka_event_t, KafkaDeleter>;
using MessageHandle = std::unique_ptr<rd_kafka_message_t, KafkaDeleter>;
using ErrorHandle = std::unique_ptr<rd_kafka_error_t, KafkaDeleter>;
using HeadersHandle = std::unique_ptr<rd_kafka_headers_t, KafkaDeleter>;
using AdminOptionsHandle = std::unique_ptr<rd_kafka_AdminOptions_t, KafkaDeleter>;
using NewTopicHandle = std::unique_ptr<rd_kafka_NewTopic_t, KafkaDeleter>;

inline PartitionList make_partition_list(int size = 0) {
  return PartitionList(rd_kafka_topic_partition_list_new(size));
}
inline PartitionList copy_partition_list(const rd_kafka_topic_partition_list_t* list) {
  return PartitionList(list ? rd_kafka_topic_partition_list_copy(list)
                            : rd_kafka_topic_partition_list_new(0));
}

// "orders[0,1,2] payments[3]": a partition list for log lines (offsets left out).
std::string describe_partitions(const rd_kafka_topic_partition_list_t* list);

}  // namespace etld::kafka
