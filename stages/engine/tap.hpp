// Taps: a sample of the live events leaving a stage (`etld tap`, GET /tap), for an operator to
// see what a transform produces. A TapPoint sits where a stage's output batches leave it (a
// source's or transform's batches as they go to the dispatcher; for a sink, the batches it
// receives). With no tap open it costs one relaxed atomic load per batch. An open Tap copies,
// at most `rate` events a second and `limit` in all, each event's key, value and headers cut to
// `max_bytes` (flagged when cut), its topic/partition/offset, timestamp and rejection, into a
// buffer of its own bounded by kTapBufferEvents and kTapBufferBytes: what the reader has not
// taken when the buffer is full is dropped and counted, never waited for. A tap only reads an
// event (its parsed record when the stage parsed it, else its payload): it never moves, changes
// or settles it nor its ack. At most kMaxTaps are open in a pipeline.
// Threading: every class here is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "stages/engine/event.hpp"

namespace etld {

inline constexpr std::size_t kMaxTaps = 4;
inline constexpr std::size_t kTapBufferEvents = 256;
inline constexpr std::size_t kTapBufferBytes = 4 * 1024 * 1024;
inline constexpr std::size_t kTapMaxHeaders = 32;

struct TapLimits {
  std::size_t limit = 100;       // events in all
  double rate = 10;              // events a second at most
  std::size_t max_bytes = 4096;  // of the key, of the value, and of all headers together
};

// A field of a sampled event: its bytes cut to max_bytes (at a UTF-8 character boundary when it
// is text); `base64` when the bytes are not UTF-8 and `text` is their base64.
struct TapText {
  std::string text;
  bool truncated = false;
  bool base64 = false;
};

struct TapEvent {
  std::string stage;
  int instance = 0;
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::int64_t timestamp_ms = 0;
  std::optional<TapText> key;    // none: no key
  std::optional<TapText> value;  // the parsed record as JSON, or the payload; none: a tombstone
  std::vector<std::pair<TapText, TapText>> headers;
  std::size_t headers_omitted = 0;  // past kTapMaxHeaders or max_bytes
  std::string rejection;
  std::size_t bytes() const;  // what it holds, for the buffer's bound
};

// The copy a tap keeps of `event`, cut to max_bytes. Reads the event only.
TapEvent sample_event(const Event& event, const std::string& stage, int instance, std::size_t max_bytes);

class TapPoint;

// One reader's sample of one stage. Closes (detaches) when destroyed.
class Tap {
 public:
  Tap(std::shared_ptr<TapPoint> point, std::shared_ptr<std::atomic<std::size_t>> open_taps, std::string stage,
      TapLimits limits);
  ~Tap();
  Tap(const Tap&) = delete;
  Tap& operator=(const Tap&) = delete;

  // From the stage's strand: samples what the limits allow of `batch`.
  void offer(int instance, const Batch& batch);

  struct Taken {
    std::vector<TapEvent> events;
    std::uint64_t dropped = 0;  // since the previous take(): the buffer was full
  };
  // The reader: everything buffered now.
  Taken take();
  // Every event it will sample has been sampled (the limit is reached).
  bool complete() const;
  std::uint64_t sampled() const;  // events copied (taken, buffered or dropped)
  std::uint64_t dropped() const;  // in all
  std::uint64_t seen() const;     // events that left the stage while it was open
  const std::string& stage() const { return stage_; }
  const TapLimits& limits() const { return limits_; }

 private:
  const std::shared_ptr<TapPoint> point_;
  const std::shared_ptr<std::atomic<std::size_t>> open_taps_;
  const std::string stage_;
  const TapLimits limits_;
  mutable std::mutex mu_;
  std::vector<TapEvent> buffer_;
  std::size_t buffer_bytes_ = 0;
  double tokens_;
  std::chrono::steady_clock::time_point refilled_;
  std::uint64_t sampled_ = 0, dropped_total_ = 0, dropped_since_take_ = 0, seen_ = 0;
};

// Where one stage's output batches pass; one per stage, shared by its instances.
class TapPoint {
 public:
  void offer(int instance, const Batch& batch) {
    if (active_.load(std::memory_order_relaxed) == 0) return;
    offer_to_taps(instance, batch);
  }
  bool active() const { return active_.load(std::memory_order_relaxed) != 0; }

 private:
  friend class Tap;
  void attach(Tap* tap);
  void detach(Tap* tap);
  void offer_to_taps(int instance, const Batch& batch);

  std::atomic<std::size_t> active_{0};
  std::mutex mu_;  // guards taps_
  std::vector<Tap*> taps_;
};

// Why a tap was not opened: the stage is not in the pipeline, or kMaxTaps are open.
struct TapRefused : std::runtime_error {
  enum class Why { unknown_stage, too_many };
  TapRefused(Why w, const std::string& what) : std::runtime_error(what), why(w) {}
  Why why;
};

// The tap points of one pipeline, by stage name.
class TapHub {
 public:
  explicit TapHub(const std::vector<std::string>& stages);
  std::shared_ptr<TapPoint> point(const std::string& stage) const;  // null for an unknown stage
  // Throws TapRefused.
  std::shared_ptr<Tap> open(const std::string& stage, const TapLimits& limits);
  std::size_t open_taps() const { return open_taps_->load(); }

 private:
  std::vector<std::string> names_;  // in the file's order
  std::map<std::string, std::shared_ptr<TapPoint>> points_;
  std::shared_ptr<std::atomic<std::size_t>> open_taps_ = std::make_shared<std::atomic<std::size_t>>(0);
};

}  // namespace etld
