// Stage types by name. A stage type declares its options once and configures a factory that
// parses them once and then makes cheap instances (one per `concurrency`).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/schema/options.hpp"
#include "stages/engine/ack_holding.hpp"
#include "stages/engine/output_columns.hpp"
#include "stages/engine/stage.hpp"

namespace etld {

struct StageConfig;
struct PipelineConfig;
class OffsetStore;

enum class Role { source, transform, sink };
const char* role_name(Role role);

// What the engine may assume of a stage type when it checks a delivery guarantee at validation
// (config/delivery_check.hpp), instead of knowing types by name.
struct StageTraits {
  // Transforms: each input becomes at most one output (or is settled), in input order, with its
  // origin (topic, partition, offset, ack) kept: map, filter.
  bool one_to_one_in_order = false;
  // Sources: can claim and resume their read positions from a sink's OffsetStore.
  bool positions_in_store = false;
};

// Made by a StageType's `configure` once per load of the pipeline file, without side effects:
// validation makes it, and a start or a reload uses the same one. Makes cheap instances.
class StageFactory {
 public:
  virtual ~StageFactory() = default;
  virtual std::unique_ptr<Source> make_source(int instance);
  virtual std::unique_ptr<Transform> make_transform(int instance);
  virtual std::unique_ptr<Sink> make_sink(int instance);
  // Sinks that commit their source's read positions with their own writes (exactly once): the
  // store, shared by the stage's instances. The pipeline binds it to the source upstream.
  virtual std::shared_ptr<OffsetStore> offset_store() const { return nullptr; }
  // For the held-acks check (stages/engine/ack_holding.hpp). A source that says nothing is taken as
  // endless; a transform that says nothing holds no acks.
  virtual SourceBound source_bound() const { return {}; }
  virtual AckHolding ack_holding() const { return {}; }
  // The secrets its settings hold (passwords, SASL settings). `configure` does not remember them
  // process-wide (validating a file must not change what the process masks): the pipeline does,
  // for the factories it runs (remember_secrets), before any instance can log.
  virtual std::vector<std::string> secrets() const { return {}; }
  // Transforms whose records have a fixed shape declare it (output_columns.hpp): a sink may
  // derive its table and its merge rules from the stage upstream. Empty: no fixed shape.
  virtual std::vector<OutputColumn> output_columns() const { return {}; }
  // Transforms: each output carries the joined acks of inputs from one source partition only,
  // with that partition's topic and partition and, as its offset, the largest input offset: a
  // sink committing offsets with its rows (exactly once) can tell which positions a row covers
  // (the window stage with `emit: updates`; config/delivery_check.cpp lets it sit between).
  virtual bool partials_per_partition() const { return false; }
};

// Remembers `factory`'s secrets (config/schema/secrets.hpp), so that no log line, library message
// or admin answer of the running pipeline shows them.
void remember_secrets(const StageFactory& factory);

struct StageType {
  std::string name;
  Role role = Role::transform;
  std::string summary;  // one line for `etld --help` and docs
  std::vector<OptionSpec> options;
  // Parses and checks the stage's options; throws ConfigError located at the culprit.
  std::function<std::unique_ptr<StageFactory>(const StageConfig&, const PipelineConfig&)> configure;
  // Optional, for `etld validate --against-db`: checks the stage against the live systems it
  // talks to (tables, columns, types); throws ConfigError located at the culprit option.
  std::function<void(const StageConfig&, const PipelineConfig&)> check_live;
  // Sinks only: it writes rejected events (Event::rejected()) to a dead-letter destination of
  // its own. For other sinks the runtime settles them dead_lettered before they arrive.
  bool takes_rejected = false;
  // Optional: the max_demand the stage asks of each input when its configuration sets none,
  // from the stage's YAML node (a sink writing in batches wants several batches in flight).
  // Reads leniently: `configure` reports bad options.
  std::function<std::size_t(const YAML::Node&)> default_max_demand;
  StageTraits traits;
};

const StageType* find_stage_type(const std::string& name);
std::vector<const StageType*> all_stage_types();  // sorted by name

// Static registration: `static const StageRegistration reg{StageType{...}};` in the stage's .cpp.
struct StageRegistration {
  explicit StageRegistration(StageType type);
};

}  // namespace etld
