// The benchmark's records, made the same way by the producer (as JSON for Kafka) and by the COPY
// baseline (as pre-decoded rows): record `i` of a shape is always the same bytes.
//   narrow: 6 fields, ~150 bytes of JSON;  wide: the same 6 plus 14 text fields, ~1 kB.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace etld::bench {

constexpr int kWideExtraFields = 14;

struct Record {
  std::int64_t id = 0;
  std::string customer, amount, status, created_at, note;
  std::string extra[kWideExtraFields];  // wide shape only
};

inline Record make_record(std::int64_t i, bool wide) {
  static constexpr const char* kStatus[] = {"paid", "pending", "shipped", "refunded"};
  Record r;
  r.id = i;
  char buf[96];
  std::snprintf(buf, sizeof buf, "cust-%06lld", static_cast<long long>(i % 100000));
  r.customer = buf;
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(i % 100000),
                static_cast<long long>(i % 100));
  r.amount = buf;
  r.status = kStatus[i % 4];
  std::snprintf(buf, sizeof buf, "2026-11-%02lldT%02lld:%02lld:%02lld.%03lldZ",
                static_cast<long long>(1 + i % 28), static_cast<long long>(i / 3600 % 24),
                static_cast<long long>(i / 60 % 60), static_cast<long long>(i % 60),
                static_cast<long long>(i % 1000));
  r.created_at = buf;
  std::snprintf(buf, sizeof buf, "order %lld for customer %lld, standard delivery", static_cast<long long>(i),
                static_cast<long long>(i % 100000));
  r.note = buf;
  if (wide)
    for (int f = 0; f < kWideExtraFields; ++f) {
      std::snprintf(buf, sizeof buf, "field %02d of record %012lld: lorem ipsum dolor sit amet", f,
                    static_cast<long long>(i));
      r.extra[f] = buf;
    }
  return r;
}

inline void append_json(std::string& out, const Record& r, bool wide) {
  out += "{\"id\":" + std::to_string(r.id) + ",\"customer\":\"" + r.customer + "\",\"amount\":" + r.amount +
         ",\"status\":\"" + r.status + "\",\"created_at\":\"" + r.created_at + "\",\"note\":\"" + r.note +
         "\"";
  if (wide)
    for (int f = 0; f < kWideExtraFields; ++f) {
      char name[8];
      std::snprintf(name, sizeof name, "f%02d", f);
      out += std::string(",\"") + name + "\":\"" + r.extra[f] + "\"";
    }
  out += "}";
}

// COPY text format: none of the generated fields needs escaping.
inline void append_copy_row(std::string& out, const Record& r, bool wide) {
  out += std::to_string(r.id) + '\t' + r.customer + '\t' + r.amount + '\t' + r.status + '\t' + r.created_at +
         '\t' + r.note;
  if (wide)
    for (int f = 0; f < kWideExtraFields; ++f) out += '\t' + r.extra[f];
  out += '\n';
}

}  // namespace etld::bench
