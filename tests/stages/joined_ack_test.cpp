// Joined acks (AckBatch::join): how a stateful transform hands the acks of the inputs it holds to
// the event it emits later. Each held input must settle exactly once, only after every output
// that carries it has, with the worst status among them, and a lost output must read as failed.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "stages/engine/event.hpp"

namespace etld {
namespace {

// Records every settlement, and how many settle_many calls carried them.
class Recorder : public AckTarget {
 public:
  void settle(std::uint64_t token, AckStatus status) override {
    std::lock_guard lock(mu_);
    seen_[token].push_back(status);
  }
  void settle_many(std::span<const std::uint64_t> tokens, AckStatus status) override {
    std::lock_guard lock(mu_);
    ++many_calls_;
    for (auto t : tokens) seen_[t].push_back(status);
  }
  std::size_t total() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [token, statuses] : seen_) n += statuses.size();
    return n;
  }
  // Tokens [first, first + n) each settled exactly once with `status`.
  bool once(std::uint64_t first, std::uint64_t n, AckStatus status) const {
    std::lock_guard lock(mu_);
    for (auto t = first; t < first + n; ++t) {
      auto it = seen_.find(t);
      if (it == seen_.end() || it->second.size() != 1 || it->second[0] != status) return false;
    }
    return true;
  }
  std::size_t many_calls() const {
    std::lock_guard lock(mu_);
    return many_calls_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::uint64_t, std::vector<AckStatus>> seen_;
  std::size_t many_calls_ = 0;
};

AckBatch hold(const std::shared_ptr<AckTarget>& target, std::uint64_t first, std::uint64_t n) {
  AckBatch held;
  for (auto t = first; t < first + n; ++t) {
    Ack a(target, t);
    held.add(a);
    CHECK_FALSE(a.pending());  // taken over: destroying `a` settles nothing
  }
  return held;
}

TEST_CASE("a joined ack settles every held input once, when it settles, with its status") {
  auto target = std::make_shared<Recorder>();
  AckBatch held = hold(target, 0, 5);
  CHECK(held.size() == 5);
  Ack joined = held.join();
  CHECK(held.empty());
  CHECK(joined.pending());
  CHECK(target->total() == 0);
  joined.settle(AckStatus::dead_lettered);
  CHECK(target->once(0, 5, AckStatus::dead_lettered));
  joined.settle(AckStatus::done);  // an ack settles once: a second settle does nothing
  CHECK(target->total() == 5);
}

TEST_CASE("a joined ack destroyed unsettled settles its inputs failed; so does a batch still holding") {
  auto target = std::make_shared<Recorder>();
  { Ack joined = hold(target, 0, 3).join(); }
  CHECK(target->once(0, 3, AckStatus::failed));
  { AckBatch held = hold(target, 3, 2); }
  CHECK(target->once(3, 2, AckStatus::failed));
  // Moving a holding batch over another one settles the overwritten one's acks failed.
  AckBatch a = hold(target, 5, 1);
  a = hold(target, 6, 1);
  CHECK(target->once(5, 1, AckStatus::failed));
  CHECK(target->total() == 6);
  a.settle(AckStatus::done);
  CHECK(target->once(6, 1, AckStatus::done));
}

TEST_CASE("a joined ack split among outputs settles its inputs once, after the last, worst status") {
  auto target = std::make_shared<Recorder>();
  auto parts = hold(target, 0, 4).join().split(3);
  REQUIRE(parts.size() == 3);
  parts[0].settle(AckStatus::done);
  parts[2].settle(AckStatus::dead_lettered);
  CHECK(target->total() == 0);
  parts[1].settle(AckStatus::done);
  CHECK(target->once(0, 4, AckStatus::dead_lettered));

  // Parts settled from several threads: still once each.
  auto many = std::make_shared<Recorder>();
  auto outputs = hold(many, 0, 1000).join().split(8);
  std::vector<std::thread> threads;
  for (auto& part : outputs) threads.emplace_back([&part] { part.settle(AckStatus::done); });
  for (auto& t : threads) t.join();
  CHECK(many->once(0, 1000, AckStatus::done));
  CHECK(many->total() == 1000);

  // A failed part wins over the others.
  auto worst = std::make_shared<Recorder>();
  auto pair = hold(worst, 0, 2).join().split(2);
  pair[0].settle(AckStatus::failed);
  pair[1].settle(AckStatus::done);
  CHECK(worst->once(0, 2, AckStatus::failed));
}

TEST_CASE("joined acks of many targets settle with one settle_many per target, however many acks") {
  constexpr std::uint64_t kTargets = 4, kPerTarget = 25'000;  // 10^5 held acks
  std::vector<std::shared_ptr<Recorder>> targets;
  for (std::uint64_t i = 0; i < kTargets; ++i) targets.push_back(std::make_shared<Recorder>());
  AckBatch held;
  // Interleaved runs, as from a round-robin over Kafka partitions.
  for (std::uint64_t run = 0; run < kPerTarget / 100; ++run)
    for (auto& target : targets)
      for (std::uint64_t k = 0; k < 100; ++k) {
        Ack a(target, run * 100 + k);
        held.add(a);
      }
  CHECK(held.size() == kTargets * kPerTarget);
  Ack joined = held.join();
  for (auto& target : targets) CHECK(target->total() == 0);
  joined.settle(AckStatus::done);
  for (auto& target : targets) {
    CHECK(target->once(0, kPerTarget, AckStatus::done));
    CHECK(target->total() == kPerTarget);
    CHECK(target->many_calls() == 1);
  }
}

TEST_CASE("joining nothing gives a free-standing ack; settled inputs are not held") {
  AckBatch empty;
  Ack joined = empty.join();
  CHECK_FALSE(joined.pending());
  auto target = std::make_shared<Recorder>();
  AckBatch held;
  Ack settled(target, 9);
  settled.settle(AckStatus::done);
  held.add(settled);
  CHECK(held.empty());
  CHECK(target->total() == 1);
}

TEST_CASE("a joined ack shows every source ack it covers, through joins of joins, without settling them") {
  using Covered = std::vector<std::pair<AckTarget*, std::uint64_t>>;
  auto collect = [](const Ack& ack) {
    Covered seen;
    ack.visit_covered([&](AckTarget& t, std::uint64_t token) { seen.emplace_back(&t, token); });
    return seen;
  };
  auto a = std::make_shared<Recorder>();
  auto b = std::make_shared<Recorder>();
  Ack plain(a, 7);
  CHECK(collect(plain) == Covered{{a.get(), 7}});

  AckBatch inner = hold(b, 10, 2);
  Ack inner_joined = inner.join();
  AckBatch outer = hold(a, 0, 3);
  outer.add(inner_joined);
  Ack joined = outer.join();
  CHECK(collect(joined) == Covered{{a.get(), 0}, {a.get(), 1}, {a.get(), 2}, {b.get(), 10}, {b.get(), 11}});
  CHECK(a->total() == 0);
  CHECK(b->total() == 0);
  joined.settle(AckStatus::done);
  CHECK(a->once(0, 3, AckStatus::done));
  CHECK(b->once(10, 2, AckStatus::done));
  CHECK(collect(joined).empty());  // settled: it covers nothing any more
  plain.settle(AckStatus::done);
}

}  // namespace
}  // namespace etld
