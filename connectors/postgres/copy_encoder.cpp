// The COPY text encoder: one event's record to one row of COPY text, per column type. Over 600
// lines on purpose: it runs once per row and column, and its per-type writers are small static
// functions that the compiler (no LTO in this build) inlines into the row loop only while they
// share its translation unit.
#include "connectors/postgres/copy_encoder.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>

#include <simdjson.h>

#include "config/schema/printable.hpp"
#include "connectors/postgres/copy_field.hpp"
#include "connectors/postgres/copy_ondemand.hpp"
#include "connectors/postgres/debezium_encoder.hpp"

namespace etld::pg {

namespace {

// Whether any of the 8 bytes of `w` needs escaping: below 0x20, a backslash or DEL. Text is
// mostly plain, so skipping it a word at a time matters (this ran a byte at a time at 5 % of the
// sink's CPU).
bool word_needs_escape(std::uint64_t w) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  auto zero_byte = [&](std::uint64_t x) { return (x - ones) & ~x & highs; };
  const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
  return (below_space | zero_byte(w ^ (ones * '\\')) | zero_byte(w ^ (ones * 0x7f))) != 0;
}

}  // namespace

bool append_copy_escaped(std::string& out, std::string_view s) {
  bool ok = true;
  std::size_t run = 0;  // start of the current run of plain bytes
  for (std::size_t i = 0; i < s.size(); ++i) {
    while (i + 8 <= s.size()) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (word_needs_escape(w)) break;
      i += 8;
    }
    if (i >= s.size()) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '\\' && c != 0x7f) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\v': out += "\\v"; break;
      case 0: ok = false; break;
      default: {
        // Other control bytes: octal escapes are decoded by COPY.
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\%03o", c);
        out += buf;
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  return ok;
}

