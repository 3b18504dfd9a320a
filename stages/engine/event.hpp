// Event: what flows between stages. Batch: the unit moved between strands (one post per batch).
// Ack: the move-only promise that an event will be settled exactly once.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stages/engine/record_schema.hpp"
#include "stages/engine/value.hpp"

namespace etld {

// How an event ended. Only `failed` holds back a source's commit.
enum class AckStatus : std::uint8_t { done, dead_lettered, failed };

// Receives settlements for the events a source produced. Thread-safe: sinks settle from their
// own strands. `token` is whatever the source chose (an offset, a sequence number).
class AckTarget {
 public:
  virtual ~AckTarget() = default;
  virtual void settle(std::uint64_t token, AckStatus status) = 0;
  // Many tokens of this target at once: one lock instead of one per event.
  virtual void settle_many(std::span<const std::uint64_t> tokens, AckStatus status);
  // Targets that stand for other acks (a joined ack, AckBatch::join) call `visit` with the
  // (target, token) of every source ack they settle, recursively, and return true; a source's
  // own target returns false: the ack is itself what it covers. Lets a sink that commits source
  // positions with its rows (exactly once) see every position a partial record covers.
  using CoveredVisitor = std::function<void(AckTarget& target, std::uint64_t token)>;
  virtual bool visit_covered(const CoveredVisitor& visit) const;
  // The target of the parts of a split ack (Ack::split) returns how many of them are not settled
  // yet: each part covers the same source acks, which settle only once every part has. A sink
  // committing source positions commits all of them in one transaction or none. Others: 0.
  virtual std::size_t unsettled_parts() const { return 0; }
};

// Move-only: an event's ack can be settled once. An ack destroyed unsettled settles itself as
// `failed`, so a dropped event can hold back a commit but can never be silently lost.
class Ack {
 public:
  Ack() = default;
  Ack(std::shared_ptr<AckTarget> target, std::uint64_t token) : target_(std::move(target)), token_(token) {}
  Ack(Ack&& o) noexcept : target_(std::move(o.target_)), token_(o.token_) {}
  Ack& operator=(Ack&& o) noexcept;
  Ack(const Ack&) = delete;
  Ack& operator=(const Ack&) = delete;
  ~Ack();

  bool pending() const { return target_ != nullptr; }
  void settle(AckStatus status);
  // n acks that settle this one when all of them are settled (with the worst status among
  // them). Used by flat_map, broadcast and anything that turns one event into several.
  std::vector<Ack> split(std::size_t n);

  AckTarget* target() const { return target_.get(); }
  std::uint64_t token() const { return token_; }
  // Calls `visit` with the (target, token) of each source ack this one settles: itself for a
  // plain ack, every held ack for a joined one (AckTarget::visit_covered). Nothing when settled.
  void visit_covered(const AckTarget::CoveredVisitor& visit) const;
  // Hands the target over without settling: for AckBatch, which settles the token itself.
  std::shared_ptr<AckTarget> take_target() { return std::move(target_); }

 private:
  std::shared_ptr<AckTarget> target_;
  std::uint64_t token_ = 0;
};

// A name that many events share, such as the topic they came from: interned for the life of the
// process, so that an event carries a pointer instead of its own copy of the string. Making one
// from a string takes a lock: on a hot path, make it once and copy it. What is interned is never
// freed, which suits the few names of a pipeline (topics, file paths), not per-event data.
class SharedName {
 public:
  SharedName();
  SharedName(std::string_view s);  // NOLINT(google-explicit-constructor): reads like the string
  SharedName(const std::string& s) : SharedName(std::string_view(s)) {}  // NOLINT
  SharedName(const char* s) : SharedName(std::string_view(s)) {}         // NOLINT

  const std::string& str() const { return *s_; }
  operator const std::string&() const { return *s_; }  // NOLINT
  bool empty() const { return s_->empty(); }
  friend bool operator==(const SharedName& a, const SharedName& b) { return a.s_ == b.s_; }
  friend bool operator==(const SharedName& a, std::string_view b) { return *a.s_ == b; }
  friend bool operator==(const SharedName& a, const std::string& b) { return *a.s_ == b; }
  friend bool operator==(const SharedName& a, const char* b) { return *a.s_ == b; }
  friend std::ostream& operator<<(std::ostream& os, const SharedName& n) { return os << *n.s_; }

