// Reads a pipeline file and validates it, collecting every problem (see config/schema/pipeline.hpp).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "config/admin_token.hpp"
#include "config/delivery_check.hpp"
#include "config/held_acks_check.hpp"
#include "config/loader.hpp"
#include "config/loader_parts.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"
#include "config/schema/pipeline.hpp"
#include "config/yaml_errors.hpp"
#include "stages/engine/dispatcher.hpp"
#include "stages/engine/registry.hpp"
#include "stages/expr/expr.hpp"

namespace etld {

const StageConfig* PipelineConfig::find(const std::string& name) const {
  for (const auto& s : stages)
    if (s.name == name) return &s;
  return nullptr;
}

const std::vector<OptionSpec>& common_stage_options() {
  using namespace loader_detail;
  static const StageConfig d;  // the defaults (see duration_text in loader_parts.hpp)
  static const std::vector<OptionSpec> specs = {
      {"type", OptionKind::string, "The stage type (see below).", true, "", {}},
      {"inputs",
       OptionKind::string_list,
       "Stages whose events this stage consumes. Sources take none; transforms and sinks need at least one.",
       false,
       "",
       {}},
      {"concurrency",
       OptionKind::integer,
       "Number of instances of this stage running in parallel.",
       false,
       std::to_string(d.concurrency),
       {}},
      {"partition_by",
       OptionKind::string,
       "Expression whose value picks the instance for each event (a field path such as customer.id, or "
       "_key for the Kafka key), so that equal keys go to the same instance and keep their order. "
       "Not allowed on sources.",
       false,
       "",
       {}},
      {"max_demand",
       OptionKind::integer,
       "Most events this stage asks of each input at once. A stage type may have its own default "
       "(postgres: 2 x batch.max_rows, at least 20000; window with emit: updates: 10000).",
       false,
       std::to_string(d.max_demand),
       {}},
      {"min_demand",
       OptionKind::integer,
       "Ask for more once outstanding demand falls to this; must be below max_demand. Default: max_demand / "
       "2.",
       false,
       "",
       {}},
      {"buffer_size",
       OptionKind::integer,
       "Events a producer holds for slow consumers; 0 = the max_demand of its widest consumer.",
       false,
       std::to_string(d.buffer_size),
       {}},
      {"restart", OptionKind::choice,
       "When to restart a failed instance: always (permanent), after abnormal exits (transient), or never "
       "(temporary).",
       false, name_of(d.restart, kRestartPolicyNames), kRestartPolicyNames},
      {"max_restarts",
       OptionKind::integer,
       "Restarts allowed within restart_window before the pipeline stops.",
       false,
       std::to_string(d.max_restarts),
       {}},
      {"restart_window",
       OptionKind::duration,
       "The window max_restarts counts over.",
       false,
       duration_text(d.restart_window),
       {}},
      {"restart_backoff",
       OptionKind::duration,
       "Delay before the first restart; doubles with each restart.",
       false,
       duration_text(d.restart_backoff),
       {}},
      {"dispatch", OptionKind::choice,
       "How events reach several downstream stages: every one gets each event (broadcast) or each event goes "
       "to "
       "one of them (demand).",
       false, name_of(d.dispatch, kDispatchModeNames), kDispatchModeNames},
  };
  return specs;
}

namespace loader_detail {

StageConfig& stage_named(PipelineConfig& p, const std::string& name) {
  for (auto& s : p.stages)
    if (s.name == name) return s;
  throw std::logic_error("no stage '" + name + "'");
}

const OptionSpec* find_spec(const std::vector<OptionSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> spec_names(const std::vector<OptionSpec>& specs) {
  std::vector<std::string> out;
  for (const auto& s : specs) out.push_back(s.name);
  return out;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::vector<Entry> map_entries(const YAML::Node& map, Reporter& r, const std::string& what) {
  std::vector<Entry> out;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      r.error(kv.first.Mark(), "expected a plain name as a key of " + what);
      continue;
    }
    const std::string& key = kv.first.Scalar();
    auto [it, fresh] = seen.emplace(key, kv.first.Mark());
    if (!fresh) {
      r.error(kv.first.Mark(), "duplicate key '" + key + "' in " + what,
              "first defined at " + std::to_string(it->second.line + 1) + ":" +
                  std::to_string(it->second.column + 1) + "; please delete one");
      continue;
    }
    out.push_back({key, kv.first, kv.second});
  }
  return out;
}

// Whether `value` is a null written as the word null (not ~ or nothing), which in a `type` key
// means the null sink: yaml-cpp keeps no spelling of a null, so the text at its position tells.
bool spelled_null(std::string_view text, const YAML::Node& value) {
  if (!value.IsNull() || value.Mark().pos < 0) return false;
  auto word = text.substr(std::min(text.size(), static_cast<std::size_t>(value.Mark().pos)), 5);
  for (std::string_view spelling : {"null", "Null", "NULL"})
    if (word.substr(0, 4) == spelling &&
        (word.size() == 4 || std::string_view(" \t\r\n#,}").find(word[4]) != std::string_view::npos))
      return true;
  return false;
}

// Reads the common keys into d.config, skipping `bad_keys` (already reported as the wrong kind).
void read_common(StageDraft& d, const YAML::Node& node, const std::set<std::string>& bad_keys, Reporter& r) {
  Options common(node, &common_stage_options());
  StageConfig& c = d.config;
  const int before = r.count;
  auto guard = [&](std::initializer_list<const char*> keys, auto&& fn) {
    for (const char* k : keys)
      if (bad_keys.count(k) != 0) return;
    try {
      fn();
    } catch (const ConfigError& e) {
      r.error(e, c.mark);
    }
  };

  guard({"inputs"}, [&] {
    c.inputs = common.get_string_list("inputs");
    YAML::Node inputs = common.node("inputs");
    for (std::size_t i = 0; i < c.inputs.size(); ++i)
      d.input_nodes.push_back(inputs.IsSequence() ? inputs[i] : inputs);
  });
  guard({"concurrency"}, [&] {
    auto v = common.get_int("concurrency");
    if (v < 1 || v > 10'000)
      throw ConfigError(common.mark("concurrency"),
                        "option 'concurrency' must be between 1 and 10000; got " + std::to_string(v));
    c.concurrency = static_cast<int>(v);
  });
  guard({"partition_by"}, [&] {
    if (!common.has("partition_by")) return;
    c.partition_by = common.get_string("partition_by");
    if (c.partition_by.empty()) return;
    try {
      c.partition_hash = [key = std::make_shared<const Expr>(Expr::compile(c.partition_by))](Event& e) {
        try {
          auto v = key->eval(e);
          return hash_bytes(v.kind() == Value::Kind::string ? v.as_string() : v.to_json());
        } catch (const std::exception&) {
          return std::uint64_t{0};  // unreadable events all go to one instance, whose stage reports them
        }
      };
    } catch (const ExprSyntaxError& e) {
      throw ConfigError(common.mark("partition_by"), "option 'partition_by': " + std::string(e.what()) +
                                                         " (column " + std::to_string(e.column + 1) +
                                                         " of '" + c.partition_by + "')");
    }
  });

  bool demand_ok = true;
  // A stage type may size its own default (the postgres sink's follows its batch); the spec's
  // default is the others'.
  const std::int64_t default_demand = d.type && d.type->default_max_demand
                                          ? static_cast<std::int64_t>(d.type->default_max_demand(node))
                                          : scalar_int(common.default_node("max_demand"));
  std::int64_t max_demand = default_demand;
  guard({"max_demand"}, [&] {
    demand_ok = false;
    max_demand = common.has("max_demand") ? common.get_int("max_demand") : default_demand;
    if (max_demand < 1)
      throw ConfigError(common.mark("max_demand"),
                        "option 'max_demand' must be at least 1; got " + std::to_string(max_demand));
    demand_ok = true;
  });
  if (demand_ok) {
    guard({"min_demand"}, [&] {
      std::int64_t min_demand = common.has("min_demand") ? common.get_int("min_demand") : max_demand / 2;
      if (min_demand < 0)
        throw ConfigError(common.mark("min_demand"),
                          "option 'min_demand' must not be negative; got " + std::to_string(min_demand));
      if (min_demand >= max_demand)
        throw ConfigError(common.mark("min_demand"),
                          "option 'min_demand' (" + std::to_string(min_demand) +
                              ") must be less than max_demand (" + std::to_string(max_demand) + ")",
                          common.has("max_demand")
                              ? "lower min_demand or raise max_demand"
                              : "max_demand defaults to " + std::to_string(default_demand) +
                                    " here; lower min_demand or raise it");
      c.max_demand = static_cast<std::size_t>(max_demand);
      c.min_demand = static_cast<std::size_t>(min_demand);
    });
  }
  guard({"buffer_size"}, [&] {
    auto v = common.get_int("buffer_size");
    if (v < 0)
      throw ConfigError(common.mark("buffer_size"),
                        "option 'buffer_size' must not be negative; got " + std::to_string(v));
    c.buffer_size = static_cast<std::size_t>(v);
  });
  guard({"restart"},
        [&] { c.restart = value_named<RestartPolicy>(common.get_string("restart"), kRestartPolicyNames); });
  guard({"max_restarts"}, [&] {
    auto v = common.get_int("max_restarts");
    if (v < 0 || v > 1'000'000)
      throw ConfigError(common.mark("max_restarts"),
                        "option 'max_restarts' must be between 0 and 1000000; got " + std::to_string(v));
    c.max_restarts = static_cast<int>(v);
  });
  guard({"restart_window"}, [&] { c.restart_window = common.get_duration("restart_window"); });
  guard({"restart_backoff"}, [&] { c.restart_backoff = common.get_duration("restart_backoff"); });
  guard({"dispatch"},
        [&] { c.dispatch = value_named<DispatchMode>(common.get_string("dispatch"), kDispatchModeNames); });
  if (r.count != before) d.ok = false;
}

// Reads one stage's map: type, keys and their kinds, required options, common options.
StageDraft read_stage(const Entry& e, std::size_t index, Reporter& r) {
  StageDraft d;
  d.index = index;
  StageConfig& c = d.config;
  c.name = e.key;
  c.mark = e.key_node.Mark();
  c.node = e.value;
  const int before = r.count;

  if (c.name.empty()) r.error(c.mark, "a stage needs a non-empty name");
  if (!e.value.IsMap()) {
    r.error(e.value.IsNull() ? c.mark : e.value.Mark(),
            "stage '" + c.name + "' must be a map with at least a 'type' key; got " +
                (e.value.IsNull()       ? std::string("nothing")
                 : e.value.IsSequence() ? "a list"
                                        : "a scalar"),
            "give it a map such as {type: <type>, ...}");
    d.ok = false;
    return d;
  }

  auto entries = map_entries(e.value, r, "stage '" + c.name + "'");
  const auto& common = common_stage_options();

  // The type first: it decides which other keys are known.
  const Entry* type_entry = nullptr;
  for (const auto& kv : entries)
    if (kv.key == "type") type_entry = &kv;
  if (type_entry == nullptr) {
    std::vector<std::string> names;
    for (const auto* t : all_stage_types()) names.push_back(t->name);
    r.error(c.mark, "stage '" + c.name + "' has no 'type'", "add 'type: <one of " + join(names) + ">'");
  } else {
    try {
      if (spelled_null(r.text, type_entry->value)) {
        c.type = "null";  // `type: null` is YAML's null, but the null sink is what it means
      } else if (type_entry->value.IsNull()) {
        throw ConfigError(type_entry->value.Mark(), "option 'type' has no value; expected a stage type",
                          "write one of the stage types, e.g. type: stdout");
      } else {
        check_option(*find_spec(common, "type"), type_entry->value);
        c.type = scalar_string(type_entry->value);
      }
      d.type = find_stage_type(c.type);
      if (d.type == nullptr) {
        std::vector<std::string> names;
        for (const auto* t : all_stage_types()) names.push_back(t->name);
        std::string hint = did_you_mean(c.type, names);
        if (hint.empty()) hint = "known types: " + join(names);
        r.error(type_entry->value.Mark(), "unknown stage type " + shown(type_entry->value, c.type), hint);
      }
    } catch (const ConfigError& err) {
      r.error(err, c.mark);
    }
  }

  std::set<std::string> bad_keys;
  // Every other key: known (common or the type's own) and of the right kind.
  for (const auto& kv : entries) {
    if (kv.key == "type") continue;
    const OptionSpec* spec = find_spec(common, kv.key);
    if (spec == nullptr && d.type != nullptr) spec = find_spec(d.type->options, kv.key);
    if (spec == nullptr) {
      if (d.type == nullptr && type_entry != nullptr) continue;  // can't tell with an unknown type
      std::vector<std::string> names = spec_names(common);
      if (d.type != nullptr)
        for (const auto& s : d.type->options) names.push_back(s.name);
      std::string hint = did_you_mean(kv.key, names);
      if (hint.empty() && d.type != nullptr) {
        std::vector<std::string> own = spec_names(d.type->options);
        hint = own.empty() ? "stage type " + d.type->name + " takes only the common stage options"
                           : "options of " + d.type->name + ": " + join(own);
      }
      r.error(
          kv.key_node.Mark(),
          "unknown option '" + kv.key + "'" + (d.type ? " for stage type " + d.type->name : std::string()),
          hint);
      continue;
    }
    try {
      check_option(*spec, kv.value);
    } catch (const ConfigError& err) {
      if (kv.value.IsNull()) {  // yaml-cpp places an empty value at the next line: point at its key
        r.error(kv.key_node.Mark(), err.what(), err.hint());
      } else {
        r.error(err, kv.value.Mark());
      }
      bad_keys.insert(kv.key);
    }
  }

  if (d.type != nullptr) {
    for (const auto& spec : d.type->options) {
      if (!spec.required) continue;
      bool present = false;
      for (const auto& kv : entries) present = present || kv.key == spec.name;
      if (!present)
        r.error(c.mark, "missing required option '" + spec.name + "' for stage type " + d.type->name,
                spec.doc.empty() ? std::string() : spec.name + ": " + spec.doc);
    }
    c.options = Options(e.value, &d.type->options);
  }

  read_common(d, e.value, bad_keys, r);
  if (r.count != before) d.ok = false;

  if (d.type != nullptr && d.type->role == Role::source && !c.partition_by.empty()) {
    r.error(c.options.mark("partition_by"),
            "option 'partition_by' is not allowed on source stage '" + c.name + "'",
            "partition_by splits a stage's input among its instances; sources have no input");
    d.ok = false;
  }
  return d;
}

}  // namespace loader_detail

using namespace loader_detail;

std::unique_ptr<PipelineConfig> load_pipeline(const std::string& path, Diagnostics& diags) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    diags.error(YAML::Mark::null_mark(), "cannot read pipeline file '" + path + "': " + std::strerror(err));
    return nullptr;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    diags.error(YAML::Mark::null_mark(), "cannot read pipeline file '" + path + "'");
    return nullptr;
  }
  return load_pipeline_text(ss.str(), path, diags);
}

