#include "connectors/kafka/dead_letter_topic.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <stdexcept>

#include "config/schema/secrets.hpp"
#include "connectors/kafka/kafka_handles.hpp"
#include "stages/engine/stage.hpp"

namespace etld::kafka {

namespace {

constexpr std::chrono::seconds kDeliveryTimeout{15};

std::string iso8601_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

class DeadLetterTopic final : public sink::DeadLetterDestination {
 public:
  DeadLetterTopic(DeadLetterTopicConfig cfg, spdlog::logger& log) : cfg_(std::move(cfg)), log_(log) {}
  ~DeadLetterTopic() override { close(); }

  std::string describe() const override { return "topic " + cfg_.topic + " (brokers " + cfg_.brokers + ")"; }

  std::string write(const std::vector<sink::DeadLetter>& letters, const sink::StopSignal& stop) override {
    if (!rk_) {
      try {
        open();
      } catch (const std::runtime_error& e) {
        throw FatalStageError("cannot create the producer for the dead-letter topic " + cfg_.topic + ": " +
                              e.what());
      }
    }
    std::optional<std::string> error = send(letters, [&] { return stop.stopping(); });
    if (!error) throw sink::Stopped{};
    return *error;
  }

 private:
  static void dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    static_cast<DeadLetterTopic*>(opaque)->delivered(reinterpret_cast<std::uintptr_t>(m->_private), m->err,
                                                     rd_kafka_err2str(m->err));
  }
  // librdkafka's own logs and errors (from its threads; spdlog is thread-safe) at debug level: a
  // failed delivery is reported, with its reason, by the sink's retry warning.
  static void log_cb(const rd_kafka_t* rk, int, const char* fac, const char* buf) {
    if (auto* self = static_cast<DeadLetterTopic*>(rd_kafka_opaque(rk)))
      self->log_.debug("dead-letter producer: librdkafka {}: {}", fac, buf);
  }
  static void error_cb(rd_kafka_t*, int err, const char* reason, void* opaque) {
    static_cast<DeadLetterTopic*>(opaque)->log_.debug(
        "dead-letter producer: {}: {}", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
  }

  void open() {
    ConfHandle conf(rd_kafka_conf_new());
    char err[512];
    auto set = [&](const std::string& k, const std::string& v) {
      if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
        throw std::runtime_error(is_secret_setting(k) ? "librdkafka rejects the value of '" + k + "'"
                                                      : std::string(err));
    };
    set("message.timeout.ms", "10000");
    set("client.id", "etld-" + cfg_.pipeline + "-" + cfg_.stage + "-dead-letters");
    for (const auto& [k, v] : cfg_.properties) set(k, v);
    // Durability is not negotiable: set last, so that nothing overrides it.
    set("bootstrap.servers", cfg_.brokers);
    set("enable.idempotence", "true");
    set("acks", "all");
    rd_kafka_conf_set_dr_msg_cb(conf.get(), dr_cb);
    rd_kafka_conf_set_log_cb(conf.get(), log_cb);
    rd_kafka_conf_set_error_cb(conf.get(), error_cb);
    rd_kafka_conf_set_opaque(conf.get(), this);
    rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
    if (!rk_) throw std::runtime_error(std::string("cannot create the dead-letter producer: ") + err);
    conf.release();  // owned by rk_ now
  }

  void close() {
    if (!rk_) return;
    ++generation_;  // reports of purged messages are ignored
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk_.get(), 1000);
    rk_.reset();
  }

  // From librdkafka's delivery callback (on this thread, inside poll/flush).
  void delivered(std::uintptr_t generation, int err, const char* reason) {
    if (generation != generation_) return;
    if (outstanding_ > 0) --outstanding_;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && error_.empty()) error_ = reason ? reason : "delivery failed";
  }

