#include "stages/flow/window_spec.hpp"

#include <set>

#include "config/schema/diagnostics.hpp"
#include "stages/builtin/reject.hpp"

namespace etld::flow {
namespace {

const std::vector<std::string> kTypes = {"global", "tumbling", "sliding", "session", "count"};

WindowType type_named(const std::string& name) {
  for (std::size_t i = 0; i < kTypes.size(); ++i)
    if (kTypes[i] == name) return static_cast<WindowType>(i);
  return WindowType::global;  // unreachable: the option is a checked choice
}

std::string last_segment(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

std::int64_t positive_duration(const Options& options, const std::string& name) {
  auto ms = options.get_duration(name).count();
  if (ms <= 0) throw ConfigError(options.mark(name), name + ": must be longer than 0ms");
  return ms;
}

// An option that `type` does not take: located at it, saying which windows take it.
void refuse(std::vector<ConfigError>& errors, const Options& options, const std::string& name,
            const std::string& why) {
  if (options.has(name)) errors.emplace_back(options.mark(name), name + ": " + why);
}

void parse_shape(const Options& options, WindowSpec& spec, std::vector<ConfigError>& errors) {
  const std::string type = options.get_string("window");
  const bool timed = spec.type == WindowType::tumbling || spec.type == WindowType::sliding;
  const bool sized = timed || spec.type == WindowType::count;
  if (sized && !options.has("size"))
    errors.emplace_back(
        options.mark("window"),
        "window: " + type + " needs 'size'" +
            (spec.type == WindowType::count ? " (events per window and group)" : " (a duration)"));
  if (!sized)
    refuse(errors, options, "size", "only tumbling, sliding and count windows take a size, not " + type);
  if (sized && options.has("size")) {
    try {
      if (spec.type == WindowType::count) {
        spec.count = scalar_int(options.node("size"));
        if (spec.count <= 0)
          throw ConfigError(options.mark("size"), "size: count windows need at least 1 event");
      } else {
        spec.size_ms = parse_duration(options.node("size")).count();
        if (spec.size_ms <= 0) throw ConfigError(options.mark("size"), "size: must be longer than 0ms");
      }
    } catch (const ConfigError& e) {
      errors.push_back(e);
    }
  }
  if (spec.type == WindowType::sliding) {
    if (!options.has("slide")) {
      errors.emplace_back(options.mark("window"),
                          "window: sliding needs 'slide' (how far each window starts after the previous)");
    } else {
      try {
        spec.slide_ms = positive_duration(options, "slide");
        if (spec.size_ms > 0 && spec.slide_ms > spec.size_ms)
          throw ConfigError(options.mark("slide"),
                            "slide: " + std::to_string(spec.slide_ms) + "ms is longer than size " +
                                std::to_string(spec.size_ms) +
                                "ms: events between windows would belong to none",
                            "make slide at most size (equal: a tumbling window)");
        // Each event is folded into every window that contains it, and the windows of one
        // event are listed at once: the ratio bounds the work and memory one event costs.
        if (spec.size_ms > 0 && (spec.size_ms + spec.slide_ms - 1) / spec.slide_ms > kMaxWindowsPerEvent)
          throw ConfigError(options.mark("slide"),
                            "slide: with size " + std::to_string(spec.size_ms) + "ms and slide " +
                                std::to_string(spec.slide_ms) + "ms every event would belong to " +
                                std::to_string((spec.size_ms + spec.slide_ms - 1) / spec.slide_ms) +
                                " windows; at most " + std::to_string(kMaxWindowsPerEvent) + " are allowed",
                            "make slide at least size / " + std::to_string(kMaxWindowsPerEvent));
      } catch (const ConfigError& e) {
        errors.push_back(e);
      }
    }
  } else {
    refuse(errors, options, "slide", "only sliding windows take a slide, not " + type);
  }
  if (spec.type == WindowType::session) {
    if (!options.has("gap"))
      errors.emplace_back(options.mark("window"),
                          "window: session needs 'gap' (the silence that ends a session)");
    else
      try {
        spec.gap_ms = positive_duration(options, "gap");
      } catch (const ConfigError& e) {
        errors.push_back(e);
      }
  } else {
    refuse(errors, options, "gap", "only session windows take a gap, not " + type);
  }
}

void parse_time(const Options& options, WindowSpec& spec, std::vector<ConfigError>& errors) {
  if (options.has("event_time")) {
    auto text = options.get_string("event_time");
    try {
      spec.event_time = compile_expr_option(text, "event_time", options.mark("event_time"));
    } catch (const ConfigError& e) {
      errors.push_back(e);
    }
  } else {
    for (const char* name : {"allowed_lateness", "idle_timeout"})
      refuse(
          errors, options, name,
          "needs event_time: with processing time (no event_time) no event is ever late and every partition "
          "keeps up");
  }
  try {
    if (options.has("allowed_lateness")) {
      spec.lateness_ms = options.get_duration("allowed_lateness").count();
      if (spec.lateness_ms < 0)
        throw ConfigError(options.mark("allowed_lateness"), "allowed_lateness: cannot be negative");
    }
    if (options.has("idle_timeout")) spec.idle_timeout_ms = positive_duration(options, "idle_timeout");
  } catch (const ConfigError& e) {
    errors.push_back(e);
  }
}

void parse_emit(const Options& options, WindowSpec& spec, std::vector<ConfigError>& errors) {
  spec.emit = options.get_string("emit") == "results" ? EmitMode::results : EmitMode::updates;
  if (spec.emit == EmitMode::updates) {
    if (spec.type == WindowType::session || spec.type == WindowType::count)
      errors.emplace_back(
          options.has("emit") ? options.mark("emit") : options.mark("window"),
          "emit: updates cannot carry " + options.get_string("window") +
              " windows: their state crosses input batches, and updates drop state after each",
          "use emit: results");
    for (const char* name : {"trigger_every_events", "trigger_every", "max_open_windows"})
      refuse(errors, options, name, "only with emit: results (emit: updates emits after every input batch)");
  }
  try {
    if (options.has("trigger_every_events")) {
      auto n = options.get_int("trigger_every_events");
      if (n <= 0)
        throw ConfigError(options.mark("trigger_every_events"), "trigger_every_events: must be at least 1");
      spec.trigger_every_events = static_cast<std::uint64_t>(n);
    }
    if (options.has("trigger_every")) spec.trigger_every_ms = positive_duration(options, "trigger_every");
    for (const char* name : {"max_open_windows", "max_groups"}) {
      auto n = options.get_int(name);
      if (n <= 0) throw ConfigError(options.mark(name), std::string(name) + ": must be at least 1");
      (std::string(name) == "max_groups" ? spec.max_groups : spec.max_open_windows) =
          static_cast<std::size_t>(n);
    }
  } catch (const ConfigError& e) {
    errors.push_back(e);
  }
  spec.on_state_full =
      options.get_string("on_state_full") == "fail" ? StateFullPolicy::fail : StateFullPolicy::dead_letter;
}

void parse_fields(const Options& options, WindowSpec& spec, std::vector<ConfigError>& errors) {
  std::set<std::string> taken;
  if (spec.type == WindowType::count)
    taken.insert("window");
  else if (spec.type != WindowType::global)
    taken.insert({"window_start", "window_end"});
  const std::set<std::string> reserved = taken;
  YAML::Node aggs = options.node("aggregates");
  if (!options.has("aggregates"))
    errors.emplace_back(options.mark("aggregates"), "window needs 'aggregates': output field -> aggregate");
  for (const auto& [output, text] : options.get_string_map("aggregates")) {
    auto mark = option_entry_mark(aggs, output, options.mark("aggregates"));
    try {
      if (output.empty() || output.find('.') != std::string::npos)
        throw ConfigError(mark, "aggregates: '" + output + "' is not a top-level field name");
      if (!taken.insert(output).second)
        throw ConfigError(mark, "aggregates: '" + output + "' is also a field the window writes");
      spec.aggregates.push_back(parse_aggregate(output, text, mark));
    } catch (const ConfigError& e) {
      errors.push_back(e);
    }
  }
  for (const auto& path : options.get_string_list("group_by")) {
    try {
      if (path.empty() || path == ".")
        throw ConfigError(options.mark("group_by"), "group_by: '" + path + "' is not a field");
      GroupKey key{last_segment(path), compile_expr_option(path, "group_by", options.mark("group_by"))};
      if (!taken.insert(key.output).second)
        throw ConfigError(options.mark("group_by"),
                          "group_by: '" + path + "' would be written as '" + key.output + "', which " +
                              (reserved.count(key.output)
                                   ? std::string("the window writes itself")
                                   : std::string("another group_by field or an aggregate also writes")),
                          "rename the field with a map stage before the window");
      spec.group_by.push_back(std::move(key));
    } catch (const ConfigError& e) {
      errors.push_back(e);
    }
  }
}

}  // namespace

const std::vector<OptionSpec>& window_options() {
  static const std::vector<OptionSpec> specs = {
      {"window", OptionKind::choice, "The kind of window: global, tumbling, sliding, session or count.", true,
       "", kTypes},
      {"size",
       OptionKind::string,
       "Tumbling and sliding: the window's length (a duration); count: the events of a group per window.",
       false,
       "",
       {}},
      {"slide",
       OptionKind::duration,
       "Sliding only: how far each window starts after the previous (at most size, at least size / 1000).",
       false,
       "",
       {}},
      {"gap",
       OptionKind::duration,
       "Session only: events of a group closer than this share a session; a silence this long ends it.",
       false,
       "",
       {}},
      {"event_time",
       OptionKind::string,
       "The event's time: a field holding epoch milliseconds or RFC 3339 text, or _timestamp (the Kafka "
       "record's "
       "time); absent: processing time.",
       false,
       "",
       {}},
      {"allowed_lateness",
       OptionKind::duration,
       "Event time only: how long after the watermark passes a window's end it still takes events (0 when "
       "absent).",
       false,
       "",
       {}},
      {"idle_timeout",
       OptionKind::duration,
       "Event time only: a source partition without events this long (processing time) stops holding the "
       "watermark "
       "back; absent: never.",
       false,
       "",
       {}},
      {"group_by",
       OptionKind::string_list,
       "Field paths (or _key, _topic, _partition) whose values form the groups, written under the path's "
       "last "
       "segment; omit for one group.",
       false,
       "",
       {}},
      {"aggregates",
       OptionKind::string_map,
       "Output field -> count, count(expr), sum, min, max, avg, first, last, count_distinct, "
       "approx_count_distinct (of an expr) or top_k(expr, k).",
       true,
       "",
       {}},
      {"emit",
       OptionKind::choice,
       "updates: a partial result per input batch, merged downstream (global, tumbling, sliding); results: "
       "the "
       "result when the window closes (and on early triggers).",
       false,
       "updates",
       {"updates", "results"}},
      {"trigger_every_events",
       OptionKind::integer,
       "emit: results only: also emit a window's current results every this many events into it.",
       false,
       "",
       {}},
      {"trigger_every",
       OptionKind::duration,
       "emit: results only: also emit the current results of windows updated since, every this long "
       "(processing "
       "time).",
       false,
       "",
       {}},
      {"max_open_windows",
       OptionKind::integer,
       "emit: results only: the most windows open at once per instance.",
       false,
       "10000",
       {}},
      {"max_groups",
       OptionKind::integer,
       "The most (window, group) pairs held at once per instance.",
       false,
       "100000",
       {}},
      {"on_state_full",
       OptionKind::choice,
       "When a cap is reached: dead_letter rejects the event that would open a window or group; fail fails "
       "the "
       "stage.",
       false,
       "dead_letter",
       {"dead_letter", "fail"}},
  };
  return specs;
}

WindowSpec parse_window_spec(const Options& options) {
  WindowSpec spec;
  std::vector<ConfigError> errors;  // every bad option is reported, not only the first
  spec.type = type_named(options.get_string("window"));
  parse_shape(options, spec, errors);
  parse_time(options, spec, errors);
  parse_emit(options, spec, errors);
  parse_fields(options, spec, errors);
  ConfigErrors::throw_if_any(std::move(errors));
  if (spec.aggregates.empty())
    throw ConfigError(options.mark("aggregates"), "aggregates: at least one aggregate is needed");
  return spec;
}

}  // namespace etld::flow
