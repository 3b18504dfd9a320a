// Mode debezium's encoder (debezium_encoder.hpp).
#include "connectors/postgres/debezium_encoder.hpp"

#include <exception>
#include <string_view>

#include "config/schema/printable.hpp"
#include "connectors/postgres/debezium_logical.hpp"

namespace etld::pg {

namespace {

// The Kafka key as a JSON object ({"id": 1}, wrapped or not; an Avro key arrives as its JSON
// text) and the wrapper's schema, if any. Without an object key columns are read in the row image.
struct Key {
  Value parsed;
  const Value* object = nullptr;
  LogicalFields logical;
};
void read_key(const Event& e, Key& key) {
  if (!e.has_key) return;
  std::string_view k = e.key;
  while (!k.empty() && (k.front() == ' ' || k.front() == '\t' || k.front() == '\n' || k.front() == '\r'))
    k.remove_prefix(1);
  if (k.empty() || k.front() != '{') return;
  try {
    key.parsed = parse_json(e.key);
  } catch (const std::exception&) {
    return;
  }
  const Value& inner = unwrap_connect_json(key.parsed);
  if (inner.kind() != Value::Kind::object) return;
  key.object = &inner;
  if (&inner != &key.parsed) key.logical = logical_fields(*key.parsed.find("schema"));
}

// The top-level field a column path names, or "" for a nested path: logical types are known for
// the row image's own fields only.
std::string_view top_field(const std::string& path) {
  return path.find('.') == std::string::npos ? std::string_view(path) : std::string_view();
}

bool poison(std::string& error, std::string why) {
  error = std::move(why);
  return false;
}

// Appends the row's columns after the staging prefix. A delete writes the key columns, those
// mapped from the envelope (the guard) and the soft-delete flag; the rest are not read.
bool encode_row(const PostgresSinkConfig& cfg, const Event& e, const Value& envelope, const Value* image,
                const LogicalFields& logical, const Key& key, bool del, std::string& out,
                std::string& error) {
  const char* image_name = del ? "'before'" : "'after'";
  bool first = true;
  for (const auto& col : cfg.columns) {
    if (!first) out.push_back('\t');
    first = false;
    const Value* v = nullptr;
    Value meta;
    switch (col.source) {
      case ColumnSource::soft_delete: out += del ? "t" : "f"; continue;
      case ColumnSource::envelope: v = envelope.at_path(col.path); break;
      case ColumnSource::field:
      case ColumnSource::whole:
        if (del && !col.is_key) {
          out += "\\N";
          continue;
        }
        if (col.is_key && key.object) {
          v = key.object->at_path(col.path);
          if (!v || v->is_null()) v = key.object->find(col.name);
          if (v && !v->is_null() && !key.logical.empty()) {
            if (!decode_logical(key.logical, top_field(col.path), col, *v, meta, error)) return false;
            v = &meta;
          }
        }
        if ((!v || v->is_null()) && image) {
          v = col.source == ColumnSource::whole ? image : image->at_path(col.path);
          if (v && !v->is_null() && !logical.empty() && col.source == ColumnSource::field) {
            if (!decode_logical(logical, top_field(col.path), col, *v, meta, error)) return false;
            v = &meta;
          }
        }
        break;
      default:
        if (del && !col.is_key) {
          out += "\\N";
          continue;
        }
        if (col.source == ColumnSource::key && !key_is_storable(e, col, error)) return false;
        meta = metadata_value(e, col);
        v = &meta;
    }
    if (!v || v->is_null()) {
      if (col.is_key)
        return poison(error, std::string(del ? "delete" : "change event") +
                                 " without a key: no value for key column " + col.name +
                                 " in the Kafka key or " + image_name);
      if (col.required)
        return poison(error,
                      col.source == ColumnSource::envelope
                          ? "missing required envelope field '" + col.path + "' (column " + col.name + ")"
                          : "missing required field '" + col.path + "' in " + image_name + " (column " +
                                col.name + ")");
      out += col.default_copy ? *col.default_copy : std::string_view("\\N");
      continue;
    }
    if (!encode_value(*v, col, out, error)) return false;
  }
  out.push_back('\n');
  return true;
}

}  // namespace

const Value& unwrap_connect_json(const Value& v) {
  if (v.kind() != Value::Kind::object || v.as_object().size() != 2) return v;
  const Value* schema = v.find("schema");
  const Value* payload = v.find("payload");
  return schema && payload ? *payload : v;
}

RowOp encode_debezium(const PostgresSinkConfig& cfg, Event& e, std::uint64_t seq, std::string& out,
                      std::string& error) {
  if (!e.has_value) return RowOp::skip;  // the tombstone after a delete: the delete did it
  const Value* record = record_or_error(e, error);
  if (!record) return RowOp::poison;
  const Value& envelope = unwrap_connect_json(*record);
  if (envelope.is_null())
    return RowOp::skip;  // a tombstone in the wrapper: {"schema": null, "payload": null}
  if (envelope.kind() != Value::Kind::object) {
    error = std::string("not a Debezium change event: the value is ") + kind_name(envelope.kind()) +
            ", not an object";
    return RowOp::poison;
  }
  const Value* op = envelope.find("op");
  if (!op || op->kind() != Value::Kind::string) {
    error = "not a Debezium change event: no 'op' field";
    return RowOp::poison;
  }
  const std::string& o = op->as_string();
  const bool upsert = o == "c" || o == "u" || o == "r", del = o == "d";
  if (o == "t") {
    if (cfg.truncate) return RowOp::truncate;
    error = "truncate skipped (truncate: false)";
    return RowOp::skip;
  }
  if (!upsert && !del) {
    error = "unknown Debezium op '" + printable(o, 20) + "' (expected c, u, r, d or t)";
    return RowOp::poison;
  }
  const Value* image = envelope.find(del ? "before" : "after");
  if (image && image->is_null()) image = nullptr;
  if (upsert && (!image || image->kind() != Value::Kind::object)) {
    error = "op '" + o + "' without 'after': nothing to write";
    return RowOp::poison;
  }
  if (image && image->kind() != Value::Kind::object) {
    error = "'before' of op 'd' is " + std::string(kind_name(image->kind())) + ", not an object";
    return RowOp::poison;
  }
  if (!cfg.guard_field.empty()) {
    const Value* g = envelope.at_path(cfg.guard_field);
    if (!g || g->is_null()) {
      error = "guard " + cfg.guard_field + ": the change event has no " + cfg.guard_field;
      return RowOp::poison;
    }
  }
  // Kafka Connect's wrapper names the logical types (dates as days, decimals as bytes, ...).
  LogicalFields logical;
  if (&envelope != record) logical = logical_fields(*record->find("schema"), del ? "before" : "after");
  Key key;
  read_key(e, key);
  append_stage_prefix(out, seq, del);
  if (!encode_row(cfg, e, envelope, image, logical, key, del, out, error)) return RowOp::poison;
  return del ? RowOp::del : RowOp::write;
}

}  // namespace etld::pg