std::unique_ptr<PipelineConfig> load_pipeline_text(const std::string& text, const std::string& file_label,
                                                   Diagnostics& diags) {
  Reporter r{diags, text};
  auto p = std::make_unique<PipelineConfig>();
  p->file = file_label;
  p->text = text;

  YAML::Node root;
  if (auto deep = check_yaml_nesting(text)) {
    r.error(deep->mark, deep->message, deep->hint);
    return nullptr;
  }
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    auto explained = explain_yaml_error(text, e);
    r.error(explained.mark, explained.message, explained.hint);
    return nullptr;
  }

  YAML::Mark start;  // 1:1
  start.line = 0;
  start.column = 0;
  if (!root.IsDefined() || root.IsNull()) {
    r.error(start, "the pipeline file is empty", "it needs at least a 'stages' map");
    return nullptr;
  }
  if (!root.IsMap()) {
    r.error(root.Mark(), "the pipeline file must be a YAML map with a 'stages' key");
    return nullptr;
  }

  YAML::Node stages;
  bool have_stages = false;
  YAML::Mark stages_mark = start;
  for (const auto& e : map_entries(root, r, "the pipeline file")) {
    if (find_spec(top_level_options(), e.key) == nullptr) {
      std::string hint = did_you_mean(e.key, spec_names(top_level_options()));
      if (hint.empty()) hint = "top-level keys are " + join(spec_names(top_level_options()));
      r.error(e.key_node.Mark(), "unknown top-level key '" + e.key + "'", hint);
      continue;
    }
    if (e.key == "stages") {
      stages_mark = e.key_node.Mark();
      have_stages = true;
      try {
        check_option(*find_spec(top_level_options(), "stages"), e.value);
        stages = e.value;
      } catch (const ConfigError& err) {
        r.error(e.value.IsNull() ? stages_mark : err.mark(), err.what(), err.hint());
      }
      continue;
    }
    read_top_level(e, *p, r);
  }

  std::vector<StageDraft> drafts;
  if (!have_stages) {
    r.error(start, "missing required key 'stages'", "add 'stages:' with at least one source and one sink");
  } else if (!stages.IsMap()) {
    // reported above
  } else if (stages.size() == 0) {
    r.error(stages.Mark(), "'stages' is empty", "a pipeline needs at least one source and one sink");
  } else {
    auto entries = map_entries(stages, r, "'stages'");
    for (std::size_t i = 0; i < entries.size(); ++i) drafts.push_back(read_stage(entries[i], i, r));
    check_inputs(drafts, r);
    bool acyclic = check_cycles(drafts, r);
    std::vector<std::size_t> order;
    if (acyclic) {
      order = topological_order(drafts);
    } else {
      for (std::size_t i = 0; i < drafts.size(); ++i) order.push_back(i);
    }
    for (auto i : order) p->stages.push_back(drafts[i].config);
    // Each stage type's own checks, for stages that passed the generic ones. The factory made
    // here is the one a start or a reload of this configuration uses.
    for (auto i : order) {
      const StageDraft& d = drafts[i];
      if (!d.ok || d.type == nullptr || !d.type->configure) continue;
      StageConfig& c = stage_named(*p, d.config.name);
      try {
        c.factory = d.type->configure(c, *p);
      } catch (const ConfigErrors& e) {
        for (const auto& one : e.all()) r.error(one, c.mark);
      } catch (const ConfigError& e) {
        r.error(e, c.mark);
      } catch (const YAML::Exception& e) {
        r.error(e.mark.line >= 0 ? e.mark : c.mark, "stage '" + c.name + "': " + e.msg);
      } catch (const std::exception& e) {
        r.error(c.mark, "stage '" + c.name + "' (type " + c.type + "): " + e.what());
      }
    }
  }

  // What the stages promise each other about delivery, once every factory is made.
  if (r.count == 0)
    for (const auto& c : p->stages) {
      try {
        check_position_binding(c, *p);
      } catch (const ConfigError& e) {
        r.error(e, c.mark);
      }
    }

  // Stateful stages must not hold more unsettled events than their sources allow.
  if (r.count == 0) r.count += check_held_acks(*p, diags);
  if (r.count > 0) return nullptr;
  return p;
}

}  // namespace etld
