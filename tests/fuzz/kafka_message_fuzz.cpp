// libFuzzer target: a Kafka message -> event (connectors/kafka/kafka_message) -> the postgres sink's
// row, with keys, null keys, null values (tombstones), headers (null values, repeated names) and
// any timestamp. The message is built by hand; its headers are real librdkafka header lists.
// Input (FuzzedDataProvider): from the end, a flags byte, the timestamp, the offset and the number
// of headers; from the front, the key and each header's name and value; the rest is the payload.
// Checks: the event holds exactly the message's bytes (payload, key, headers), a tombstone has no
// value, the timestamp is never negative; the row encodes without throwing and has one field per
// column.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "connectors/kafka/kafka_handles.hpp"
#include "connectors/kafka/kafka_message.hpp"
#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/pg_config.hpp"

using namespace etld;

namespace {

pg::ColumnSpec column(std::string name, pg::ColumnSource source, pg::PgType type, std::string path = {}) {
  pg::ColumnSpec c;
  c.quoted = pg::quote_ident(name);
  c.name = std::move(name);
  c.source = source;
  c.type = type;
  c.path = std::move(path);
  return c;
}

// A keyed upsert table like examples/kafka-to-postgres.yaml, plus every metadata column.
pg::PostgresSinkConfig make_config() {
  pg::PostgresSinkConfig cfg;
  cfg.table = "fuzz";
  cfg.mode = pg::Mode::upsert;
  auto id = column("id", pg::ColumnSource::key, pg::PgType::text);
  id.is_key = true;
  cfg.key = {"id"};
  cfg.columns.push_back(std::move(id));
  cfg.columns.push_back(column("key_json", pg::ColumnSource::key, pg::PgType::jsonb));
  cfg.columns.push_back(column("amount", pg::ColumnSource::field, pg::PgType::numeric, "amount"));
  cfg.columns.push_back(column("at", pg::ColumnSource::field, pg::PgType::timestamptz, "at"));
  cfg.columns.push_back(column("payload", pg::ColumnSource::whole, pg::PgType::jsonb));
  cfg.columns.push_back(column("headers", pg::ColumnSource::headers, pg::PgType::jsonb));
  cfg.columns.push_back(column("ts", pg::ColumnSource::timestamp, pg::PgType::timestamptz));
  cfg.columns.push_back(column("offset", pg::ColumnSource::offset, pg::PgType::bigint));
  cfg.delete_on_tombstone = true;
  return cfg;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "kafka_message_fuzz: %s\n", what.c_str());
  std::abort();
}

struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* h) const { rd_kafka_headers_destroy(h); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const auto flags = in.ConsumeIntegral<std::uint8_t>();
  const bool null_value = flags & 1, null_key = flags & 2, no_headers = flags & 4;
  const auto timestamp = in.ConsumeIntegral<std::int64_t>();
  const auto offset = in.ConsumeIntegral<std::int64_t>();
  const auto header_count = in.ConsumeIntegralInRange<std::size_t>(0, 8);
  std::string key = in.ConsumeRandomLengthString(256);
  struct Hdr {
    std::string name, value;
    bool null_value;
  };
  std::vector<Hdr> hdrs;
  for (std::size_t i = 0; i < header_count; ++i) {
    Hdr h{in.ConsumeRandomLengthString(64), in.ConsumeRandomLengthString(256), false};
    h.null_value = h.value == "<null>";
    hdrs.push_back(std::move(h));
  }
  std::string payload = in.ConsumeRemainingBytesAsString();

  rd_kafka_message_t m{};
  m.payload = null_value ? nullptr : payload.data();
  m.len = null_value ? 0 : payload.size();
  m.key = null_key ? nullptr : key.data();
  m.key_len = null_key ? 0 : key.size();
  m.offset = offset;
  m.partition = 0;
  std::unique_ptr<rd_kafka_headers_t, HeadersDeleter> headers;
  if (!no_headers) {
    headers.reset(rd_kafka_headers_new(hdrs.size()));
    for (const auto& h : hdrs) {
      auto err = rd_kafka_header_add(headers.get(), h.name.data(), static_cast<ssize_t>(h.name.size()),
                                     h.null_value ? nullptr : h.value.data(),
                                     h.null_value ? 0 : static_cast<ssize_t>(h.value.size()));
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) fail("rd_kafka_header_add failed");
    }
  }

  Event e = kafka::message_to_event(m, headers.get(), timestamp);
  if (e.has_value == null_value) fail("has_value does not say whether the message had a payload");
  if (!null_value && e.value != payload) fail("payload bytes changed");
  if (e.has_key == null_key) fail("has_key does not say whether the message had a key");
  if (!null_key && e.key != key) fail("key bytes changed");
  if (e.timestamp_ms < 0 || (timestamp >= 0 && e.timestamp_ms != timestamp)) fail("timestamp changed");
  if (e.offset != offset) fail("offset changed");
  if (e.headers.size() != (no_headers ? 0 : hdrs.size())) fail("header count changed");
  for (std::size_t i = 0; i < e.headers.size(); ++i) {
    // librdkafka hands names back NUL-terminated: a name is kept up to its first NUL.
    if (e.headers[i].name != hdrs[i].name.substr(0, hdrs[i].name.find('\0'))) fail("header name changed");
    if (e.headers[i].value != (hdrs[i].null_value ? std::string() : hdrs[i].value))
      fail("header value changed");
  }
  e.topic = "orders";
  e.partition = 0;

  static const pg::PostgresSinkConfig cfg = make_config();
  std::string row, error;
  pg::RowOp op = pg::encode_event(cfg, e, 1, row, error);
  if (op == pg::RowOp::write || op == pg::RowOp::del) {
    std::size_t tabs = 0;
    for (char c : row) tabs += c == '\t';
    if (tabs != cfg.columns.size() + 1 || row.find('\n') != row.size() - 1) fail("malformed row: " + row);
  } else if (op == pg::RowOp::poison && error.empty()) {
    fail("poison without a reason");
  }
  return 0;
}
