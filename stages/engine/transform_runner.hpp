// A transform instance: processes each batch as it arrives and dispatches the output; rejected
// events pass it untouched on their way to a dead-letter destination. A transform holding events
// (flat_map's outputs of one input) hands on what its consumers accept before it takes more
// input or finishes. It is the StageContext its Transform is handed.
#pragma once

#include <memory>

#include "stages/engine/runner_base.hpp"

namespace etld {

class TransformRunner final : public RunnerOf<StageContext> {
 public:
  using RunnerOf::RunnerOf;

 private:
  bool create_stage() override;
  void teardown() override;
  // Emits what the transform holds back.
  void retire_stage() override;
  // The batch leaves the inbox only once it is handed on (dispatched or buffered), so that a
  // quiet() pipeline has nothing in flight.
  void deliver(std::size_t input, Batch&& batch) override;
  void end_of_input() override;
  void demand_grew() override { pump(); }
  void wake() override { pump(); }
  std::size_t held_by_stage() const override { return transform_ ? transform_->held() : 0; }
  void restarted() override;  // credit withheld while the old one held events

  // Rejected events pass through transforms untouched, on their way to a dead-letter destination.
  static void pass_rejected(Batch& in, Batch& out);
  void dispatch_output(Batch&& out);
  // Hands on what the consumers accept now of what the transform holds; only once it holds none
  // does it take more input and, after end of input, finish.
  void pump();
  void release_held();
  void grant_upstream_if_room();
  void end_transform();

  std::unique_ptr<Transform> transform_;
  bool end_deferred_ = false;  // the end of input waits for what the transform holds to be handed on
};

}  // namespace etld
