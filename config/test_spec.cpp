#include "config/test_spec.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include "config/yaml_errors.hpp"
#include "stages/builtin/reject.hpp"
#include "stages/flow/event_time.hpp"

namespace etld {

namespace {

struct Entry {
  std::string key;
  YAML::Node key_node, value;
};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The entries of the map `node` whose keys are among `keys`; reports the others, non-scalar
// keys and duplicates. `what` names the map in messages ("test case", "input").
std::vector<Entry> entries(const YAML::Node& node, const std::string& what,
                           const std::vector<std::string>& keys, Diagnostics& diags) {
  std::vector<Entry> out;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      diags.error(kv.first.Mark(), "expected a plain name as a key of the " + what);
      continue;
    }
    const std::string& key = kv.first.Scalar();
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      std::string hint = did_you_mean(key, keys);
      diags.error(kv.first.Mark(), "unknown key '" + key + "' in the " + what,
                  hint.empty() ? "the keys are " + join(keys) : hint);
      continue;
    }
    auto [it, fresh] = seen.emplace(key, kv.first.Mark());
    if (!fresh) {
      diags.error(kv.first.Mark(), "duplicate key '" + key + "' in the " + what,
                  "first defined at line " + std::to_string(it->second.line + 1));
      continue;
    }
    out.push_back({key, kv.first, kv.second});
  }
  return out;
}

const Entry* find(const std::vector<Entry>& es, const std::string& key) {
  for (const auto& e : es)
    if (e.key == key) return &e;
  return nullptr;
}

std::string text_of(const Entry& e) {
  if (!e.value.IsScalar())
    throw ConfigError(e.value.Mark(), "'" + e.key + "' must be a single value, not a list or a map");
  return e.value.Scalar();
}

std::int64_t int_of(const Entry& e, std::int64_t min) {
  std::string text = text_of(e);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min)
    throw ConfigError(e.value.Mark(), "'" + e.key + "' must be a whole number of at least " +
                                          std::to_string(min) + "; got '" + text + "'");
  return v;
}

// A list's items; a scalar or a map is a list of one.
std::vector<YAML::Node> items_of(const YAML::Node& node) {
  std::vector<YAML::Node> out;
  if (!node.IsSequence()) return {node};
  for (const auto& item : node) out.push_back(item);
  return out;
}

std::vector<YAML::Node> list_of(const Entry& e) {
  if (e.value.IsNull()) return {};
  if (!e.value.IsSequence())
    throw ConfigError(e.value.Mark(), "'" + e.key + "' must be a list",
                      "write each item on a line of its own, after '- '");
  return items_of(e.value);
}

TestInput read_input(const YAML::Node& node, Diagnostics& diags) {
  TestInput in;
  if (!node.IsMap()) {
    diags.error(node.Mark(), "an input must be a map with 'value:', 'raw:' or 'tombstone: true'",
                "e.g. - value: {id: 1}");
    return in;
  }
  auto es = entries(
      node, "input",
      {"value", "raw", "tombstone", "key", "topic", "partition", "offset", "timestamp", "headers"}, diags);
  int payloads = 0;
  for (const auto& e : es) {
    try {
      if (e.key == "value") {
        in.payload = yaml_to_value(e.value).to_json();
        ++payloads;
      } else if (e.key == "raw") {
        in.payload = text_of(e);
        ++payloads;
      } else if (e.key == "tombstone") {
        std::string t = text_of(e);
        if (t != "true" && t != "false")
          throw ConfigError(e.value.Mark(), "'tombstone' must be true or false");
        in.tombstone = t == "true";
        payloads += in.tombstone ? 1 : 0;
      } else if (e.key == "key") {
        in.key = text_of(e);
      } else if (e.key == "topic") {
        in.topic = text_of(e);
      } else if (e.key == "partition") {
        in.partition = static_cast<std::int32_t>(std::min<std::int64_t>(int_of(e, 0), INT32_MAX));
      } else if (e.key == "offset") {
        in.offset = int_of(e, 0);
      } else if (e.key == "timestamp") {
        auto ms = flow::parse_rfc3339_ms(text_of(e));
        in.timestamp_ms = ms ? *ms : int_of(e, 0);
      } else if (e.key == "headers") {
        if (!e.value.IsMap())
          throw ConfigError(e.value.Mark(), "'headers' must be a map of names to values",
                            "e.g. headers: {trace: abc}");
        for (const auto& kv : e.value) {
          if (!kv.first.IsScalar() || !kv.second.IsScalar())
            throw ConfigError(kv.first.Mark(), "a header is a name and a text value");
          in.headers.push_back({kv.first.Scalar(), kv.second.Scalar()});
        }
      }
    } catch (const ConfigError& err) {
      diags.error(err.has_mark() ? err.mark() : e.value.Mark(), err.what(), err.hint());
    }
  }
  if (payloads != 1)
    diags.error(node.Mark(),
                "an input needs exactly one of 'value:' (a record), 'raw:' (the payload's bytes) or "
                "'tombstone: true'");
  return in;
}

