// Drives one window stage instance directly, with clocks the test sets: feeds batches of JSON
// records from chosen source partitions, keeps what was rejected (with the reason) apart from
// the results, and reads the instance's metrics back.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "stages/engine/metrics.hpp"
#include "stages/flow/window_stage.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/test_context.hpp"

namespace etld::test {

struct WindowHarness {
  explicit WindowHarness(const std::string& yaml, bool system_clocks = false)
      : config(stage_config("window", yaml, "win")), ctx("win") {
    auto spec = std::make_shared<const flow::WindowSpec>(flow::parse_window_spec(config.options));
    flow::WindowClocks clocks =
        system_clocks ? flow::WindowClocks::system()
                      : flow::WindowClocks{[this] { return wall_ms; }, [this] { return steady; }};
    stage = std::make_unique<flow::WindowStage>(spec, clocks);
    stage->start(ctx);
  }

  // One input batch: `values` from partition `partition` of topic "t" (-1: from no partition), with
  // the next tokens and offsets. Returns the results; rejections are kept in `rejections`.
  std::vector<Event> feed(const std::vector<std::string>& values, int partition = 0) {
    Batch in = make_events(values, acks, next_token);
    for (auto& e : in) {
      if (partition >= 0) e.topic = "t";
      e.partition = partition;
      e.offset = next_offset[partition + 1]++;
    }
    next_token += values.size();
    Batch out;
    stage->process(in, out);
    return keep(out);
  }

  std::vector<Event> clock(bool trigger) {
    Batch out;
    stage->on_clock(out, trigger);
    return keep(out);
  }

  std::vector<Event> finish() {
    Batch out;
    stage->finish(out);
    return keep(out);
  }

  std::vector<Event> keep(Batch& out) {
    std::vector<Event> kept;
    for (auto& e : out) {
      if (e.rejected()) {
        rejections.push_back(e.rejection);
        e.ack.settle(AckStatus::dead_lettered);
      } else {
        kept.push_back(std::move(e));
      }
    }
    return kept;
  }

  // The value of `name` in this instance's metrics exposition ("" when absent); `labels` narrows
  // to the line that contains them.
  std::string metric(const std::string& name, const std::string& labels = "") const {
    metrics::Exposition ex;
    ctx.registry.collect(ex);
    std::string text = ex.render();
    std::size_t at = 0;
    while ((at = text.find(name + "{", at)) != std::string::npos) {
      auto end = text.find('\n', at);
      std::string line = text.substr(at, end - at);
      at = end;
      if (line.find(labels) == std::string::npos) continue;
      return line.substr(line.rfind(' ') + 1);
    }
    return "";
  }

  StageConfig config;
  TestStageContext ctx;
  std::unique_ptr<flow::WindowStage> stage;
  std::shared_ptr<RecordingAcks> acks = std::make_shared<RecordingAcks>();
  std::uint64_t next_token = 0;
  std::int64_t next_offset[64] = {};
  std::vector<std::string> rejections;
  std::int64_t wall_ms = 0;
  flow::Clock::time_point steady{};
};

inline std::vector<std::string> texts(std::vector<Event>& events) {
  std::vector<std::string> out;
  for (auto& e : events) out.push_back(e.record().to_json());
  return out;
}

inline std::vector<std::string> texts(std::vector<Event>&& events) { return texts(events); }

inline void settle(std::vector<Event>& events, AckStatus status = AckStatus::done) {
  for (auto& e : events) e.ack.settle(status);
}

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace etld::test
