#include "tests/support/kafka_test_util.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "connectors/kafka/kafka_handles.hpp"

namespace etld::test {

using namespace etld::kafka;

namespace {

ConfHandle make_conf(const std::string& brokers,
                     const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  ConfHandle conf(rd_kafka_conf_new());
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error("librdkafka property " + k + ": " + err);
  };
  set("bootstrap.servers", brokers);
  for (const auto& [k, v] : extra) set(k, v);
  return conf;
}

KafkaHandle make_handle(rd_kafka_type_t type, ConfHandle conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (!rk) throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  conf.release();
  return KafkaHandle(rk);
}

}  // namespace

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(us);
}

void create_topic(const std::string& brokers, const std::string& topic, int partitions) {
  auto rk = make_handle(RD_KAFKA_PRODUCER, make_conf(brokers));
  char err[512];
  NewTopicHandle nt(rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err));
  if (!nt) throw std::runtime_error(std::string("NewTopic: ") + err);
  AdminOptionsHandle opts(rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(opts.get(), 30000, err, sizeof err);
  QueueHandle q(rd_kafka_queue_new(rk.get()));
  rd_kafka_NewTopic_t* topics[] = {nt.get()};
  rd_kafka_CreateTopics(rk.get(), topics, 1, opts.get(), q.get());
  EventHandle ev(rd_kafka_queue_poll(q.get(), 60000));
  if (!ev) throw std::runtime_error("CreateTopics: no result within 60 s");
  if (rd_kafka_event_error(ev.get()))
    throw std::runtime_error(std::string("CreateTopics: ") + rd_kafka_event_error_string(ev.get()));
  const auto* res = rd_kafka_event_CreateTopics_result(ev.get());
  std::size_t n = 0;
  const auto** results = rd_kafka_CreateTopics_result_topics(res, &n);
  for (std::size_t i = 0; i < n; ++i)
    if (rd_kafka_topic_result_error(results[i]))
      throw std::runtime_error("CreateTopics " + topic + ": " +
                               rd_kafka_topic_result_error_string(results[i]));
  // Wait until the metadata shows every partition with a leader.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    bool ready = false;
    if (rd_kafka_metadata(rk.get(), 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
      if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt == partitions) {
        ready = true;
        for (int i = 0; i < partitions; ++i)
          if (md->topics[0].partitions[i].leader < 0 || md->topics[0].partitions[i].err) ready = false;
      }
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    if (ready) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("topic " + topic + " did not become ready within 30 s");
}

struct TestProducer::Impl {
  KafkaHandle rk;
  std::atomic<int> failures{0};
  std::string first_error;
};

namespace {
void delivery_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* impl = static_cast<TestProducer::Impl*>(opaque);
  if (m->err && impl->failures++ == 0) impl->first_error = rd_kafka_err2str(m->err);
}
}  // namespace

TestProducer::TestProducer(const std::string& brokers) : impl_(std::make_unique<Impl>()) {
  auto conf = make_conf(brokers, {{"linger.ms", "5"}, {"acks", "all"}});
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &delivery_cb);
  rd_kafka_conf_set_opaque(conf.get(), impl_.get());
  impl_->rk = make_handle(RD_KAFKA_PRODUCER, std::move(conf));
}

TestProducer::~TestProducer() {
  if (impl_ && impl_->rk) rd_kafka_flush(impl_->rk.get(), 10000);
}

void TestProducer::send(const std::string& topic, const TestRecord& r) {
  HeadersHandle headers(rd_kafka_headers_new(r.headers.size()));
  for (const auto& [name, value] : r.headers)
    rd_kafka_header_add(headers.get(), name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
  void* key = r.key ? const_cast<char*>(r.key->data()) : nullptr;
  std::size_t key_len = r.key ? r.key->size() : 0;
  void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr;
  std::size_t value_len = r.value ? r.value->size() : 0;
  while (true) {
    rd_kafka_headers_t* copy = rd_kafka_headers_copy(headers.get());
    auto err =
        rd_kafka_producev(impl_->rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(r.partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_TIMESTAMP(r.timestamp_ms),
                          RD_KAFKA_V_HEADERS(copy), RD_KAFKA_V_END);
    if (err) rd_kafka_headers_destroy(copy);  // owned by librdkafka only on success
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(impl_->rk.get(), 100);
      continue;
    }
    if (err) throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
    break;
  }
  rd_kafka_poll(impl_->rk.get(), 0);
}

void TestProducer::flush() {
  auto err = rd_kafka_flush(impl_->rk.get(), 30000);
  if (err) throw std::runtime_error(std::string("flush: ") + rd_kafka_err2str(err));
  rd_kafka_poll(impl_->rk.get(), 0);
  if (impl_->failures > 0)
    throw std::runtime_error(std::to_string(impl_->failures.load()) +
                             " deliveries failed: " + impl_->first_error);
}

std::map<std::int32_t, std::int64_t> committed_offsets(const std::string& brokers, const std::string& group,
                                                       const std::string& topic, int partitions) {
  auto rk = make_handle(RD_KAFKA_CONSUMER, make_conf(brokers, {{"group.id", group}}));
  PartitionList list = make_partition_list(partitions);
  for (int i = 0; i < partitions; ++i) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), i);
  auto err = rd_kafka_committed(rk.get(), list.get(), 30000);
  if (err) throw std::runtime_error(std::string("committed: ") + rd_kafka_err2str(err));
  std::map<std::int32_t, std::int64_t> out;
  for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
  rd_kafka_consumer_close(rk.get());
  return out;
}

}  // namespace etld::test