namespace {

CopyField field_of(const Value& v) {
  CopyField f;
  f.kind = v.kind();
  switch (f.kind) {
    case Value::Kind::boolean: f.b = v.as_bool(); break;
    case Value::Kind::integer: f.i = v.as_int(); break;
    case Value::Kind::real:
      f.d = v.as_double();
      if (const std::string* text = v.number_text()) f.text = *text;
      break;
    case Value::Kind::string: f.s = v.as_string(); break;
    case Value::Kind::array:
    case Value::Kind::object: f.tree = &v; break;
    case Value::Kind::null: break;
  }
  return f;
}

// A value for an error message, which goes to the log and the dead-letter reason: escaped (a
// newline in a record must not forge a log line) and short.
std::string describe(const CopyField& v) {
  if (v.kind == Value::Kind::string) return "'" + printable(v.s, 60) + "'";
  return printable(v.json(), 60);
}

bool fail(std::string& error, const ColumnSpec& col, const std::string& detail) {
  error = "column " + col.name + " (" + type_name(col.type) + "): " + detail;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool parse_i64(std::string_view s, std::int64_t& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_f64(std::string_view s, double& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

void append_int(std::string& out, std::int64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

void append_double(std::string& out, double d, bool as_float) {
  if (std::isnan(d)) {
    out += "NaN";
    return;
  }
  if (std::isinf(d)) {
    out += d > 0 ? "Infinity" : "-Infinity";
    return;
  }
  char buf[40];
  auto r = as_float ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(d))
                    : std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, r.ptr);
}

enum class IntegerText : std::uint8_t { ok, fraction, out_of_range };

// The value of a JSON number's text as a 64-bit integer, exactly: "100.0" and "1e2" are 100;
// "1.5" has a fraction; "1e400" and 2^63 are out of range. Digits only, no double involved.
IntegerText exact_integer(std::string_view text, std::int64_t& out) {
  bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  auto e = text.find_first_of("eE");
  std::string_view mantissa = text.substr(0, e);
  std::int64_t exponent = 0;  // saturated: beyond any text's length, so still exact
  if (e != std::string_view::npos) {
    std::string_view exp = text.substr(e + 1);
    bool exp_negative = !exp.empty() && exp.front() == '-';
    if (!exp.empty() && (exp.front() == '-' || exp.front() == '+')) exp.remove_prefix(1);
    for (char c : exp) exponent = std::min<std::int64_t>(exponent * 10 + (c - '0'), 1'000'000'000'000'000);
    if (exp_negative) exponent = -exponent;
  }
  // The digits without the point, and the power of ten they are scaled by.
  auto dot = mantissa.find('.');
  std::string digits(mantissa.substr(0, dot));
  std::int64_t scale = exponent;
  if (dot != std::string_view::npos) {
    digits += mantissa.substr(dot + 1);
    scale -= static_cast<std::int64_t>(mantissa.size() - dot - 1);
  }
  while (!digits.empty() && digits.back() == '0') digits.pop_back(), ++scale;
  auto first = digits.find_first_not_of('0');
  if (first == std::string::npos) {
    out = 0;
    return IntegerText::ok;
  }
  digits.erase(0, first);
  if (scale < 0) return IntegerText::fraction;  // the last digit is not 0 and is after the point
  if (static_cast<std::int64_t>(digits.size()) + scale > 19) return IntegerText::out_of_range;
  digits.append(static_cast<std::size_t>(scale), '0');
  std::uint64_t magnitude = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), magnitude);  // at most 19 digits
  const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
  if (magnitude > limit) return IntegerText::out_of_range;
  out = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
  return IntegerText::ok;
}

bool encode_integer(const CopyField& v, const ColumnSpec& col, std::string& out, std::string& error) {
  std::int64_t n = 0;
  switch (v.kind) {
    case Value::Kind::integer: n = v.i; break;
    case Value::Kind::real: {
      if (!v.text.empty()) {  // decided on the digits: the double may have lost some
        switch (exact_integer(v.text, n)) {
          case IntegerText::fraction: return fail(error, col, describe(v) + " is not an integer");
          case IntegerText::out_of_range: return fail(error, col, describe(v) + " out of range");
          case IntegerText::ok: break;
        }
        break;
      }
      double d = v.number();
      if (!std::isfinite(d) || d != std::trunc(d))
        return fail(error, col, describe(v) + " is not an integer");
      if (d < -9.2233720368547758e18 || d >= 9.2233720368547758e18)
        return fail(error, col, describe(v) + " out of range");
      n = static_cast<std::int64_t>(d);
      break;
    }
    case Value::Kind::string:
      if (!parse_i64(v.s, n)) {
        double d = 0;
        if (parse_f64(v.s, d) && std::isfinite(d) && d == std::trunc(d) &&
            (d < -9.2233720368547758e18 || d >= 9.2233720368547758e18))
          return fail(error, col, describe(v) + " out of range");
        return fail(error, col, describe(v) + " is not an integer");
      }
      break;
    default: return fail(error, col, "expected an integer, got " + std::string(kind_name(v.kind)));
  }
  std::int64_t lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
  if (col.type == PgType::smallint) lo = -32768, hi = 32767;
  if (col.type == PgType::integer)
    lo = std::numeric_limits<std::int32_t>::min(), hi = std::numeric_limits<std::int32_t>::max();
  if (n < lo || n > hi) return fail(error, col, std::to_string(n) + " out of range");
  append_int(out, n);
  return true;
}

bool encode_float(const CopyField& v, const ColumnSpec& col, std::string& out, std::string& error) {
  double d = 0;
  switch (v.kind) {
    case Value::Kind::integer:
    case Value::Kind::real:
      d = v.number();
      // A JSON number beyond double's range ("1e400"): PostgreSQL refuses it too, never Infinity.
      if (!std::isfinite(d)) return fail(error, col, describe(v) + " out of range");
      break;
    case Value::Kind::string: {
      std::string_view s = trim(v.s);
      std::string lower;
      for (char c : s) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      if (lower == "nan") {
        d = std::numeric_limits<double>::quiet_NaN();
      } else if (lower == "infinity" || lower == "inf" || lower == "+infinity") {
        d = std::numeric_limits<double>::infinity();
      } else if (lower == "-infinity" || lower == "-inf") {
        d = -std::numeric_limits<double>::infinity();
      } else if (!parse_f64(s, d)) {
        return fail(error, col, describe(v) + " is not a number");
      }
      break;
    }
    default: return fail(error, col, "expected a number, got " + std::string(kind_name(v.kind)));
  }
  bool as_float = col.type == PgType::real;
  if (as_float && std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max()))
    return fail(error, col, describe(v) + " out of range");
  append_double(out, d, as_float);
  return true;
}

bool encode_numeric(const CopyField& v, const ColumnSpec& col, std::string& out, std::string& error) {
  switch (v.kind) {
    case Value::Kind::integer: append_int(out, v.i); return true;
    case Value::Kind::real:
      if (!v.text.empty()) {  // every digit as written, whatever the double's precision
        out.append(v.text);
        return true;
      }
      if (!std::isfinite(v.number())) return fail(error, col, describe(v) + " is not a finite number");
      Value(v.d).append_json(out);  // as the record would write it: the JSON text it came from
      return true;
    case Value::Kind::string: {
      std::string_view s = trim(v.s);
      if (!valid_numeric(s)) return fail(error, col, describe(v) + " is not a number");
      out.append(s);
      return true;
    }
    default: return fail(error, col, "expected a number, got " + std::string(kind_name(v.kind)));
  }
}

bool encode_boolean(const CopyField& v, const ColumnSpec& col, std::string& out, std::string& error) {
  switch (v.kind) {
    case Value::Kind::boolean: out += v.b ? "t" : "f"; return true;
    case Value::Kind::integer:
      if (v.i == 0 || v.i == 1) {
        out += v.i ? "t" : "f";
        return true;
      }
      return fail(error, col, describe(v) + " is not a boolean");
    case Value::Kind::string: {
      std::string lower;
      for (char c : trim(v.s))
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      if (lower == "true" || lower == "t" || lower == "yes" || lower == "y" || lower == "on" ||
          lower == "1") {
        out += "t";
        return true;
      }
      if (lower == "false" || lower == "f" || lower == "no" || lower == "n" || lower == "off" ||
          lower == "0") {
        out += "f";
        return true;
      }
      return fail(error, col, describe(v) + " is not a boolean");
    }
    default: return fail(error, col, "expected a boolean, got " + std::string(kind_name(v.kind)));
  }
}

bool encode_time(const CopyField& v, const ColumnSpec& col, std::string& out, std::string& error) {
  bool date_only = col.type == PgType::date;
  switch (v.kind) {
    case Value::Kind::integer:
      if (!format_epoch_ms(v.i, out, date_only))
        return fail(error, col, describe(v) + " (epoch milliseconds) out of range");
      return true;
    case Value::Kind::real: {
      double d = v.number();
      if (!std::isfinite(d) || std::fabs(d) > 4e14 ||
          !format_epoch_ms(static_cast<std::int64_t>(std::floor(d)), out, date_only))
        return fail(error, col, describe(v) + " (epoch milliseconds) out of range");
      return true;
    }
    case Value::Kind::string: {
      std::string_view s = trim(v.s);
      if (!valid_iso8601(s, false))
        return fail(error, col,
                    describe(v) + (date_only ? " is not an ISO 8601 date" : " is not an ISO 8601 timestamp"));
      out.append(s);
      return true;
    }
    default:
      return fail(error, col,
                  std::string("expected an ISO 8601 string or epoch milliseconds, got ") + kind_name(v.kind));
  }
}

// Whether JSON text (as Value writes it) escapes a NUL character: a "\u0000" whose backslash is
// not itself escaped ("\\u0000" is a backslash followed by the letters u0000).
bool has_nul_escape(std::string_view json) {
  for (auto at = json.find("\\u0000"); at != std::string_view::npos; at = json.find("\\u0000", at + 1)) {
    std::size_t backslashes = 1;
    while (backslashes <= at && json[at - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 1) return true;
  }
  return false;
}

void append_bytea_hex(std::string& out, std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\\\x";
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
}

bool encode_field(const CopyField& v, const ColumnSpec& col, std::string& out, std::string& error) {
  switch (col.type) {
    case PgType::smallint:
    case PgType::integer:
    case PgType::bigint: return encode_integer(v, col, out, error);
    case PgType::real:
    case PgType::double_precision: return encode_float(v, col, out, error);
    case PgType::numeric: return encode_numeric(v, col, out, error);
    case PgType::boolean: return encode_boolean(v, col, out, error);
    case PgType::timestamptz:
    case PgType::date: return encode_time(v, col, out, error);
    case PgType::text: {
      bool ok =
          v.kind == Value::Kind::string ? append_copy_escaped(out, v.s) : append_copy_escaped(out, v.json());
      if (!ok) return fail(error, col, "contains a NUL byte, which PostgreSQL text cannot store");
      return true;
    }
    case PgType::bytea: {
      // Raw bytes (a Kafka key, or a string's bytes) as hex, the backslash escaped for COPY text.
      if (v.kind != Value::Kind::string)
        return fail(error, col,
                    "expected bytes (a string or the Kafka key), got " + std::string(kind_name(v.kind)));
      append_bytea_hex(out, v.s);
      return true;
    }
    case PgType::uuid: {
      if (v.kind != Value::Kind::string)
        return fail(error, col, "expected a UUID string, got " + std::string(kind_name(v.kind)));
      std::string_view s = trim(v.s);
      if (!valid_uuid(s)) return fail(error, col, describe(v) + " is not a UUID");
      out.append(s);
      return true;
    }
    case PgType::jsonb: {
      std::string json = v.json();
      if (has_nul_escape(json))
        return fail(error, col, "a string holds the character \\u0000 (NUL), which jsonb cannot store");
      append_copy_escaped(out, json);
      return true;
    }
  }
  return fail(error, col, "unsupported type");
}

}  // namespace

bool encode_value(const Value& v, const ColumnSpec& col, std::string& out, std::string& error) {
  return encode_field(field_of(v), col, out, error);
}

namespace {

Value headers_value(const Event& e) {
  Object o;
  o.reserve(e.headers.size());
  for (const auto& h : e.headers) o.emplace_back(sanitize_utf8(h.name), Value(sanitize_utf8(h.value)));
  return Value(std::move(o));
}

}  // namespace

const Value* record_or_error(Event& e, std::string& error) {
  try {
    return &e.record();
  } catch (const JsonError& ex) {
    error = ex.what();
    if (error.rfind("invalid JSON", 0) != 0) error = "invalid JSON: " + error;
    return nullptr;
  }
}

Value metadata_value(const Event& e, const ColumnSpec& col) {
  switch (col.source) {
    case ColumnSource::topic: return e.topic.empty() ? Value() : Value(e.topic.str());
    case ColumnSource::partition: return e.partition < 0 ? Value() : Value(std::int64_t{e.partition});
    case ColumnSource::offset: return e.offset < 0 ? Value() : Value(std::int64_t{e.offset});
    case ColumnSource::timestamp: return Value(std::int64_t{e.timestamp_ms});
    case ColumnSource::key:
      if (!e.has_key) return Value();
      if (col.type == PgType::bytea) return Value(e.key);
      if (col.type == PgType::jsonb) {
        try {
          return parse_json(e.key);
        } catch (const std::exception&) {
        }
      }
      return Value(e.key);  // checked by key_is_storable
    case ColumnSource::headers: return headers_value(e);
    default: return Value();
  }
}

// A key that is not UTF-8 is refused for every type but bytea: replacing its bad bytes by U+FFFD
// would make distinct binary keys (8-byte 128 and 255) one text, merging their rows.
bool key_is_storable(const Event& e, const ColumnSpec& col, std::string& error) {
  if (!e.has_key || col.type == PgType::bytea || simdjson::validate_utf8(e.key.data(), e.key.size()))
    return true;
  error = "column " + col.name + " (" + type_name(col.type) + "): the Kafka key (" +
          std::to_string(e.key.size()) +
          " bytes) is not valid UTF-8; map it with `type: bytea` to store binary keys as they are";
  return false;
}

void append_stage_prefix(std::string& out, std::uint64_t seq, bool del) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, seq);
  out.append(buf, r.ptr);
  out += del ? "\tt\t" : "\tf\t";
}

