#include "connectors/avro/avro_decode.hpp"

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "connectors/avro/avro_logical.hpp"

namespace etld::avro {

namespace {

static_assert(std::endian::native == std::endian::little, "Avro's float and double are little-endian");

// A failure on its way out of the datum, collecting where it happened ("lines[2].price").
struct PathError {
  std::string path;
  std::string why;

  void prepend(const std::string& step) {
    if (!path.empty() && path[0] != '[') path.insert(path.begin(), '.');
    path.insert(0, step);
  }
};

class BodyReader {
 public:
  explicit BodyReader(std::string_view body)
      : begin_(reinterpret_cast<const std::uint8_t*>(body.data())),
        p_(begin_),
        end_(begin_ + body.size()),
        items_left_(body.size() + kMaxZeroSizedItems) {}

  Value read(const AvroNode& n) {
    switch (n.type) {
      case AvroType::null: return Value();
      case AvroType::boolean: {
        const std::uint8_t b = take(1, "a boolean")[0];
        if (b > 1) fail(fmt::format("boolean byte 0x{:02x} is neither 0 nor 1", b));
        return Value(b == 1);
      }
      case AvroType::int_: {
        const std::int64_t v = read_int();
        switch (n.logical) {
          case Logical::date: return checked([&] { return date_text(v); });
          case Logical::time_millis: return checked([&] { return time_text(v, 3); });
          default: return Value(v);
        }
      }
      case AvroType::long_: {
        const std::int64_t v = read_long();
        switch (n.logical) {
          case Logical::time_micros: return checked([&] { return time_text(v, 6); });
          case Logical::timestamp_millis: return checked([&] { return timestamp_text(v, 3, true); });
          case Logical::timestamp_micros: return checked([&] { return timestamp_text(v, 6, true); });
          case Logical::local_timestamp_millis: return checked([&] { return timestamp_text(v, 3, false); });
          case Logical::local_timestamp_micros: return checked([&] { return timestamp_text(v, 6, false); });
          default: return Value(v);
        }
      }
      case AvroType::float_: {
        float f;
        std::memcpy(&f, take(4, "a float"), 4);
        return Value(static_cast<double>(f));
      }
      case AvroType::double_: {
        double d;
        std::memcpy(&d, take(8, "a double"), 8);
        return Value(d);
      }
      case AvroType::bytes:
      case AvroType::string: {
        const bool is_bytes = n.type == AvroType::bytes;
        const std::string_view s = take_sized(is_bytes ? "bytes" : "a string");
        if (n.logical == Logical::decimal) return decimal(s, n.scale);
        return Value(std::string(s));
      }
      case AvroType::fixed: {
        const auto size = static_cast<std::size_t>(n.fixed_size);
        const auto* data = take(size, "a fixed");
        const std::string_view s(reinterpret_cast<const char*>(data), size);
        if (n.logical == Logical::decimal) return decimal(s, n.scale);
        if (n.logical == Logical::uuid) return Value(uuid_text(s));
        return Value(std::string(s));
      }
      case AvroType::enum_: {
        const std::int64_t i = read_long();
        if (i < 0 || static_cast<std::uint64_t>(i) >= n.symbols.size())
          fail(fmt::format("enum index {} out of range ({} has {} symbols)", i, n.name, n.symbols.size()));
        return Value(n.symbols[static_cast<std::size_t>(i)]);
      }
      case AvroType::union_: {
        const std::int64_t i = read_long();
        if (i < 0 || static_cast<std::uint64_t>(i) >= n.branches.size())
          fail(fmt::format("union index {} out of range ({} branches)", i, n.branches.size()));
        return read(*n.branches[static_cast<std::size_t>(i)]);
      }
      case AvroType::record: return read_record(n);
      case AvroType::array:
      case AvroType::map: return read_items(n);
    }
    fail("unknown node");
  }

  void finish() const {
    if (p_ != end_)
      throw PathError{"", fmt::format("trailing bytes: {} of the body's {} bytes are left after the datum",
                                      end_ - p_, end_ - begin_)};
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw PathError{"", fmt::format("{} (at byte {} of {})", why, p_ - begin_, end_ - begin_)};
  }

