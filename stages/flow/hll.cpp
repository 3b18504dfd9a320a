#include "stages/flow/hll.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

namespace etld::flow {
namespace {

constexpr double kM = static_cast<double>(HyperLogLog::kRegisters);
// alpha_m · m², the raw estimate's constant (Flajolet et al., for m >= 128).
constexpr double kAlphaMM = 0.7213 / (1.0 + 1.079 / kM) * kM * kM;
// Register sums are kept exact as integers: sum of 2^(kMaxRank - rank), scaled by 2^kMaxRank.
constexpr int kScaleBits = HyperLogLog::kMaxRank;

std::uint32_t packed(std::size_t index, std::uint8_t rank) {
  return static_cast<std::uint32_t>(index << 8 | rank);
}

}  // namespace

std::uint64_t HyperLogLog::hash(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a 64
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;  // MurmurHash3 fmix64
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

void HyperLogLog::add_hash(std::uint64_t h) {
  std::size_t index = static_cast<std::size_t>(h >> (64 - kPrecision));
  std::uint64_t rest = h << kPrecision;
  auto rank = static_cast<std::uint8_t>(rest == 0 ? kMaxRank : std::countl_zero(rest) + 1);
  raise(index, rank);
}

void HyperLogLog::raise(std::size_t index, std::uint8_t rank) {
  if (!dense_.empty()) {
    dense_[index] = std::max(dense_[index], rank);
    return;
  }
  auto at = std::lower_bound(sparse_.begin(), sparse_.end(), packed(index, 0));
  if (at != sparse_.end() && (*at >> 8) == index) {
    if ((*at & 0xff) < rank) *at = packed(index, rank);
    return;
  }
  if (sparse_.size() < kSparseMax) {
    sparse_.insert(at, packed(index, rank));
    return;
  }
  dense_.assign(kRegisters, 0);
  for (std::uint32_t r : sparse_) dense_[r >> 8] = static_cast<std::uint8_t>(r & 0xff);
  sparse_ = {};
  dense_[index] = std::max(dense_[index], rank);
}

void HyperLogLog::merge(const HyperLogLog& other) {
  for (const auto& [index, rank] : other.registers()) raise(index, rank);
}

std::vector<std::pair<std::uint32_t, std::uint8_t>> HyperLogLog::registers() const {
  std::vector<std::pair<std::uint32_t, std::uint8_t>> out;
  if (dense_.empty()) {
    out.reserve(sparse_.size());
    for (std::uint32_t r : sparse_) out.emplace_back(r >> 8, static_cast<std::uint8_t>(r & 0xff));
    return out;
  }
  for (std::size_t i = 0; i < dense_.size(); ++i)
    if (dense_[i] != 0) out.emplace_back(static_cast<std::uint32_t>(i), dense_[i]);
  return out;
}

std::uint64_t HyperLogLog::estimate() const {
  // Exactly as estimate_sql: the sum of 2^-rank as an exact integer scaled by 2^kScaleBits,
  // converted to double once, so both compute the same double operations on the same inputs.
  auto set = registers();
  unsigned __int128 sum = static_cast<unsigned __int128>(kRegisters - set.size()) << kScaleBits;
  for (const auto& [index, rank] : set) sum += static_cast<unsigned __int128>(1) << (kScaleBits - rank);
  double e = kAlphaMM * (std::ldexp(1.0, kScaleBits) / static_cast<double>(sum));
  double zeros = static_cast<double>(kRegisters - set.size());
  if (e <= 2.5 * kM && zeros > 0) e = kM * std::log(kM / zeros);  // linear counting
  return static_cast<std::uint64_t>(std::nearbyint(e));           // half to even, as SQL's round(float8)
}

std::string HyperLogLog::estimate_sql(const std::string& registers) {
  char constant[40];
  std::snprintf(constant, sizeof constant, "%.17g", kAlphaMM);
  std::string m = std::to_string(kRegisters);
  std::string unit = std::to_string(std::uint64_t{1} << kScaleBits);
  std::string bits = std::to_string(kScaleBits);
  return "(SELECT round(CASE WHEN e <= " + std::to_string(2.5 * kM) + " AND z > 0 THEN " + m + " * ln(" + m +
         "::float8 / z) ELSE e END)::bigint FROM (SELECT '" + constant + "'::float8 * (" + unit +
         "::float8 / (COALESCE(sum(1::bigint << (" + bits + " - r)), 0) + (" + m +
         " - count(*))::numeric * " + unit + ")::float8) AS e, (" + m +
         " - count(*))::float8 AS z FROM (SELECT value::int AS r FROM jsonb_each_text(" + registers +
         ")) AS g) AS u)";
}

}  // namespace etld::flow
