#include "stages/engine/dispatcher.hpp"

#include <algorithm>
#include <numeric>

namespace etld {

std::uint64_t hash_bytes(std::string_view bytes) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

namespace {

// Events waiting for demand, kept as the batches they came in: a batch that demand covers whole
// leaves as it is, so an event is moved only when demand splits its batch. (A queue of single
// events moved every event twice per hop: in and out.)
class BatchQueue {
 public:
  void push(Batch&& batch) {
    if (batch.empty()) return;
    size_ += batch.size();
    batches_.push_back(std::move(batch));
  }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // At most n (> 0) events from the front, never more than the rest of the front batch.
  Batch take(std::size_t n) {
    Batch& front = batches_.front();
    const std::size_t left = front.size() - head_;
    Batch out;
    if (head_ == 0 && n >= left) {
      out = std::move(front);
    } else {
      const auto first = front.begin() + static_cast<std::ptrdiff_t>(head_);
      const auto k = static_cast<std::ptrdiff_t>(std::min(n, left));
      out.assign(std::make_move_iterator(first), std::make_move_iterator(first + k));
      head_ += static_cast<std::size_t>(k);
    }
    if (out.size() == left) {
      batches_.pop_front();
      head_ = 0;
    }
    size_ -= out.size();
    return out;
  }

 private:
  std::deque<Batch> batches_;
  std::size_t head_ = 0;  // events of the front batch already taken
  std::size_t size_ = 0;
};

// Sends each batch to the subscribers with the most outstanding demand, in slices.
class DemandDispatcher : public Dispatcher {
 public:
  DemandDispatcher(std::vector<SubscriberId> subs, SendFn send) : send_(std::move(send)) {
    for (auto id : subs) subs_.push_back({id, 0});
  }
  void ask(SubscriberId sub, std::size_t n) override {
    find(sub).demand += n;
    flush();
  }
  std::size_t demand() const override {
    std::size_t total = 0;
    for (const auto& s : subs_) total += s.demand;
    return total > buffer_.size() ? total - buffer_.size() : 0;
  }
  void dispatch(Batch&& events) override {
    if (buffer_.empty()) {
      std::size_t i = 0;
      while (i < events.size()) {
        auto* best = most_demand();
        if (!best || best->demand == 0) break;
        auto n = std::min(best->demand, events.size() - i);
        best->demand -= n;
        if (i == 0 && n == events.size()) {
          send_(best->id, std::move(events));
          return;
        }
        Batch slice(std::make_move_iterator(events.begin() + static_cast<std::ptrdiff_t>(i)),
                    std::make_move_iterator(events.begin() + static_cast<std::ptrdiff_t>(i + n)));
        send_(best->id, std::move(slice));
        i += n;
      }
      if (i > 0) events.erase(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(i));
      buffer_.push(std::move(events));
      return;
    }
    buffer_.push(std::move(events));
    flush();
  }
  void flush() override {
    while (!buffer_.empty()) {
      auto* best = most_demand();
      if (!best || best->demand == 0) return;
      Batch batch = buffer_.take(best->demand);
      best->demand -= batch.size();
      send_(best->id, std::move(batch));
    }
  }
  std::size_t buffered() const override { return buffer_.size(); }