  // A logical type's text; its own failure (a date beyond year 9999) located like the others.
  template <class Text>
  Value checked(Text text) {
    try {
      return Value(text());
    } catch (const AvroDecodeError& e) {
      fail(e.what());
    }
  }

  Value decimal(std::string_view unscaled, std::int32_t scale) {
    try {
      return Value::from_json_number(decimal_text(unscaled, scale));
    } catch (const AvroDecodeError& e) {
      fail(e.what());
    }
  }

  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }

  const std::uint8_t* take(std::size_t n, const char* what) {
    if (n > left()) fail(fmt::format("truncated: {} needs {} bytes, {} are left", what, n, left()));
    const auto* at = p_;
    p_ += n;
    return at;
  }

  std::string_view take_sized(const char* what) {
    const std::int64_t len = read_long();
    if (len < 0) fail(fmt::format("{} of negative length {}", what, len));
    if (static_cast<std::uint64_t>(len) > left())
      fail(fmt::format("truncated: {} of {} bytes, {} are left", what, len, left()));
    const auto* at = take(static_cast<std::size_t>(len), what);
    return {reinterpret_cast<const char*>(at), static_cast<std::size_t>(len)};
  }

  // Zig-zag varint of at most 10 bytes.
  std::int64_t read_long() {
    std::uint64_t u = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ == end_) fail("truncated: a number runs past the end of the body");
      const std::uint8_t b = *p_++;
      if (shift == 63 && (b & 0x7e)) fail("a long longer than 64 bits");
      u |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
    }
    fail("a long of more than 10 bytes");
  }

  std::int64_t read_int() {
    const std::int64_t v = read_long();
    if (v < INT32_MIN || v > INT32_MAX) fail(fmt::format("an int out of 32-bit range: {}", v));
    return v;
  }

  struct Level {
    explicit Level(BodyReader& r) : r_(r) {
      if (++r_.depth_ > kMaxJsonDepth) r_.fail(fmt::format("nested deeper than {} levels", kMaxJsonDepth));
    }
    ~Level() { --r_.depth_; }
    BodyReader& r_;
  };

  Value read_record(const AvroNode& n) {
    Level level(*this);
    Object o;
    o.reserve(n.fields.size());
    for (const auto& [name, type] : n.fields) {
      try {
        o.emplace_back(name, read(*type));
      } catch (PathError& e) {
        e.prepend(name);
        throw;
      }
    }
    return Value(std::move(o));
  }

  // Blocks of items, each a count (negative: followed by the block's size in bytes), ended by a
  // count of 0. Map items are a string key and a value.
  Value read_items(const AvroNode& n) {
    Level level(*this);
    const bool is_map = n.type == AvroType::map;
    Array a;
    Object o;
    for (;;) {
      std::int64_t count = read_long();
      if (count == 0) break;
      if (count < 0) {
        if (count == INT64_MIN) fail("an item count out of range");
        count = -count;
        if (read_long() < 0) fail("a negative block size");
      }
      if (static_cast<std::uint64_t>(count) > items_left_)
        fail(fmt::format("a block of {} items, more than a body of {} bytes can hold", count, end_ - begin_));
      items_left_ -= static_cast<std::size_t>(count);
      for (std::int64_t i = 0; i < count; ++i) {
        try {
          if (is_map) {
            std::string key(take_sized("a map key"));
            o.emplace_back(std::move(key), read(*n.items));
          } else {
            a.push_back(read(*n.items));
          }
        } catch (PathError& e) {
          e.prepend("[" + std::to_string(is_map ? o.size() : a.size()) + "]");
          throw;
        }
      }
    }
    if (is_map) return Value(std::move(o));
    return Value(std::move(a));
  }

  const std::uint8_t* begin_;
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  std::size_t items_left_;
  std::size_t depth_ = 0;
};

}  // namespace

Value decode_avro(const AvroSchema& schema, std::string_view body) {
  try {
    BodyReader reader(body);
    Value v = reader.read(schema.root());
    reader.finish();
    return v;
  } catch (const PathError& e) {
    throw AvroDecodeError(e.path.empty() ? e.why : e.path + ": " + e.why);
  }
}

}  // namespace etld::avro