  // Produces every letter and waits (up to kDeliveryTimeout, polling `stop` every 100 ms) until
  // all are acknowledged. Returns "" when every one was delivered, else the first error;
  // messages not delivered by then are purged. Returns std::nullopt when `stop` returned true.
  template <class Stop>
  std::optional<std::string> send(const std::vector<sink::DeadLetter>& letters, const Stop& stop) {
    ++generation_;
    outstanding_ = 0;
    error_.clear();
    const auto deadline = std::chrono::steady_clock::now() + kDeliveryTimeout;
    auto fail = [&](std::string why) -> std::optional<std::string> {
      ++generation_;
      rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(rk_.get(), 0);
      char fatal[256];
      if (rd_kafka_fatal_error(rk_.get(), fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        why += std::string(" (fatal: ") + fatal + "; the producer is recreated)";
        close();
      }
      return why;
    };
    const std::string failed_at = iso8601_now();
    const auto gen = reinterpret_cast<void*>(generation_);
    for (const auto& l : letters) {
      const Event& e = *l.event;
      HeadersHandle h(rd_kafka_headers_new(e.headers.size() + 8));
      for (const auto& hd : e.headers)
        rd_kafka_header_add(h.get(), hd.name.data(), static_cast<ssize_t>(hd.name.size()), hd.value.data(),
                            static_cast<ssize_t>(hd.value.size()));
      auto add = [&](const char* name, const std::string& v) {
        rd_kafka_header_add(h.get(), name, -1, v.data(), static_cast<ssize_t>(v.size()));
      };
      add("etld.error", l.reason);
      if (!l.code.empty()) add("etld.sqlstate", l.code);
      add("etld.pipeline", cfg_.pipeline);
      add("etld.stage", cfg_.stage);
      if (!e.topic.empty()) add("etld.topic", e.topic);
      if (e.partition >= 0) add("etld.partition", std::to_string(e.partition));
      if (e.offset >= 0) add("etld.offset", std::to_string(e.offset));
      add("etld.failed_at", failed_at);
      for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk_.get(), RD_KAFKA_V_TOPIC(cfg_.topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(e.has_key ? e.key.data() : nullptr, e.has_key ? e.key.size() : 0),
            RD_KAFKA_V_VALUE(e.has_value ? const_cast<char*>(e.value.data()) : nullptr,
                             e.has_value ? e.value.size() : 0),
            RD_KAFKA_V_HEADERS(h.get()), RD_KAFKA_V_OPAQUE(gen), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          h.release();  // owned by the message now
          ++outstanding_;
          break;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && std::chrono::steady_clock::now() < deadline) {
          if (stop()) {
            fail("stopped");
            return std::nullopt;
          }
          rd_kafka_poll(rk_.get(), 100);
          continue;
        }
        return fail(std::string("producing to topic ") + cfg_.topic + " failed: " + rd_kafka_err2str(err));
      }
    }
    while (outstanding_ > 0 && error_.empty()) {
      if (stop()) {
        fail("stopped");
        return std::nullopt;
      }
      if (std::chrono::steady_clock::now() >= deadline)
        return fail("delivery to topic " + cfg_.topic + " was not confirmed within " +
                    std::to_string(std::chrono::milliseconds(kDeliveryTimeout).count()) + " ms");
      rd_kafka_flush(rk_.get(), 100);
    }
    if (!error_.empty()) return fail("delivery to topic " + cfg_.topic + " failed: " + error_);
    return std::string();
  }

  DeadLetterTopicConfig cfg_;
  spdlog::logger& log_;
  KafkaHandle rk_;
  std::uintptr_t generation_ = 0;  // delivery reports of earlier send() calls are ignored
  std::size_t outstanding_ = 0;
  std::string error_;
};

}  // namespace

std::unique_ptr<sink::DeadLetterDestination> make_dead_letter_topic(DeadLetterTopicConfig cfg,
                                                                    spdlog::logger& log) {
  return std::make_unique<DeadLetterTopic>(std::move(cfg), log);
}

std::string check_librdkafka_property(const std::string& name, const std::string& value) {
  ConfHandle conf(rd_kafka_conf_new());
  char err[512];
  if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), err, sizeof err) == RD_KAFKA_CONF_OK)
    return "";
  if (is_secret_setting(name)) return "librdkafka rejects the value of '" + name + "'";
  return err;
}

}  // namespace etld::kafka