EventExpectation read_expectation(const YAML::Node& node, bool dead_letter, Diagnostics& diags) {
  EventExpectation x;
  x.mark = node.Mark();
  const std::string what = dead_letter ? "expected dead letter" : "expected output";
  if (!node.IsMap()) {
    diags.error(node.Mark(), "an " + what + " must be a map",
                dead_letter ? "e.g. - reason_contains: \"not a number\"" : "e.g. - value: {id: 1}");
    return x;
  }
  std::vector<std::string> keys{"value", "fields", "check"};
  if (dead_letter) keys.insert(keys.end(), {"reason", "reason_contains"});
  for (const auto& e : entries(node, what, keys, diags)) {
    try {
      if (e.key == "value") {
        x.value = yaml_to_value(e.value);
      } else if (e.key == "fields") {
        if (!e.value.IsMap())
          throw ConfigError(e.value.Mark(), "'fields' must be a map of field paths to values",
                            "e.g. fields: {customer.id: 7}");
        for (const auto& kv : e.value) {
          if (!kv.first.IsScalar()) throw ConfigError(kv.first.Mark(), "a field path must be plain text");
          x.fields.emplace_back(
              std::make_shared<const Expr>(compile_expr_option(kv.first.Scalar(), "fields", kv.first.Mark())),
              yaml_to_value(kv.second));
        }
      } else if (e.key == "check") {
        for (const auto& item : items_of(e.value)) {
          if (!item.IsScalar() || item.Scalar().empty())
            throw ConfigError(item.Mark(), "'check' must be an expression or a list of them",
                              "e.g. check: \"total > 0 && _key == 'a'\" (docs/expressions.md)");
          x.checks.push_back(
              std::make_shared<const Expr>(compile_expr_option(item.Scalar(), "check", item.Mark())));
        }
      } else if (e.key == "reason") {
        x.reason = text_of(e);
      } else if (e.key == "reason_contains") {
        x.reason_contains = text_of(e);
      }
    } catch (const ConfigError& err) {
      diags.error(err.has_mark() ? err.mark() : e.value.Mark(), err.what(), err.hint());
    }
  }
  return x;
}

