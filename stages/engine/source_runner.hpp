// A source instance: emits under its consumers' demand, pauses while the graph is reconfigured,
// stops when the pipeline drains and closes (commits) once every event is settled. It is the
// SourceContext its Source is handed.
#pragma once

#include <memory>

#include "stages/engine/runner_base.hpp"

namespace etld {

class SourceRunner final : public RunnerOf<SourceContext> {
 public:
  using RunnerOf::RunnerOf;

  // Posted onto the strand: the source stops, then its end of stream follows its last events.
  void stop();
  // Posted onto the strand: every event is settled; the source commits and lets go.
  void close();
  // A paused source sees no demand, so it emits nothing until resumed.
  void set_paused(bool paused);

 private:
  // --- SourceContext ---
  void emit(Batch&& events) override;
  std::size_t demand() const override;
  // A source ran out of input. Under `restart: permanent` (OTP's meaning: a child that should
  // never end), that counts as a failure and restarts it; otherwise its end of stream follows.
  void finish() override;
  std::shared_ptr<OffsetStore> offset_store() const override { return offset_store_; }

  bool create_stage() override;
  void teardown() override { source_.reset(); }
  void retire_stage() override;
  void demand_grew() override;

  std::unique_ptr<Source> source_;
  bool stopping_ = false, paused_ = false, source_ended_ = false;
};

}  // namespace etld
