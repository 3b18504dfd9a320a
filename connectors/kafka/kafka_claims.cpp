// exactly_once: before fetching, the partitions are claimed in the sink's offset store (which
// fences their previous owner) and each starts at the offset stored there, not Kafka's. The
// claim runs on the store's thread; librdkafka's group state machine waits for the assign call.
#include "connectors/kafka/kafka_source_internal.hpp"

#include <boost/asio/post.hpp>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace etld::kafka {

void KafkaSource::claim_then_assign(PartitionList list, bool cooperative) {
  std::vector<PartitionClaimRequest> requests;
  for (int i = 0; i < list->cnt; ++i) {
    auto it = parts_.find(Key(list->elems[i].topic, list->elems[i].partition));
    if (it != parts_.end())
      requests.push_back({it->second->topic, it->second->partition, it->second->acks, s_.group});
  }
  claim_pending_ = std::move(list);
  claim_cooperative_ = cooperative;
  // The store answers on its own thread, maybe after we are gone: the answer is posted to the
  // strand, where it does nothing once we are.
  auto claimed = scope_->bind([this](const std::vector<PartitionClaim>& claims, const std::string& error) {
    on_claimed(claims, error);
  });
  store_->claim(std::move(requests), [claimed, ex = ctx_->executor()](std::vector<PartitionClaim> claims,
                                                                      std::string error) {
    auto shared = std::make_shared<std::vector<PartitionClaim>>(std::move(claims));
    boost::asio::post(ex, [claimed, shared, error = std::move(error)]() mutable { claimed(*shared, error); });
  });
}

void KafkaSource::on_claimed(const std::vector<PartitionClaim>& claims, const std::string& error) {
  if (!claim_pending_ || closed_) return;
  PartitionList list = std::move(claim_pending_);
  if (!error.empty()) {
    if (ctx_log_ok_ && !closing_) ctx_->fail(std::make_exception_ptr(std::runtime_error("kafka: " + error)));
    assign(list.get(), claim_cooperative_);  // nothing fetches: close() gives them back
    return;
  }
  std::string resumed;
  for (const auto& c : claims) {
    for (int i = 0; i < list->cnt; ++i)
      if (list->elems[i].partition == c.partition && c.topic == list->elems[i].topic)
        if (!s_.start_at)  // a bounded read starts at start_at (bound_assignment set it)
          list->elems[i].offset = c.next_offset >= 0 ? c.next_offset : RD_KAFKA_OFFSET_INVALID;
    resumed += fmt::format("{}{}[{}]@{} (epoch {})", resumed.empty() ? "" : " ", c.topic, c.partition,
                           c.next_offset >= 0 ? std::to_string(c.next_offset) : "committed", c.epoch);
  }
  if (ctx_log_ok_ && !closing_) ctx_->log().info("kafka: claimed in {}: {}", store_->description(), resumed);
  assign(list.get(), claim_cooperative_);
  publish_stats();
  schedule_pump();
}

}  // namespace etld::kafka