TestCase read_case(const YAML::Node& node, Diagnostics& diags) {
  TestCase c;
  c.mark = node.Mark();
  if (!node.IsMap()) {
    diags.error(node.Mark(), "a test case must be a map",
                "e.g. - {name: ..., stage: ..., inputs: [...], outputs: [...]}");
    return c;
  }
  auto es = entries(node, "test case",
                    {"name", "stage", "stages", "inputs", "outputs", "dead_letters", "ordered"}, diags);
  if (!find(es, "name")) diags.error(node.Mark(), "a test case needs a 'name'");
  if (!find(es, "stage") == !find(es, "stages"))
    diags.error(node.Mark(),
                "a test case needs exactly one of 'stage:' (a transform) or 'stages:' (a path of them)");
  if (!find(es, "inputs"))
    diags.error(node.Mark(), "a test case needs 'inputs:'", "a list of events to feed");
  for (const auto& e : es) {
    try {
      if (e.key == "name") {
        c.name = text_of(e);
      } else if (e.key == "stage" || e.key == "stages") {
        auto names = items_of(e.value);
        if (names.empty()) throw ConfigError(e.value.Mark(), "'" + e.key + "' names no stage");
        for (const auto& n : names) {
          if (!n.IsScalar() || n.Scalar().empty())
            throw ConfigError(n.Mark(), "a stage is named by its name");
          c.stages.push_back(n.Scalar());
          c.stage_marks.push_back(n.Mark());
        }
      } else if (e.key == "inputs") {
        for (const auto& item : list_of(e)) c.inputs.push_back(read_input(item, diags));
      } else if (e.key == "outputs" || e.key == "dead_letters") {
        auto& into = e.key == "outputs" ? c.outputs : c.dead_letters;
        for (const auto& item : list_of(e))
          into.push_back(read_expectation(item, e.key == "dead_letters", diags));
      } else if (e.key == "ordered") {
        std::string t = text_of(e);
        if (t != "true" && t != "false") throw ConfigError(e.value.Mark(), "'ordered' must be true or false");
        c.ordered = t == "true";
      }
    } catch (const ConfigError& err) {
      diags.error(err.has_mark() ? err.mark() : e.value.Mark(), err.what(), err.hint());
    }
  }
  return c;
}

}  // namespace

Value yaml_to_value(const YAML::Node& node) {
  if (node.IsMap()) {
    Object o;
    for (const auto& kv : node) o.emplace_back(kv.first.Scalar(), yaml_to_value(kv.second));
    return Value(std::move(o));
  }
  if (node.IsSequence()) {
    Array a;
    for (const auto& item : node) a.push_back(yaml_to_value(item));
    return Value(std::move(a));
  }
  if (!node.IsDefined() || node.IsNull()) return Value();
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return Value(s);  // quoted: always text
  static const std::set<std::string> nulls{"null", "Null", "NULL", "~", ""};
  static const std::set<std::string> trues{"true", "True", "TRUE"}, falses{"false", "False", "FALSE"};
  if (nulls.count(s) != 0) return Value();
  if (trues.count(s) != 0) return Value(true);
  if (falses.count(s) != 0) return Value(false);
  if (is_json_number(s)) return Value::from_json_number(s);
  return Value(s);
}

