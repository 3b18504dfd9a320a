#include "stages/engine/dispatcher.hpp"

#include <doctest/doctest.h>

#include <map>

using namespace etld;

namespace {
struct Sent {
  std::map<std::pair<int, int>, std::vector<std::int64_t>> by_sub;
  SendFn fn() {
    return [this](SubscriberId id, Batch&& b) {
      for (auto& e : b) by_sub[{id.group, id.index}].push_back(e.record().as_int());
    };
  }
};
Batch numbers(std::int64_t from, std::int64_t to) {
  Batch b;
  for (auto i = from; i < to; ++i) {
    Event e;
    e.set_record(Value(i));
    b.push_back(std::move(e));
  }
  return b;
}
}  // namespace

TEST_CASE("demand dispatcher sends to the subscriber with the most demand, never beyond it") {
  Sent sent;
  auto d = make_demand_dispatcher(0, 2, sent.fn());
  CHECK(d->demand() == 0);
  d->ask({0, 0}, 3);
  d->ask({0, 1}, 5);
  CHECK(d->demand() == 8);
  d->dispatch(numbers(0, 6));
  CHECK(sent.by_sub[{0, 1}] == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  CHECK(sent.by_sub[{0, 0}] == std::vector<std::int64_t>{5});
  CHECK(d->demand() == 2);
  // More than the demand (a transform's expansion): the rest waits in the buffer.
  d->dispatch(numbers(6, 10));
  CHECK(sent.by_sub[{0, 0}].size() == 3);
  CHECK(d->buffered() == 2);
  CHECK(d->demand() == 0);
  d->ask({0, 1}, 1);
  CHECK(sent.by_sub[{0, 1}].back() == 8);
  CHECK(d->buffered() == 1);
}

TEST_CASE("partition dispatcher keeps each key on one subscriber, in order, within demand") {
  Sent sent;
  auto d = make_partition_dispatcher(
      0, 3, [](Event& e) { return static_cast<std::uint64_t>(e.record().as_int() % 3); }, sent.fn());
  d->ask({0, 0}, 100);
  d->ask({0, 1}, 100);
  d->ask({0, 2}, 2);
  d->dispatch(numbers(0, 30));
  CHECK(sent.by_sub[{0, 0}].size() == 10);
  CHECK(sent.by_sub[{0, 1}].size() == 10);
  CHECK(sent.by_sub[{0, 2}] == std::vector<std::int64_t>{2, 5});  // only what it asked for
  CHECK(d->buffered() == 8);
  for (auto v : sent.by_sub[{0, 1}]) CHECK(v % 3 == 1);
  d->ask({0, 2}, 100);
  CHECK(sent.by_sub[{0, 2}].size() == 10);
  CHECK(std::is_sorted(sent.by_sub[{0, 2}].begin(), sent.by_sub[{0, 2}].end()));
  CHECK(d->buffered() == 0);
}

TEST_CASE("broadcast dispatcher sends every event to every child, paced by the slowest") {
  Sent sent;
  std::vector<std::unique_ptr<Dispatcher>> children;
  children.push_back(make_demand_dispatcher(0, 1, sent.fn()));
  children.push_back(make_demand_dispatcher(1, 1, sent.fn()));
  auto d = make_broadcast_dispatcher(std::move(children));
  d->ask({0, 0}, 10);
  d->ask({1, 0}, 4);
  CHECK(d->demand() == 4);
  struct Counter : AckTarget {
    std::vector<std::pair<std::uint64_t, AckStatus>> settled;
    void settle(std::uint64_t t, AckStatus s) override { settled.emplace_back(t, s); }
  };
  auto acks = std::make_shared<Counter>();
  auto batch = numbers(0, 4);
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].ack = Ack(acks, i);
  d->dispatch(std::move(batch));
  CHECK(sent.by_sub[{0, 0}].size() == 4);
  CHECK(sent.by_sub[{1, 0}].size() == 4);
  CHECK(d->demand() == 0);
}

TEST_CASE("an ack split among copies settles its parent once, after the last copy") {
  struct Counter : AckTarget {
    std::vector<std::pair<std::uint64_t, AckStatus>> settled;
    void settle(std::uint64_t t, AckStatus s) override { settled.emplace_back(t, s); }
  };
  auto target = std::make_shared<Counter>();
  Ack parent(target, 7);
  auto kids = parent.split(3);
  CHECK_FALSE(parent.pending());
  kids[0].settle(AckStatus::done);
  kids[2].settle(AckStatus::dead_lettered);
  CHECK(target->settled.empty());
  kids[1].settle(AckStatus::done);
  REQUIRE(target->settled.size() == 1);
  CHECK(target->settled[0] == std::make_pair(std::uint64_t{7}, AckStatus::dead_lettered));
}

TEST_CASE("an ack dropped without settling settles as failed, never silently") {
  struct Counter : AckTarget {
    std::vector<std::pair<std::uint64_t, AckStatus>> settled;
    void settle(std::uint64_t t, AckStatus s) override { settled.emplace_back(t, s); }
  };
  auto target = std::make_shared<Counter>();
  { Ack a(target, 1); }
  REQUIRE(target->settled.size() == 1);
  CHECK(target->settled[0].second == AckStatus::failed);
}

TEST_CASE("sequence acks: the done prefix stops at a pending or failed token") {
  SequenceAcks acks;
  acks.settle(1, AckStatus::done);
  CHECK(acks.done_prefix() == 0);
  acks.settle(0, AckStatus::dead_lettered);
  CHECK(acks.done_prefix() == 2);
  acks.settle(3, AckStatus::done);
  acks.settle(2, AckStatus::failed);
  CHECK(acks.done_prefix() == 2);
  CHECK(acks.failed() == 1);
  CHECK(acks.dead_lettered() == 1);
}