namespace {

// A tombstone's key columns, from the Kafka key.
RowOp encode_delete(const PostgresSinkConfig& cfg, Event& e, std::uint64_t seq, std::string& out,
                    std::string& error) {
  if (!e.has_key) {
    error = "tombstone without a key: nothing to delete";
    return RowOp::poison;
  }
  Value json_key;
  bool have_json = false;
  std::string_view k = trim(e.key);
  if (!k.empty() && k.front() == '{') {
    try {
      json_key = parse_json(e.key);
      have_json = json_key.kind() == Value::Kind::object;
    } catch (const std::exception&) {
    }
  }
  if (!have_json && cfg.key.size() > 1) {
    error = "tombstone key is not a JSON object holding the key columns";
    return RowOp::poison;
  }
  append_stage_prefix(out, seq, true);
  bool first = true;
  for (const auto& col : cfg.columns) {
    if (!first) out.push_back('\t');
    first = false;
    if (!col.is_key) {
      out += "\\N";
      continue;
    }
    const Value* v = nullptr;
    Value bytes;
    if (col.source == ColumnSource::key) {
      // The value the insert wrote for this column, so that the delete finds that row.
      if (!key_is_storable(e, col, error)) return RowOp::poison;
      bytes = metadata_value(e, col);
      v = &bytes;
    } else if (have_json) {
      v = json_key.find(col.name);
      if (!v && col.source == ColumnSource::field) v = json_key.at_path(col.path);
      if ((!v || v->is_null())) {
        error = "tombstone key has no value for key column " + col.name;
        return RowOp::poison;
      }
    } else {
      if (!key_is_storable(e, col, error)) return RowOp::poison;
      bytes = Value(e.key);
      v = &bytes;
    }
    if (!encode_value(*v, col, out, error)) {
      error = "tombstone key: " + error;
      return RowOp::poison;
    }
  }
  out.push_back('\n');
  return RowOp::del;
}

}  // namespace