 private:
  const std::string* s_;
};

struct Header {
  std::string name;
  std::string value;
};

struct Event {
  // Raw payload as it arrived; `parsed` says whether `record` holds its decoded form.
  std::string value;
  std::string key;
  bool has_key = false;
  bool has_value = true;  // false: a Kafka tombstone
  std::vector<Header> headers;
  std::int64_t timestamp_ms = 0;
  SharedName topic;  // where it came from; partition < 0 when not from Kafka
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  Ack ack;
  // Why a transform could not process it ("stage 'parse': map: ..."). A rejected event travels
  // on untouched (stages pass it through) to its sink, which writes it to its dead-letter
  // destination or, lacking one, settles it dead_lettered.
  std::string rejection;
  bool rejected() const { return !rejection.empty(); }

  // The schemas of the decoded record and key, when the source had them (format: avro); null
  // otherwise. A stage that makes a new record (set_record) drops `schema`; one that changes the
  // record in place (map) must drop it too: it would describe fields that are no longer there.
  std::shared_ptr<const RecordSchema> schema, key_schema;

  // The decoded record, parsed from `value` on first use (JSON). Throws JsonError.
  Value& record();
  bool parsed() const { return parsed_; }
  // The decoded record when it has been parsed, else null; parses nothing (for readers that must
  // not change the event, such as a tap).
  const Value* parsed_record() const { return parsed_ ? &record_ : nullptr; }
  void set_record(Value v) {
    record_ = std::move(v);
    parsed_ = true;
    schema.reset();
  }
  // Drops the decoded record, so that sinks write `value`, the payload's own bytes, again: for a
  // stage that only read the record (filter), whose output must be its input unchanged.
  void forget_record() {
    record_ = Value();
    parsed_ = false;
  }
  // Copies everything but the ack (which cannot be copied).
  Event clone() const;

 private:
  Value record_;
  bool parsed_ = false;
};

using Batch = std::vector<Event>;

// Settles a run of acks with one call per target: sinks settle whole batches through it. A
// stateful transform (reduce) holds its inputs' acks in one and join()s them into the ack of the
// event it emits later. Held acks cost a token each (8 bytes), grouped per target: no allocation
// per ack. Destroyed with acks in it, it settles them `failed`, like an unsettled Ack.
class AckBatch {
 public:
  AckBatch() = default;
  AckBatch(AckBatch&& o) noexcept : groups_(std::move(o.groups_)), size_(std::exchange(o.size_, 0)) {}
  AckBatch& operator=(AckBatch&& o) noexcept;
  AckBatch(const AckBatch&) = delete;
  AckBatch& operator=(const AckBatch&) = delete;
  ~AckBatch() { settle(AckStatus::failed); }

  void add(Ack& ack);             // takes the ack over (it is no longer pending); a settled ack is skipped
  void settle(AckStatus status);  // settles everything added so far and clears
  // One ack that, once settled, settles every ack added so far with its status, each exactly
  // once; the batch is left empty. Split it (Ack::split) when several outputs carry the same
  // inputs: they settle when the last part does, with the worst status. Empty: a free-standing
  // ack (nothing to settle upstream).
  Ack join();
  std::size_t size() const { return size_; }  // acks held
  // Calls `visit` with each held ack's source acks, as Ack::visit_covered does.
  void visit_covered(const AckTarget::CoveredVisitor& visit) const;
  bool empty() const { return size_ == 0; }

 private:
  std::vector<std::pair<std::shared_ptr<AckTarget>, std::vector<std::uint64_t>>> groups_;
  std::size_t size_ = 0;
};
void settle_all(Batch& batch, AckStatus status);

// The ack target of sources that number their events 0, 1, 2, ...: knows how many of them are
// fully done (the longest settled prefix) and which failed. Thread-safe.
class SequenceAcks : public AckTarget {
 public:
  void settle(std::uint64_t token, AckStatus status) override;
  void settle_many(std::span<const std::uint64_t> tokens, AckStatus status) override;
  // Every token below this is settled and none of them failed.
  std::uint64_t done_prefix() const { return done_prefix_.load(std::memory_order_acquire); }
  std::uint64_t settled() const { return settled_.load(std::memory_order_acquire); }
  std::uint64_t failed() const { return failed_.load(std::memory_order_acquire); }
  std::uint64_t dead_lettered() const { return dead_lettered_.load(std::memory_order_acquire); }

 private:
  void settle_locked(std::uint64_t token, AckStatus status);
  std::mutex mu_;
  std::deque<bool> window_;  // settled flags for tokens >= done_prefix_
  std::atomic<std::uint64_t> done_prefix_{0}, settled_{0}, failed_{0}, dead_lettered_{0};
  bool blocked_ = false;  // a failed token stops the prefix for good
};

}  // namespace etld
