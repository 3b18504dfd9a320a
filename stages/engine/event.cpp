#include "stages/engine/event.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_set>

namespace etld {

void AckTarget::settle_many(std::span<const std::uint64_t> tokens, AckStatus status) {
  for (auto t : tokens) settle(t, status);
}

bool AckTarget::visit_covered(const CoveredVisitor&) const { return false; }

void Ack::visit_covered(const AckTarget::CoveredVisitor& visit) const {
  if (target_ && !target_->visit_covered(visit)) visit(*target_, token_);
}

Ack& Ack::operator=(Ack&& o) noexcept {
  if (this != &o) {
    if (target_) target_->settle(token_, AckStatus::failed);
    target_ = std::move(o.target_);
    token_ = o.token_;
  }
  return *this;
}

Ack::~Ack() {
  if (target_) target_->settle(token_, AckStatus::failed);
}

void Ack::settle(AckStatus status) {
  if (!target_) return;
  auto target = std::move(target_);
  target->settle(token_, status);
}

namespace {
// Settles its parent once every child has settled, with the worst of their statuses.
class AckFanIn : public AckTarget {
 public:
  AckFanIn(Ack parent, std::size_t children) : parent_(std::move(parent)), remaining_(children) {}
  bool visit_covered(const CoveredVisitor& visit) const override {
    parent_.visit_covered(visit);
    return true;
  }
  std::size_t unsettled_parts() const override { return remaining_.load(std::memory_order_acquire); }
  void settle(std::uint64_t, AckStatus status) override {
    auto s = static_cast<std::uint8_t>(status);
    auto prev = worst_.load(std::memory_order_relaxed);
    while (prev < s && !worst_.compare_exchange_weak(prev, s, std::memory_order_relaxed)) {
    }
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      parent_.settle(static_cast<AckStatus>(worst_.load(std::memory_order_relaxed)));
  }

 private:
  Ack parent_;
  std::atomic<std::size_t> remaining_;
  std::atomic<std::uint8_t> worst_{0};
};
}  // namespace

std::vector<Ack> Ack::split(std::size_t n) {
  std::vector<Ack> children;
  if (n == 0) {
    settle(AckStatus::done);
    return children;
  }
  if (!target_) {  // nothing to settle upstream: children are free-standing
    children.resize(n);
    return children;
  }
  auto fan_in = std::make_shared<AckFanIn>(std::move(*this), n);
  children.reserve(n);
  for (std::size_t i = 0; i < n; ++i) children.emplace_back(fan_in, i);
  return children;
}

namespace {

struct NameTable {
  std::mutex mu;
  std::unordered_set<std::string> names;  // nodes never move: pointers to them stay valid
  const std::string* empty = &*names.emplace().first;
};

NameTable& name_table() {
  static auto* table = new NameTable;  // never destroyed: events may outlive static destruction
  return *table;
}

}  // namespace

SharedName::SharedName() : s_(name_table().empty) {}

SharedName::SharedName(std::string_view s) {
  NameTable& t = name_table();
  if (s.empty()) {
    s_ = t.empty;
    return;
  }
  std::lock_guard lock(t.mu);
  s_ = &*t.names.emplace(s).first;
}

Value& Event::record() {
  if (!parsed_) {
    record_ = has_value ? parse_json(value) : Value();
    parsed_ = true;
  }
  return record_;
}

Event Event::clone() const {
  Event e;
  e.value = value;
  e.key = key;
  e.has_key = has_key;
  e.has_value = has_value;
  e.headers = headers;
  e.timestamp_ms = timestamp_ms;
  e.topic = topic;
  e.partition = partition;
  e.offset = offset;
  e.rejection = rejection;
  e.record_ = record_;
  e.parsed_ = parsed_;
  e.schema = schema;
  e.key_schema = key_schema;
  return e;
}

AckBatch& AckBatch::operator=(AckBatch&& o) noexcept {
  if (this != &o) {
    settle(AckStatus::failed);
    groups_ = std::move(o.groups_);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void AckBatch::add(Ack& ack) {
  if (!ack.pending()) return;
  auto token = ack.token();
  auto target = ack.take_target();
  // Sinks see long runs of one source's events: check the last group first.
  auto it = groups_.rbegin();
  for (; it != groups_.rend(); ++it)
    if (it->first == target) break;
  if (it != groups_.rend()) {
    it->second.push_back(token);
  } else {
    groups_.emplace_back(std::move(target), std::vector<std::uint64_t>{token});
  }
  ++size_;
}

void AckBatch::visit_covered(const AckTarget::CoveredVisitor& visit) const {
  for (const auto& [target, tokens] : groups_) {
    // A composite target stands for the same acks whatever its token: visit them once.
    if (target->visit_covered(visit)) continue;
    for (auto t : tokens) visit(*target, t);
  }
}

void AckBatch::settle(AckStatus status) {
  for (auto& [target, tokens] : groups_) target->settle_many(tokens, status);
  groups_.clear();
  size_ = 0;
}

namespace {
// The target of a joined ack: settles the acks it holds when it is settled (once: only the one
// Ack that refers to it can settle it).
class JoinedAcks : public AckTarget {
 public:
  explicit JoinedAcks(AckBatch held) : held_(std::move(held)) {}
  void settle(std::uint64_t, AckStatus status) override { held_.settle(status); }
  bool visit_covered(const CoveredVisitor& visit) const override {
    held_.visit_covered(visit);
    return true;
  }

 private:
  AckBatch held_;
};
}  // namespace

Ack AckBatch::join() {
  if (empty()) return Ack();
  return Ack(std::make_shared<JoinedAcks>(std::move(*this)), 0);
}

void settle_all(Batch& batch, AckStatus status) {
  AckBatch acks;
  for (auto& e : batch) acks.add(e.ack);
  acks.settle(status);
}

void SequenceAcks::settle_locked(std::uint64_t token, AckStatus status) {
  settled_.fetch_add(1, std::memory_order_relaxed);
  if (status == AckStatus::dead_lettered) dead_lettered_.fetch_add(1, std::memory_order_relaxed);
  if (status == AckStatus::failed) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    blocked_ = true;
    return;
  }
  auto base = done_prefix_.load(std::memory_order_relaxed);
  if (token < base) return;
  auto idx = static_cast<std::size_t>(token - base);
  if (window_.size() <= idx) window_.resize(idx + 1, false);
  window_[idx] = true;
  if (blocked_) return;
  while (!window_.empty() && window_.front()) {
    window_.pop_front();
    ++base;
  }
  done_prefix_.store(base, std::memory_order_release);
}

void SequenceAcks::settle(std::uint64_t token, AckStatus status) {
  std::lock_guard lock(mu_);
  settle_locked(token, status);
}

void SequenceAcks::settle_many(std::span<const std::uint64_t> tokens, AckStatus status) {
  std::lock_guard lock(mu_);
  for (auto t : tokens) settle_locked(t, status);
}

}  // namespace etld