namespace {

// Appends one row's columns (and '\n'); `lookup(col, scratch)` resolves the field and whole-record
// columns: the value (in `scratch` or elsewhere), nullptr when absent or null. Returns write, or
// poison with `error`.
template <class LookupFn>
RowOp encode_columns(const PostgresSinkConfig& cfg, const Event& e, std::uint64_t seq, std::string& out,
                     std::string& error, LookupFn&& lookup) {
  if (cfg.mode != Mode::insert) append_stage_prefix(out, seq, false);  // insert: straight to the table
  bool first = true;
  Value meta;
  CopyField scratch;
  for (const auto& col : cfg.columns) {
    if (!first) out.push_back('\t');
    first = false;
    const CopyField* f = nullptr;
    if (col.source == ColumnSource::field || col.source == ColumnSource::whole) {
      f = lookup(col, scratch);
    } else {
      if (col.source == ColumnSource::key && !key_is_storable(e, col, error)) return RowOp::poison;
      meta = metadata_value(e, col);
      if (!meta.is_null()) {
        scratch = field_of(meta);
        f = &scratch;
      }
    }
    if (!f) {
      if (col.required) {
        error = col.source == ColumnSource::field
                    ? "missing required field '" + col.path + "' (column " + col.name + ")"
                    : "missing required value for column " + col.name;
        return RowOp::poison;
      }
      out += col.default_copy ? *col.default_copy : std::string_view("\\N");
      continue;
    }
    if (!encode_field(*f, col, out, error)) return RowOp::poison;
  }
  out.push_back('\n');
  return RowOp::write;
}

// Whether a column of this type reads a number as a double: the others take its digits.
bool rounds_numbers(PgType type) {
  return type == PgType::real || type == PgType::double_precision || type == PgType::timestamptz ||
         type == PgType::date;
}

// The row from the payload's fields as simdjson's On Demand parser reads them, without a Value tree;
// skip where read_fields_ondemand leaves the record to the Value path.
RowOp encode_from_payload(const PostgresSinkConfig& cfg, const Event& e, std::uint64_t seq, std::string& out,
                          std::string& error) {
  const CopyField* fields = read_fields_ondemand(cfg, std::string_view(e.value));
  if (!fields) return RowOp::skip;
  return encode_columns(cfg, e, seq, out, error, [&](const ColumnSpec& col, CopyField& scratch) {
    const CopyField* v = &fields[static_cast<std::size_t>(&col - cfg.columns.data())];
    if (v->kind == Value::Kind::null) return static_cast<const CopyField*>(nullptr);
    if (v->kind == Value::Kind::real && rounds_numbers(col.type)) {
      scratch = *v;
      scratch.d = json_number_double(v->text);
      return static_cast<const CopyField*>(&scratch);
    }
    return v;
  });
}

// The row from the event's decoded record (parsing it first if nothing upstream did).
RowOp encode_from_record(const PostgresSinkConfig& cfg, Event& e, std::uint64_t seq, std::string& out,
                         std::string& error) {
  const Value* rec = record_or_error(e, error);
  if (!rec) return RowOp::poison;
  return encode_columns(cfg, e, seq, out, error, [&](const ColumnSpec& col, CopyField& scratch) {
    const Value* v = col.source == ColumnSource::whole ? rec : rec->at_path(col.path);
    if (!v || v->is_null()) return static_cast<const CopyField*>(nullptr);
    scratch = field_of(*v);
    return static_cast<const CopyField*>(&scratch);
  });
}

}  // namespace

RowOp encode_event(const PostgresSinkConfig& cfg, Event& e, std::uint64_t seq, std::string& out,
                   std::string& error) {
  const std::size_t begin = out.size();
  if (e.rejected()) {  // a transform upstream could not process it: straight to the dead letters
    error = e.rejection;
    return RowOp::poison;
  }
  RowOp op = RowOp::skip;
  try {
    if (cfg.mode == Mode::debezium) {
      op = encode_debezium(cfg, e, seq, out, error);
    } else if (!e.has_value) {
      if (!cfg.delete_on_tombstone) return RowOp::skip;
      op = encode_delete(cfg, e, seq, out, error);
    } else {
      if (!e.parsed()) op = encode_from_payload(cfg, e, seq, out, error);
      if (op == RowOp::skip) {  // parsed upstream, or a record the On Demand path leaves to the tree
        out.resize(begin);
        op = encode_from_record(cfg, e, seq, out, error);
      }
    }
  } catch (const std::exception& ex) {
    error = std::string("cannot encode the record: ") + ex.what();
    op = RowOp::poison;
  }
  if (op == RowOp::poison) out.resize(begin);
  return op;
}

}  // namespace etld::pg
