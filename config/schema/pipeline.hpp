// The validated pipeline definition: what `etld run` builds and `etld graph` draws. Loading it
// from a file is config/loader.hpp's.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"

namespace etld {

class StageFactory;
struct Event;

enum class RestartPolicy { permanent, transient, temporary };
enum class DispatchMode { broadcast, demand };
// What a sink does with a record it cannot write (bad data, constraint violation):
//   dead_letter     - write it to the dead-letter destination and go on (default)
//   pause_partition - settle it failed: its Kafka partition stops at that offset, others go on
//   stop            - settle it failed and stop the pipeline, loudly
enum class PoisonPolicy { dead_letter, pause_partition, stop };

struct StageConfig {
  std::string name;
  std::string type;
  std::vector<std::string> inputs;
  int concurrency = 1;
  std::string partition_by;       // field path; "" = demand dispatch across instances
  std::size_t max_demand = 1000;  // per subscription (GenStage default)
  std::size_t min_demand = 500;   // default max_demand / 2
  std::size_t buffer_size = 0;    // producer-side bound; 0 = max_demand of its widest consumer
  RestartPolicy restart = RestartPolicy::transient;
  int max_restarts = 3;  // within restart_window, then give up
  std::chrono::milliseconds restart_window{60'000};
  std::chrono::milliseconds restart_backoff{100};   // doubles per restart
  DispatchMode dispatch = DispatchMode::broadcast;  // across downstream stages
  Options options;                                  // the type-specific options
  YAML::Mark mark = YAML::Mark::null_mark();        // of the stage's key
  YAML::Node node;                                  // the stage's map, for diagnostics
  // What the stage type's `configure` made of it when the file was loaded: the one factory a
  // start or a reload of this configuration uses (null only in configurations built by hand).
  std::shared_ptr<StageFactory> factory;
  // partition_by compiled by the loader: the hash of an event's key, which picks the instance
  // it goes to. Never throws. Empty when partition_by is "".
  std::function<std::uint64_t(Event&)> partition_hash;
};

struct PipelineConfig {
  std::string file;
  std::string name = "etld";
  int threads = 0;  // 0 = hardware concurrency
  std::string log_level = "info";
  std::string log_format = "text";  // text | json
  std::chrono::milliseconds shutdown_timeout{30'000};
  PoisonPolicy on_poison = PoisonPolicy::dead_letter;  // top-level `on_poison:`
  std::string admin_address;  // `admin: {address: HOST:PORT}`; "" = no admin endpoint
  YAML::Mark admin_mark = YAML::Mark::null_mark();
  std::string admin_token_file;  // `admin.token_file`; "" = no mutations through it
  std::vector<std::string>
      admin_allowed_hosts;          // `admin.allowed_hosts`: Host names besides IPs and localhost
  std::vector<StageConfig> stages;  // in topological order (inputs first)
  std::string text;                 // the file as read (for hashing on reload)

  const StageConfig* find(const std::string& name) const;
};

}  // namespace etld
