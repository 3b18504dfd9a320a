// How a producer spreads its events over its subscribers, after GenStage's dispatchers:
//   DemandDispatcher    - each batch to the subscribers with the most outstanding demand
//   PartitionDispatcher - each event to the subscriber its key hashes to (per-key order)
//   BroadcastDispatcher - every event to every child dispatcher (one per downstream stage),
//                         paced by the slowest; the copies share the original's ack
// A dispatcher never sends a subscriber more than it asked for; what it cannot send yet it
// buffers, and the producer's demand() shrinks by what is buffered, so the buffer stays bounded
// by the demand the subscribers granted. Not thread-safe: owned by the producer's strand.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "stages/engine/event.hpp"

namespace etld {

struct SubscriberId {
  int group = 0;  // which downstream stage
  int index = 0;  // which instance of it
};

using SendFn = std::function<void(SubscriberId, Batch&&)>;
// Maps an event to a partition key hash (for PartitionDispatcher).
using KeyHashFn = std::function<std::uint64_t(Event&)>;

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual void ask(SubscriberId sub, std::size_t n) = 0;
  // Events the producer may hand to dispatch() without growing the buffer past what the
  // subscribers granted.
  virtual std::size_t demand() const = 0;
  virtual void dispatch(Batch&& events) = 0;
  virtual void flush() = 0;  // sends what is buffered as demand allows
  virtual std::size_t buffered() const = 0;
};

std::unique_ptr<Dispatcher> make_demand_dispatcher(int group, int subscribers, SendFn send);
std::unique_ptr<Dispatcher> make_partition_dispatcher(int group, int partitions, KeyHashFn key, SendFn send);
std::unique_ptr<Dispatcher> make_broadcast_dispatcher(std::vector<std::unique_ptr<Dispatcher>> children);
// Load-balances across several downstream stages (dispatch: demand with fan-out).
std::unique_ptr<Dispatcher> make_demand_dispatcher(std::vector<SubscriberId> subscribers, SendFn send);

std::uint64_t hash_bytes(std::string_view bytes);  // FNV-1a: stable across runs and machines

}  // namespace etld
