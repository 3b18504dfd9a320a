// The kafka source's per-partition commit window (connectors/kafka/kafka_partition_acks): what
// offset it lets the source commit as sinks settle out of order, how failures and dead letters
// count, the in-flight cap with its hysteresis, and a revoked assignment. No broker needed: the
// window is fed offsets as the source would emit them and settled as sinks would.
#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "connectors/kafka/kafka_config.hpp"
#include "connectors/kafka/kafka_partition_acks.hpp"

using namespace etld;
using namespace etld::kafka;

namespace {

std::vector<std::int64_t> offsets(std::int64_t from, std::int64_t to) {  // [from, to)
  std::vector<std::int64_t> v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

// A window whose waker counts the wake-ups the source's strand would get.
struct Window {
  boost::asio::io_context io;
  std::shared_ptr<Waker> waker = std::make_shared<Waker>();
  PartitionAcks acks{waker};
  int wakes = 0;

  Window() {
    waker->arm(io.get_executor(), [this] {
      waker->rearm();
      ++wakes;
    });
  }
  int woken() {  // runs what was posted; the wake-ups so far
    io.restart();
    io.poll();
    return wakes;
  }
};

}  // namespace

TEST_CASE("partition acks: the commit offset advances only over the contiguous settled prefix") {
  Window w;
  CHECK(w.acks.commit_offset() == -1);  // nothing emitted: nothing to commit
  w.acks.add(offsets(10, 15));
  CHECK(w.acks.commit_offset() == 10);
  CHECK(w.acks.window() == 5);
  CHECK(w.acks.unsettled() == 5);

  w.acks.settle(12, AckStatus::done);
  w.acks.settle(11, AckStatus::done);
  CHECK(w.acks.commit_offset() == 10);  // 10 is still out
  CHECK(w.acks.window() == 5);
  CHECK(w.acks.unsettled() == 3);
  w.acks.settle(10, AckStatus::done);
  CHECK(w.acks.commit_offset() == 13);
  CHECK(w.acks.window() == 2);
  w.acks.settle(14, AckStatus::done);
  CHECK(w.acks.commit_offset() == 13);
  w.acks.settle(13, AckStatus::done);
  CHECK(w.acks.commit_offset() == 15);  // all settled: one past the last emitted
  CHECK(w.acks.window() == 0);
  CHECK(w.acks.unsettled() == 0);

  w.acks.add(offsets(15, 17));  // the next batch of the same assignment
  CHECK(w.acks.commit_offset() == 15);
  CHECK(w.woken() == 0);  // plain settlements wake no one
}

TEST_CASE(
    "partition acks: offsets with gaps (compaction, transaction markers), many at once, twice, unknown") {
  Window w;
  w.acks.add({5, 6, 9, 10, 20});
  const std::vector<std::uint64_t> later{20, 9};
  w.acks.settle_many(later, AckStatus::done);
  CHECK(w.acks.commit_offset() == 5);
  w.acks.settle(6, AckStatus::done);
  w.acks.settle(6, AckStatus::failed);  // twice: the first settlement counts
  w.acks.settle(7, AckStatus::failed);  // never emitted (a gap): ignored
  w.acks.settle(99, AckStatus::done);   // beyond the window: ignored
  CHECK(w.acks.unsettled() == 2);
  CHECK(w.acks.failed_offset() == -1);
  w.acks.settle(5, AckStatus::done);
  CHECK(w.acks.commit_offset() == 10);
  w.acks.settle(10, AckStatus::done);
  CHECK(w.acks.commit_offset() == 21);
}

TEST_CASE("partition acks: a dead letter is settled; a failure holds the commit at it and wakes the source") {
  Window w;
  w.acks.add(offsets(0, 6));
  w.acks.settle(1, AckStatus::dead_lettered);  // in the dead-letter destination: committable
  w.acks.settle(0, AckStatus::done);
  CHECK(w.acks.commit_offset() == 2);
  CHECK(w.woken() == 0);

  w.acks.settle(3, AckStatus::failed);
  CHECK(w.acks.failed_offset() == 3);
  CHECK(w.woken() == 1);  // the source learns of the failure (on_poison) at once
  w.acks.settle(2, AckStatus::done);
  w.acks.settle_many(std::vector<std::uint64_t>{4, 5}, AckStatus::done);
  CHECK(w.acks.unsettled() == 0);
  CHECK(w.acks.commit_offset() == 3);  // never past the failed record, whatever settles after it
  CHECK(w.acks.window() == 3);

  w.acks.add(offsets(6, 8));
  w.acks.settle(6, AckStatus::failed);  // a later failure: the first one still holds the commit
  CHECK(w.acks.failed_offset() == 3);
  CHECK(w.acks.commit_offset() == 3);
}

TEST_CASE("partition acks: exactly once, the next offset counts the offsets committed with the rows") {
  Window w;
  w.acks.add(offsets(0, 6));
  w.acks.settle(0, AckStatus::done);
  w.acks.settle(2, AckStatus::failed);
  const std::vector<std::uint64_t> none, with_rows{3, 1}, over_failed{1, 2, 3, 4};  // unsorted on purpose
  CHECK(w.acks.next_offset_with(none) == 1);
  CHECK(w.acks.next_offset_with(with_rows) == 2);    // 2 failed: not covered
  CHECK(w.acks.next_offset_with(over_failed) == 5);  // 2 written with these rows after all
  w.acks.settle_many(std::vector<std::uint64_t>{1, 3, 4, 5}, AckStatus::done);
  CHECK(w.acks.next_offset_with(std::vector<std::uint64_t>{2}) == 6);
}

TEST_CASE("partition acks: the in-flight cap pauses at max and resumes a quarter under it") {
  InFlightCap cap(8);
  CHECK(cap.resume_at() == 6);
  Window w;
  w.acks.add(offsets(0, 5));
  CHECK(cap.room(w.acks.window()) == 3);
  CHECK(cap.fetches(w.acks.window() + 2, /*paused=*/false));  // 5 in the window, 2 buffered
  w.acks.add(offsets(5, 8));
  CHECK(cap.room(w.acks.window()) == 0);
  CHECK_FALSE(cap.fetches(w.acks.window(), false));  // at the cap: pause

  w.acks.wake_at(cap.resume_at());  // as the paused source asks
  w.acks.settle_many(std::vector<std::uint64_t>{2, 3, 4, 5, 6, 7}, AckStatus::done);
  CHECK(w.acks.window() == 8);  // settled behind an unsettled offset still counts
  CHECK_FALSE(cap.fetches(w.acks.window(), /*paused=*/true));
  CHECK(w.woken() == 0);
  w.acks.settle(0, AckStatus::done);
  CHECK(w.acks.window() == 7);
  CHECK_FALSE(cap.fetches(7, true));  // under the cap, not yet under resume_at: still paused
  CHECK(cap.fetches(7, false));       // (a partition not paused would go on)
  CHECK(w.woken() == 0);
  w.acks.settle(1, AckStatus::done);
  CHECK(w.acks.window() == 0);
  CHECK(cap.fetches(0, true));
  CHECK(w.woken() == 1);  // woken once, to resume
  CHECK(cap.room(w.acks.window()) == 8);

  // Everything settled but a failure at the front: the window stays full, and the source is
  // woken to see the poisoned partition rather than wait for a shrink that never comes.
  Window f;
  f.acks.add(offsets(0, 8));
  f.acks.wake_at(cap.resume_at());
  f.acks.settle(0, AckStatus::failed);
  CHECK(f.woken() == 1);
  f.acks.settle_many(std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7}, AckStatus::done);
  CHECK(f.acks.window() == 8);
  CHECK(f.woken() == 2);

