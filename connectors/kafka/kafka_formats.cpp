// The kafka source's format / key_format avro (docs/formats.md): events are decoded as they
// leave the partition buffers (emit_ready), so only what downstream demanded is decoded, in
// partition order. A schema not known yet is fetched by the registry client on its own thread;
// meanwhile the partition is held at that event (and paused: want_fetch), and the client's wake-up
// when the fetch ends brings the strand back to it. What the client reports from its thread
// (warnings) is handed over under a lock and logged on the strand, where the context is alive.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "connectors/kafka/kafka_source_internal.hpp"
#include "stages/builtin/reject.hpp"

#ifdef ETLD_WITH_AVRO
#include "connectors/avro/schema_registry.hpp"
#include "connectors/avro/wire_decoder.hpp"
#endif

namespace etld::kafka {

#ifdef ETLD_WITH_AVRO

namespace {

constexpr metrics::Metric kRegistryRetries{
    "etld_schema_registry_retries_total", metrics::Type::counter,
    "Schema registry requests that failed in a way the registry may get over (unreachable, timeout, "
    "HTTP 5xx, 401/403) and are retried with backoff; the partition waiting for that schema is held "
    "meanwhile."};
constexpr metrics::Metric kAvroRejected{
    "etld_kafka_avro_rejected_total", metrics::Type::counter,
    "Events that do not decode from Avro (not the Confluent wire format, an unknown schema id, a body that "
    "does not decode), passed on rejected to their sink's dead-letter destination."};
constexpr metrics::Metric kRegistryFetches{"etld_schema_registry_fetches_total", metrics::Type::counter,
                                           "Schemas fetched from the schema registry (once per id)."};

}  // namespace

struct AvroFormats {
  // Written by the registry client's thread, read on the strand.
  struct Inbox {
    std::mutex mu;
    std::vector<std::string> warnings;
  };
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  std::shared_ptr<avro::SchemaRegistry> registry;
  std::optional<avro::WireDecoder> decoder;
  Rejecter rejecter;
  std::shared_ptr<metrics::Counter> rejected;
};

void KafkaSource::start_formats() {
  if (!s_.avro_values && !s_.avro_keys) return;
  formats_ = std::make_shared<AvroFormats>();
  formats_->rejecter.bind(*ctx_);
  formats_->rejected = ctx_->metrics().counter(kAvroRejected);
  avro::RegistryHooks hooks;
  hooks.settled = [waker = waker_] { waker->wake(); };
  hooks.warn = [inbox = formats_->inbox, waker = waker_](const std::string& text) {
    {
      std::lock_guard lock(inbox->mu);
      if (inbox->warnings.size() < 16) inbox->warnings.push_back(text);  // rate-limited already
    }
    waker->wake();
  };
  hooks.retried = [c = ctx_->metrics().counter(kRegistryRetries)] { c->inc(); };
  hooks.fetched = [c = ctx_->metrics().counter(kRegistryFetches)] { c->inc(); };
  formats_->registry = std::make_shared<avro::SchemaRegistry>(s_.registry, std::move(hooks));
  formats_->decoder.emplace(formats_->registry, s_.avro_values, s_.avro_keys);
  ctx_->log().info("kafka: values {}, keys {} (Confluent wire format); schemas from the registry at {}",
                   s_.avro_values ? "decoded from Avro" : "as they are",
                   s_.avro_keys ? "decoded from Avro" : "raw", s_.registry.url);
}

void KafkaSource::stop_formats() {
  if (!formats_) return;
  if (ctx_log_ok_) formats_->rejecter.flush();  // in the destructor the context may be gone
  formats_->decoder.reset();
  formats_->registry.reset();  // joins its thread: no hook runs after this
}

bool KafkaSource::decode_for_emit(Part& p, Event& e) {
  std::string reason;
  std::uint32_t id = 0;
  switch (formats_->decoder->decode(e, reason, id)) {
    case avro::WireDecoder::Outcome::decoded: return true;
    case avro::WireDecoder::Outcome::rejected:
      formats_->rejecter.mark(e, reason);
      formats_->rejected->inc();
      return true;
    case avro::WireDecoder::Outcome::waiting: break;
  }
  p.awaiting_schema = true;
  p.schema_id = id;
  return false;
}

bool KafkaSource::schema_arrived(Part& p) {
  if (formats_ && formats_->decoder && formats_->decoder->waiting(p.schema_id)) return false;
  p.awaiting_schema = false;
  return true;
}

void KafkaSource::report_formats() {
  std::vector<std::string> warnings;
  {
    std::lock_guard lock(formats_->inbox->mu);
    warnings.swap(formats_->inbox->warnings);
  }
  for (const auto& w : warnings) ctx_->log().warn("kafka: schema registry: {}", w);
}

#else  // built without the avro connector: read_kafka_settings refuses format: avro

struct AvroFormats {};
void KafkaSource::start_formats() {}
void KafkaSource::stop_formats() {}
bool KafkaSource::decode_for_emit(Part&, Event&) { return true; }
bool KafkaSource::schema_arrived(Part& p) { return !(p.awaiting_schema = false); }
void KafkaSource::report_formats() {}

#endif

}  // namespace etld::kafka
