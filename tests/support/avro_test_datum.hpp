// Avro data for tests, written by avro-c's own writer: a generic value of a schema, filled field
// by field, then encoded with avro_value_write, so that what etld decodes is what the library
// writes.
#pragma once

#include <avro.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "connectors/avro/avro_decode.hpp"
#include "connectors/avro/avro_schema.hpp"

namespace etld::test {

// A datum of a schema built with avro-c's generic values, and written with avro_value_write.
class Datum {
 public:
  explicit Datum(const std::string& schema_json) : json_(schema_json) {
    if (avro_schema_from_json_length(json_.data(), json_.size(), &schema_) != 0)
      throw std::runtime_error(std::string("test schema: ") + avro_strerror());
    iface_ = avro_generic_class_from_schema(schema_);
    avro_generic_value_new(iface_, &root_);
  }
  ~Datum() {
    avro_value_decref(&root_);
    avro_value_iface_decref(iface_);
    avro_schema_decref(schema_);
  }
  Datum(const Datum&) = delete;
  Datum& operator=(const Datum&) = delete;

  avro_value_t& root() { return root_; }
  // Empties every array and map, so that the datum can be filled again.
  void reset() { avro_value_reset(&root_); }

  // Top-level fields by name.
  void set_int(const char* name, std::int32_t v) {
    avro_value_t f = field(name);
    avro_value_set_int(&f, v);
  }
  void set_long(const char* name, std::int64_t v) {
    avro_value_t f = field(name);
    avro_value_set_long(&f, v);
  }
  void set_double(const char* name, double v) {
    avro_value_t f = field(name);
    avro_value_set_double(&f, v);
  }
  void set_boolean(const char* name, bool v) {
    avro_value_t f = field(name);
    avro_value_set_boolean(&f, v);
  }
  void set_enum(const char* name, int v) {
    avro_value_t f = field(name);
    avro_value_set_enum(&f, v);
  }
  void set_string(const char* name, const std::string& v) {
    avro_value_t f = field(name);
    avro_value_set_string_len(&f, v.c_str(), v.size() + 1);
  }
  void set_bytes(const char* name, const std::string& v) {
    avro_value_t f = field(name);
    avro_value_set_bytes(&f, const_cast<char*>(v.data()), v.size());
  }
  void set_fixed(const char* name, const std::string& v) {
    avro_value_t f = field(name);
    avro_value_set_fixed(&f, const_cast<char*>(v.data()), v.size());
  }
  avro_value_t field(const char* name) { return field(root_, name); }
  static avro_value_t field(avro_value_t& record, const char* name) {
    avro_value_t f;
    if (avro_value_get_by_name(&record, name, &f, nullptr) != 0)
      throw std::runtime_error(std::string("no field ") + name);
    return f;
  }
  // Selects branch `index` of the union `u` and returns it.
  static avro_value_t branch(avro_value_t u, int index) {
    avro_value_t b;
    if (avro_value_set_branch(&u, index, &b) != 0) throw std::runtime_error("no such branch");
    return b;
  }

  std::string body() {
    std::size_t size = 0;
    if (avro_value_sizeof(&root_, &size) != 0) throw std::runtime_error(avro_strerror());
    std::string out(size, '\0');
    avro_writer_t w = avro_writer_memory(out.data(), static_cast<int64_t>(out.size()));
    const bool ok = avro_value_write(w, &root_) == 0 && static_cast<std::size_t>(avro_writer_tell(w)) == size;
    avro_writer_free(w);
    if (!ok) throw std::runtime_error(std::string("avro_value_write: ") + avro_strerror());
    return out;
  }
  std::shared_ptr<const avro::AvroSchema> compiled() const { return avro::AvroSchema::parse(json_); }
  Value decode() { return avro::decode_avro(*compiled(), body()); }

 private:
  std::string json_;
  avro_schema_t schema_ = nullptr;
  avro_value_iface_t* iface_ = nullptr;
  avro_value_t root_;
};

}  // namespace etld::test
