// Kafka Connect's and Debezium's logical types (debezium_logical.hpp).
#include "connectors/postgres/debezium_logical.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "connectors/postgres/copy_encoder.hpp"

namespace etld::pg {

namespace {

enum class Kind { none, date, timestamp, time, decimal, variable_decimal, bytes, json };

// Connect's bytes (the JsonConverter writes them base64), whatever their name (io.debezium.data.Bits):
// LogicalField::type of a bytes field that is no decimal.
constexpr const char* kBytes = "bytes";

struct Named {
  const char* name;
  Kind kind;
  std::int64_t per_second;  // timestamps and times: units per second
};
constexpr Named kLogical[] = {
    {"io.debezium.time.Date", Kind::date, 0},
    {"org.apache.kafka.connect.data.Date", Kind::date, 0},
    {"io.debezium.time.Timestamp", Kind::timestamp, 1000},
    {"org.apache.kafka.connect.data.Timestamp", Kind::timestamp, 1000},
    {"io.debezium.time.MicroTimestamp", Kind::timestamp, 1'000'000},
    {"io.debezium.time.NanoTimestamp", Kind::timestamp, 1'000'000'000},
    {"io.debezium.time.Time", Kind::time, 1000},
    {"org.apache.kafka.connect.data.Time", Kind::time, 1000},
    {"io.debezium.time.MicroTime", Kind::time, 1'000'000},
    {"io.debezium.time.NanoTime", Kind::time, 1'000'000'000},
    {"org.apache.kafka.connect.data.Decimal", Kind::decimal, 0},
    {"io.debezium.data.VariableScaleDecimal", Kind::variable_decimal, 0},
    {"io.debezium.data.Json", Kind::json, 0},
    {kBytes, Kind::bytes, 0},
};

const Named* named(std::string_view type) {
  for (const auto& n : kLogical)
    if (type == n.name) return &n;
  return nullptr;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

// "." and the fraction's `digits` digits of `units` (0 <= units < 10^digits).
std::string fraction(std::int64_t units, std::int64_t per_second) {
  int digits = 0;
  for (std::int64_t p = per_second; p > 1; p /= 10) ++digits;
  char buf[32];
  std::snprintf(buf, sizeof buf, ".%0*lld", digits, static_cast<long long>(units));
  return buf;
}

// Two's-complement big-endian bytes, scaled by 10^-scale, as decimal text: "-1234.50".
std::string decimal_text(std::vector<unsigned char> bytes, int scale) {
  const bool negative = !bytes.empty() && (bytes[0] & 0x80);
  if (negative) {  // the magnitude: invert and add one
    for (auto& b : bytes) b = static_cast<unsigned char>(~b);
    for (auto it = bytes.rbegin(); it != bytes.rend() && ++*it == 0; ++it) {
    }
  }
  std::string digits;
  while (std::any_of(bytes.begin(), bytes.end(), [](unsigned char b) { return b != 0; })) {
    unsigned rem = 0;
    for (auto& b : bytes) {
      const unsigned cur = rem * 256 + b;
      b = static_cast<unsigned char>(cur / 10);
      rem = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + rem));
  }
  if (digits.empty()) digits = "0";
  std::reverse(digits.begin(), digits.end());
  if (scale < 0) {
    digits.append(static_cast<std::size_t>(-scale), '0');
  } else if (scale > 0) {
    if (digits.size() <= static_cast<std::size_t>(scale))
      digits.insert(0, static_cast<std::size_t>(scale) - digits.size() + 1, '0');
    digits.insert(digits.size() - static_cast<std::size_t>(scale), ".");
  }
  return (negative && digits.find_first_not_of("0.") != std::string::npos ? "-" : "") + digits;
}

bool base64_bytes(const std::string& text, std::vector<unsigned char>& out) {
  if (text.size() % 4 != 0) return false;
  out.resize(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return false;
  std::size_t size = static_cast<std::size_t>(n);
  for (auto it = text.rbegin(); it != text.rend() && *it == '=' && size > 0; ++it) --size;
  out.resize(size);
  return true;
}

bool takes_text(PgType t) { return t == PgType::timestamptz || t == PgType::date || t == PgType::text; }

}  // namespace

LogicalFields logical_fields(const Value& schema, std::string_view image) {
  LogicalFields out;
  const Value* fields = schema.find("fields");
  if (!fields || fields->kind() != Value::Kind::array) return out;
  if (!image.empty()) {
    for (const Value& f : fields->as_array()) {
      const Value* name = f.find("field");
      if (name && name->kind() == Value::Kind::string && name->as_string() == image) return logical_fields(f);
    }
    return out;
  }
  {
    for (const Value& column : fields->as_array()) {
      const Value* field = column.find("field");
      const Value* type = column.find("name");
      if (!field || field->kind() != Value::Kind::string) continue;
      std::string_view name;
      if (type && type->kind() == Value::Kind::string) name = type->as_string();
      const Named* n = named(name);
      const Value* connect_type = column.find("type");
      if ((!n || n->kind == Kind::bytes) && connect_type && connect_type->kind() == Value::Kind::string &&
          connect_type->as_string() == "bytes")
        name = kBytes;
      else if (!n)
        continue;
      LogicalField l{field->as_string(), name, 0};
      const Value* params = column.find("parameters");
      const Value* scale = params ? params->find("scale") : nullptr;
      if (scale && scale->kind() == Value::Kind::string) l.scale = std::atoi(scale->as_string().c_str());
      if (scale && scale->kind() == Value::Kind::integer) l.scale = static_cast<int>(scale->as_int());
      out.push_back(l);
    }
  }
  return out;
}

bool decode_logical(const LogicalFields& fields, std::string_view field, const ColumnSpec& col,
                    const Value& v, Value& out, std::string& error) {
  auto it =
      std::find_if(fields.begin(), fields.end(), [&](const LogicalField& l) { return l.field == field; });
  const Named* n = it == fields.end() ? nullptr : named(it->type);
  out = v;
  if (!n) return true;
  const std::string what = "column " + col.name + " (" + std::string(it->type) + "): ";
  switch (n->kind) {
    case Kind::none: return true;
    case Kind::date: {
      if (v.kind() != Value::Kind::integer || !takes_text(col.type)) return true;
      std::string text;
      if (!format_epoch_ms(v.as_int() * 86'400'000, text, /*date_only=*/true))
        return error = what + std::to_string(v.as_int()) + " days out of range", false;
      out = Value(std::move(text));
      return true;
    }
    case Kind::timestamp: {
      if (v.kind() != Value::Kind::integer || !takes_text(col.type)) return true;
      const std::int64_t seconds = floor_div(v.as_int(), n->per_second);
      std::string text;
      if (!format_epoch_ms(seconds * 1000, text)) return error = what + "out of range", false;
      // "YYYY-MM-DD HH:MM:SS.000+00": the fraction at the source's precision instead of ".000".
      text.replace(text.size() - 7, 4, fraction(v.as_int() - seconds * n->per_second, n->per_second));
      out = Value(std::move(text));
      return true;
    }
    case Kind::time: {
      if (v.kind() != Value::Kind::integer || col.type != PgType::text) return true;
      const std::int64_t units = v.as_int(), seconds = floor_div(units, n->per_second);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(seconds / 3600),
                    static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60));
      out = Value(std::string(buf) + fraction(units - seconds * n->per_second, n->per_second));
      return true;
    }
    case Kind::bytes: {
      // Into bytea the bytes themselves; a text column keeps the base64 text.
      std::vector<unsigned char> raw;
      if (v.kind() != Value::Kind::string || col.type != PgType::bytea) return true;
      if (!base64_bytes(v.as_string(), raw)) return error = what + "the value is not base64 bytes", false;
      out = Value(std::string(raw.begin(), raw.end()));
      return true;
    }
    case Kind::json: {
      // JSON text: into jsonb the document it holds, not a JSON string of its text.
      if (v.kind() != Value::Kind::string || col.type != PgType::jsonb) return true;
      try {
        out = parse_json(v.as_string());
      } catch (const JsonError& e) {
        return error = what + "the value is not JSON text: " + e.what(), false;
      }
      return true;
    }
    case Kind::decimal:
    case Kind::variable_decimal: {
      const Value* bytes = &v;
      int scale = it->scale;
      if (n->kind == Kind::variable_decimal) {  // {"scale": 2, "value": "base64"}
        const Value* s = v.find("scale");
        bytes = v.find("value");
        if (!s || s->kind() != Value::Kind::integer || !bytes)
          return error = what + "expected {\"scale\": ..., \"value\": ...}", false;
        scale = static_cast<int>(s->as_int());
      }
      std::vector<unsigned char> raw;
      if (bytes->kind() != Value::Kind::string || !base64_bytes(bytes->as_string(), raw))
        return error = what + "the value is not base64 bytes", false;
      out = Value::from_json_number(decimal_text(std::move(raw), scale));
      return true;
    }
  }
  return true;
}

}  // namespace etld::pg
