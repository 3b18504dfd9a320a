// HyperLogLog (Flajolet et al. 2007) for approx_count_distinct: a fixed 2^14 six-bit registers
// whatever the number of distinct values, with the small-range correction (linear counting
// below 2.5 m). Standard error 1.04 / sqrt(m) = 1.04 / 128 ≈ 0.81 % (so within 3 σ ≈ 2.44 %
// almost always); exact-ish for a few hundred values, where linear counting takes over.
// Values are hashed by their JSON text with a fixed 64-bit function (not std::hash: registers are
// stored in PostgreSQL and merged by later runs and other builds, so the hash must never change).
// The estimate is also written as SQL (estimate_sql) that computes the same number from the
// registers' sparse JSON form, so a table that merges partials reports what etld would.
// Threading: plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace etld::flow {

class HyperLogLog {
 public:
  static constexpr int kPrecision = 14;
  static constexpr std::size_t kRegisters = std::size_t{1} << kPrecision;
  static constexpr std::uint8_t kMaxRank = 64 - kPrecision + 1;

  // FNV-1a over the bytes, then MurmurHash3's fmix64 finalizer so every bit avalanches.
  static std::uint64_t hash(std::string_view bytes);

  void add(std::string_view json_text) { add_hash(hash(json_text)); }
  void add_hash(std::uint64_t h);
  // Raises register `index` to `rank` (no-op when it is already as high). Both must be in range.
  void raise(std::size_t index, std::uint8_t rank);
  void merge(const HyperLogLog& other);
  std::uint64_t estimate() const;
  // The non-zero registers, by index.
  std::vector<std::pair<std::uint32_t, std::uint8_t>> registers() const;
  std::size_t memory_bytes() const { return sparse_.capacity() * sizeof(std::uint32_t) + dense_.capacity(); }

  // SQL computing estimate() from `registers`, a jsonb expression {"index": rank, ...} (the
  // registers of a partial, merged).
  static std::string estimate_sql(const std::string& registers);

 private:
  // Few registers set: sorted (index << 8 | rank); past kSparseMax entries the dense array.
  static constexpr std::size_t kSparseMax = kRegisters / 16;
  std::vector<std::uint32_t> sparse_;
  std::vector<std::uint8_t> dense_;
};

}  // namespace etld::flow