  // A window already small enough wakes at once; no cap (stop_at_end) never pauses.
  Window s;
  s.acks.wake_at(cap.resume_at());
  CHECK(s.woken() == 1);
  InFlightCap none(kNoInFlightCap);
  CHECK(none.fetches(1u << 30, false));
  CHECK(none.room(1u << 30) > (1u << 30));
  InFlightCap one(1);  // the least the option allows: resumes only when nothing is in flight
  CHECK(one.resume_at() == 0);
  CHECK_FALSE(one.fetches(1, false));
  CHECK(one.fetches(0, true));
}

TEST_CASE("partition acks: after a revoke, settlements change nothing; the next assignment starts afresh") {
  Window w;
  w.acks.add(offsets(40, 44));
  w.acks.settle(40, AckStatus::done);
  w.acks.wake_at(0);
  w.acks.detach();  // revoked: what settles now belongs to the partition's next owner
  w.acks.settle_many(std::vector<std::uint64_t>{41, 42, 43}, AckStatus::done);
  w.acks.settle(41, AckStatus::failed);
  CHECK(w.acks.commit_offset() == 41);
  CHECK(w.acks.unsettled() == 3);
  CHECK(w.acks.failed_offset() == -1);
  CHECK(w.woken() == 0);  // nor does it wake the source

  // Assigned again (a reset): a fresh window, which knows nothing until the source emits.
  PartitionAcks again(w.waker);
  CHECK(again.commit_offset() == -1);
  again.add(offsets(41, 43));
  again.settle(41, AckStatus::done);
  CHECK(again.commit_offset() == 42);
}