 private:
  struct Sub {
    SubscriberId id;
    std::size_t demand;
  };
  Sub& find(SubscriberId id) {
    for (auto& s : subs_)
      if (s.id.group == id.group && s.id.index == id.index) return s;
    throw std::logic_error("dispatcher: unknown subscriber");
  }
  Sub* most_demand() {
    Sub* best = nullptr;
    for (auto& s : subs_)
      if (!best || s.demand > best->demand) best = &s;
    return best;
  }
  std::vector<Sub> subs_;
  BatchQueue buffer_;
  SendFn send_;
};

// One queue per partition; an event goes to the partition its key hashes to.
class PartitionDispatcher : public Dispatcher {
 public:
  PartitionDispatcher(int group, int partitions, KeyHashFn key, SendFn send)
      : group_(group),
        parts_(static_cast<std::size_t>(partitions)),
        key_(std::move(key)),
        send_(std::move(send)) {}
  void ask(SubscriberId sub, std::size_t n) override {
    parts_.at(static_cast<std::size_t>(sub.index)).demand += n;
    flush();
  }
  std::size_t demand() const override {
    std::size_t total = 0;
    for (const auto& p : parts_) total += p.demand;
    auto held = buffered();
    return total > held ? total - held : 0;
  }
  void dispatch(Batch&& events) override {
    std::vector<Batch> split(parts_.size());
    for (auto& e : events) split[static_cast<std::size_t>(key_(e) % parts_.size())].push_back(std::move(e));
    for (std::size_t p = 0; p < parts_.size(); ++p) {
      buffered_ += split[p].size();
      parts_[p].queue.push(std::move(split[p]));
    }
    flush();
  }
  void flush() override {
    for (std::size_t p = 0; p < parts_.size(); ++p) {
      auto& part = parts_[p];
      while (part.demand > 0 && !part.queue.empty()) {
        Batch batch = part.queue.take(part.demand);
        part.demand -= batch.size();
        buffered_ -= batch.size();
        send_(SubscriberId{group_, static_cast<int>(p)}, std::move(batch));
      }
    }
  }
  std::size_t buffered() const override { return buffered_; }

 private:
  struct Partition {
    std::size_t demand = 0;
    BatchQueue queue;
  };
  int group_;
  std::vector<Partition> parts_;
  std::size_t buffered_ = 0;
  KeyHashFn key_;
  SendFn send_;
};

// Every event to every child; the copies share the original's ack (settled when all are).
class BroadcastDispatcher : public Dispatcher {
 public:
  explicit BroadcastDispatcher(std::vector<std::unique_ptr<Dispatcher>> children)
      : children_(std::move(children)) {}
  void ask(SubscriberId sub, std::size_t n) override {
    children_.at(static_cast<std::size_t>(sub.group))->ask(sub, n);
  }
  std::size_t demand() const override {
    std::size_t m = SIZE_MAX;
    for (const auto& c : children_) m = std::min(m, c->demand());
    return children_.empty() ? 0 : m;
  }
  void dispatch(Batch&& events) override {
    const auto k = children_.size();
    // One downstream stage, the common case: the batch goes on as it is, without moving each
    // event into a new batch (that move was most of the cost of a hop).
    if (k == 1) return children_.front()->dispatch(std::move(events));
    std::vector<Batch> copies(k);
    for (auto& c : copies) c.reserve(events.size());
    for (auto& e : events) {
      auto acks = e.ack.split(k);
      for (std::size_t i = 0; i + 1 < k; ++i) {
        copies[i].push_back(e.clone());
        copies[i].back().ack = std::move(acks[i]);
      }
      e.ack = std::move(acks[k - 1]);
      copies[k - 1].push_back(std::move(e));
    }
    for (std::size_t i = 0; i < k; ++i) children_[i]->dispatch(std::move(copies[i]));
  }
  void flush() override {
    for (auto& c : children_) c->flush();
  }
  std::size_t buffered() const override {
    std::size_t m = 0;
    for (const auto& c : children_) m = std::max(m, c->buffered());
    return m;
  }

 private:
  std::vector<std::unique_ptr<Dispatcher>> children_;
};

}  // namespace

std::unique_ptr<Dispatcher> make_demand_dispatcher(int group, int subscribers, SendFn send) {
  std::vector<SubscriberId> ids;
  for (int i = 0; i < subscribers; ++i) ids.push_back({group, i});
  return std::make_unique<DemandDispatcher>(std::move(ids), std::move(send));
}
std::unique_ptr<Dispatcher> make_demand_dispatcher(std::vector<SubscriberId> subscribers, SendFn send) {
  return std::make_unique<DemandDispatcher>(std::move(subscribers), std::move(send));
}
std::unique_ptr<Dispatcher> make_partition_dispatcher(int group, int partitions, KeyHashFn key, SendFn send) {
  return std::make_unique<PartitionDispatcher>(group, partitions, std::move(key), std::move(send));
}
std::unique_ptr<Dispatcher> make_broadcast_dispatcher(std::vector<std::unique_ptr<Dispatcher>> children) {
  if (children.size() == 1) return std::move(children.front());
  return std::make_unique<BroadcastDispatcher>(std::move(children));
}

}  // namespace etld
