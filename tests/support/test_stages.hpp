// Stage types for engine tests, registered under test_* names:
//   test_collect (sink)    - records what it receives into a named Bucket; optional per-batch
//                            delay (a slow consumer) and a status to settle with
//   test_throw (transform) - passes events through but throws while processing a record
//                            >= `at`, for the first `times` times (restart tests)
//   test_block (transform) - passes events through but, on a record >= `at`, blocks its strand
//                            (and its pool thread) until the named Gate opens: a wedged stage
// Buckets are process-wide and thread-safe; tests read them after (or while) a pipeline runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/schema/pipeline.hpp"
#include "stages/engine/pipeline.hpp"

namespace etld::test {

struct Received {
  std::string text;  // the record as JSON
  std::string key;
  int instance = 0;
};

struct Bucket {
  std::mutex mu;
  std::vector<Received> events;
  std::size_t held = 0, max_held = 0;  // received but not yet reported done
  std::size_t batches = 0;
  std::vector<std::size_t> batch_sizes;
  std::vector<std::size_t> sizes() {
    std::lock_guard lock(mu);
    return batch_sizes;
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return events.size();
  }
  std::vector<Received> snapshot() {
    std::lock_guard lock(mu);
    return events;
  }
};

// Holds test_block stages shut until open(); process-wide, by name.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool opened = false;
  std::atomic<bool> reached{false};  // a test_block stage is waiting at the gate
  void open() {
    std::lock_guard lock(mu);
    opened = true;
    cv.notify_all();
  }
};
std::shared_ptr<Gate> gate(const std::string& name);  // created shut on first use

std::shared_ptr<Bucket> bucket(const std::string& name);  // creates it empty on first use
void reset_bucket(const std::string& name);
int throws_seen(const std::string& stage);

// Loads a pipeline from YAML text; fails the test (throws) with the diagnostics if invalid.
std::shared_ptr<const PipelineConfig> config_from(const std::string& yaml);

}  // namespace etld::test
