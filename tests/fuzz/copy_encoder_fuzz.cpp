// libFuzzer target: the JSON -> COPY encoder of the postgres sink (connectors/postgres/copy_encoder)
// for every column type and every column source.
// Input: one flags byte, the Kafka key up to the first '\n', then the payload (the JSON record).
//   flags: 1 has a key, 2 tombstone, 4 upsert (staged rows), 8 delete_on_tombstone, 16 columns
//   required, 32 the key column is jsonb, 64 a two-column primary key, 128 no whole-record column
//   (which sends every record to the Value path).
// Checks: encode_event throws nothing; a written row has exactly one field per column (plus the
// staging columns), ends in its only newline; the row is the same whether the payload is encoded
// straight from simdjson's On Demand parser or from the Value tree a transform upstream would have
// parsed.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/pg_config.hpp"

using namespace etld;
using namespace etld::pg;

namespace {

enum Flag : unsigned {
  has_key = 1,
  tombstone = 2,
  upsert = 4,
  delete_on_tombstone = 8,
  required = 16,
  json_key = 32,
  two_keys = 64,
  no_whole = 128
};

ColumnSpec column(std::string name, ColumnSource source, PgType type, std::string path = {}) {
  ColumnSpec c;
  c.quoted = quote_ident(name);
  c.name = std::move(name);
  c.source = source;
  c.type = type;
  c.path = std::move(path);
  return c;
}

PostgresSinkConfig make_config(unsigned flags) {
  PostgresSinkConfig cfg;
  cfg.table = "fuzz";
  cfg.mode = flags & upsert ? Mode::upsert : Mode::insert;
  // Every type reads the same field, so that one mutated value goes through every converter.
  for (const auto& name : type_names()) {
    auto c = column("c_" + name, ColumnSource::field, *parse_type(name), "v");
    c.required = (flags & required) != 0;
    cfg.columns.push_back(std::move(c));
  }
  cfg.columns.push_back(column("nested", ColumnSource::field, PgType::text, "a.b"));
  auto with_default = column("defaulted", ColumnSource::field, PgType::integer, "d");
  with_default.default_copy = "7";
  cfg.columns.push_back(std::move(with_default));
  if (!(flags & no_whole)) cfg.columns.push_back(column("whole", ColumnSource::whole, PgType::jsonb));
  cfg.columns.push_back(column("topic", ColumnSource::topic, PgType::text));
  cfg.columns.push_back(column("partition", ColumnSource::partition, PgType::integer));
  cfg.columns.push_back(column("offset", ColumnSource::offset, PgType::bigint));
  cfg.columns.push_back(column("ts", ColumnSource::timestamp, PgType::timestamptz));
  cfg.columns.push_back(column("key", ColumnSource::key, flags & json_key ? PgType::jsonb : PgType::text));
  cfg.columns.push_back(column("headers", ColumnSource::headers, PgType::jsonb));
  for (auto& c : cfg.columns) {
    if (c.name == "c_text" || (flags & two_keys && c.name == "c_bigint")) {
      c.is_key = true;
      cfg.key.push_back(c.name);
    }
  }
  cfg.delete_on_tombstone = (flags & delete_on_tombstone) != 0;
  return cfg;
}

Event make_event(unsigned flags, std::string_view key, std::string_view payload) {
  Event e;
  e.has_value = (flags & tombstone) == 0;
  if (e.has_value) e.value = std::string(payload);
  e.has_key = (flags & has_key) != 0;
  if (e.has_key) e.key = std::string(key);
  e.headers = {{"trace", "abc"}, {"bin", std::string("\xff\0\n", 3)}};
  e.topic = "orders";
  e.partition = 1;
  e.offset = 7;
  e.timestamp_ms = 1'700'000'000'123;
  return e;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "copy_encoder_fuzz: %s\n", what.c_str());
  std::abort();
}

void check_row(const PostgresSinkConfig& cfg, RowOp op, const std::string& row) {
  if (op != RowOp::write && op != RowOp::del) {
    if (!row.empty()) fail("a row that is not written left bytes behind: " + row);
    return;
  }
  if (row.empty() || row.back() != '\n') fail("row does not end in a newline: " + row);
  if (row.find_first_of("\n\r") != row.size() - 1) fail("raw newline inside a row: " + row);
  std::size_t tabs = 0;
  for (char c : row) tabs += c == '\t';
  std::size_t want = cfg.columns.size() - 1 + (cfg.mode == Mode::insert && op == RowOp::write ? 0 : 2);
  if (tabs != want) fail("row has " + std::to_string(tabs + 1) + " fields: " + row);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  unsigned flags = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto nl = in.find('\n');
  std::string_view key = in.substr(0, nl);
  std::string_view payload = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  const PostgresSinkConfig cfg = make_config(flags);

  // As the sink sees it straight from a source: encoded from the payload where it can be.
  Event direct = make_event(flags, key, payload);
  std::string row, error;
  RowOp op = encode_event(cfg, direct, 5, row, error);
  check_row(cfg, op, row);
  if (op == RowOp::poison && error.empty()) fail("poison without a reason");

  // As it sees it after a map or filter: from the parsed record.
  Event parsed = make_event(flags, key, payload);
  try {
    (void)parsed.record();
  } catch (const JsonError&) {
    return 0;
  }
  std::string row2, error2;
  RowOp op2 = encode_event(cfg, parsed, 5, row2, error2);
  check_row(cfg, op2, row2);
  if (op != op2 || row != row2)
    fail("the On Demand path and the Value path disagree:\n  direct: " + std::to_string(int(op)) + " " + row +
         error + "\n  value: " + std::to_string(int(op2)) + " " + row2 + error2);
  return 0;
}