std::optional<TestSuite> parse_test_suite(const std::string& text, const std::string& file,
                                          Diagnostics& diags) {
  if (auto deep = check_yaml_nesting(text)) {
    diags.error(deep->mark, deep->message, deep->hint);
    return std::nullopt;
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    auto explained = explain_yaml_error(text, e);
    diags.error(explained.mark, explained.message, explained.hint);
    return std::nullopt;
  }
  YAML::Mark start;
  start.line = start.column = 0;
  if (!root.IsMap()) {
    diags.error(root.IsDefined() && !root.IsNull() ? root.Mark() : start,
                "a test file must be a YAML map with 'pipeline:' and 'tests:'");
    return std::nullopt;
  }
  TestSuite suite;
  suite.file = file;
  const bool inside_pipeline = static_cast<bool>(root["stages"]);
  YAML::Node tests;
  if (inside_pipeline) {  // the loader checks every other key of a pipeline file
    suite.pipeline_file = file;
    suite.pipeline_mark = start;
    tests = root["tests"];
    if (!tests) {
      diags.error(start, "the pipeline file has no 'tests:'",
                  "add test cases under 'tests:', or give a test file that names this one (docs/testing.md)");
      return std::nullopt;
    }
  } else {
    auto es = entries(root, "test file", {"pipeline", "env", "tests"}, diags);
    const Entry* pipeline = find(es, "pipeline");
    const Entry* cases = find(es, "tests");
    if (!pipeline)
      diags.error(start, "missing 'pipeline:'", "the path of the pipeline file, relative to this one");
    if (!cases) diags.error(start, "missing 'tests:'", "a list of test cases (docs/testing.md)");
    for (const auto& e : es) {
      try {
        if (e.key == "pipeline") {
          std::filesystem::path p(text_of(e));
          if (p.is_relative()) p = std::filesystem::path(file).parent_path() / p;
          suite.pipeline_file = p.lexically_normal().string();
          suite.pipeline_mark = e.value.Mark();
        } else if (e.key == "env") {
          if (!e.value.IsMap())
            throw ConfigError(e.value.Mark(), "'env' must be a map of variable names to values",
                              "e.g. env: {PG_DSN: postgresql://unused}");
          for (const auto& kv : e.value) {
            if (!kv.first.IsScalar() || !kv.second.IsScalar())
              throw ConfigError(kv.first.Mark(), "an 'env' entry is a variable name and a text value");
            suite.env.emplace_back(kv.first.Scalar(), kv.second.Scalar());
          }
        } else if (e.key == "tests") {
          tests = e.value;
        }
      } catch (const ConfigError& err) {
        diags.error(err.has_mark() ? err.mark() : e.value.Mark(), err.what(), err.hint());
      }
    }
  }
  if (tests) {
    if (!tests.IsSequence() || tests.size() == 0) {
      diags.error(tests.Mark(), "'tests' must be a list of test cases",
                  "e.g. tests: [{name: ..., stage: ...}]");
    } else {
      std::map<std::string, YAML::Mark> names;
      for (const auto& node : tests) {
        suite.cases.push_back(read_case(node, diags));
        const auto& c = suite.cases.back();
        if (c.name.empty()) continue;
        auto [it, fresh] = names.emplace(c.name, c.mark);
        if (!fresh)
          diags.error(
              c.mark, "two test cases are named '" + c.name + "'",
              "the other is at line " + std::to_string(it->second.line + 1) + "; names tell failures apart");
      }
    }
  }
  if (!diags.ok()) return std::nullopt;
  return suite;
}

// ---- EventExpectation -------------------------------------------------------------------------

bool EventExpectation::matches(Event& event, std::string& why) const {
  if (reason && event.rejection != *reason) {
    why = "the reason differs";
    return false;
  }
  if (reason_contains && event.rejection.find(*reason_contains) == std::string::npos) {
    why = "the reason does not contain \"" + *reason_contains + "\"";
    return false;
  }
  if (!value && fields.empty() && checks.empty()) return true;
  try {
    if (value && !(event.record() == *value)) {
      why = "its record differs";
      return false;
    }
    for (const auto& [path, want] : fields) {
      Value got = path->eval(event);
      if (!(got == want)) {
        why = "field '" + path->text() + "' is " + got.to_json() + ", not " + want.to_json();
        return false;
      }
    }
    for (const auto& check : checks)
      if (!check->eval_bool(event)) {
        why = "check \"" + check->text() + "\" is false";
        return false;
      }
  } catch (const std::exception& e) {  // a payload that is no JSON, a check that cannot be evaluated
    why = e.what();
    return false;
  }
  return true;
}

std::string EventExpectation::describe() const {
  std::string out;
  auto part = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  if (value) part(value->to_json());
  for (const auto& [path, want] : fields) part(path->text() + " = " + want.to_json());
  for (const auto& check : checks) part("check \"" + check->text() + "\"");
  if (reason) part("reason \"" + *reason + "\"");
  if (reason_contains) part("reason contains \"" + *reason_contains + "\"");
  return out.empty() ? "any event" : out;
}

}  // namespace etld
