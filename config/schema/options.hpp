// Stage options: each stage type declares its options once (OptionSpec); that declaration
// drives parsing, validation (unknown keys, types, required), the value of an absent option (its
// default) and the generated reference docs.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace etld {

enum class OptionKind {
  string,       // scalar text; ${VAR}, ${VAR:-default} and ${file:/path} are expanded
  integer,      // whole number
  number,       // floating point
  boolean,      // true/false
  duration,     // "100ms", "5s", "2m", "1h" or a bare number of milliseconds
  string_list,  // [a, b] (a single scalar is accepted as a one-element list)
  string_map,   // {k: v} of scalars, values expanded like strings
  choice,       // one of OptionSpec::choices
  mapping,      // free-form YAML map, validated by the stage itself
  sequence,     // free-form YAML sequence, validated by the stage itself
  any,          // free-form YAML, validated by the stage itself
};

struct OptionSpec {
  std::string name;
  OptionKind kind = OptionKind::string;
  std::string doc;  // one sentence for the reference
  bool required = false;
  // The value of the option when it is absent, written as a user would write it and read by the
  // same rules (its kind, its choices, ${...}), so that the reference shows the value used. "" =
  // none: the stage asks has(), or the default depends on other options and `doc` says how.
  std::string default_text;
  std::vector<std::string> choices;  // for OptionKind::choice
};

const char* option_kind_name(OptionKind kind);

// The spec's default_text read as if a user had written it, checked by check_option; a Null node
// when it has none. A default that does not fit its own spec is a programming error:
// std::logic_error.
YAML::Node default_value(const OptionSpec& spec);

// A stage's options as written, checked against its specs. Accessors expand ${...} and throw
// ConfigError located at the offending node. Read-only after validation; safe to share.
//
// The scalar getters return the option as written or, when it is absent, its spec's default.
// Reading an absent option whose spec declares no default (or no spec at all) is a programming
// error, std::logic_error: ask has() first. The list and map getters return {} instead.
class Options {
 public:
  Options() = default;
  Options(YAML::Node stage_node, const std::vector<OptionSpec>* specs);
  Options(const Options&) = default;
  // Rebinds to other's node: yaml-cpp's Node::operator= writes through to the node this one
  // refers to, which a copied Options shares with its original, and would change that one too.
  Options& operator=(const Options& other) {
    node_.reset(other.node_);
    specs_ = other.specs_;
    return *this;
  }

  bool has(const std::string& name) const;
  YAML::Mark mark(const std::string& name) const;  // of the value, or of the stage when absent
  YAML::Node node(const std::string& name) const;  // raw node (Null when absent)

  // The option's default from its spec (Null when none), e.g. for a mapping whose keys default
  // one by one.
  YAML::Node default_node(const std::string& name) const;

  std::string get_string(const std::string& name) const;
  std::int64_t get_int(const std::string& name) const;
  double get_number(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  std::chrono::milliseconds get_duration(const std::string& name) const;
  std::vector<std::string> get_string_list(const std::string& name) const;
  std::vector<std::pair<std::string, std::string>> get_string_map(const std::string& name) const;

 private:
  const OptionSpec* spec(const std::string& name) const;
  // The node a getter reads: the option as written, else its default; std::logic_error if neither.
  YAML::Node value(const std::string& name) const;
  template <class Parse>
  auto read(const std::string& name, Parse parse) const -> decltype(parse(YAML::Node()));

  YAML::Node node_;
  const std::vector<OptionSpec>* specs_ = nullptr;
};

// The largest ${file:} secret: a file is read whole into the configuration.
inline constexpr std::size_t kMaxSecretFileBytes = 1024 * 1024;

// Expands ${VAR}, ${VAR:-default} and ${file:/path/to/secret} in one scalar. Throws ConfigError
// at `mark` for an unset variable without default, or a file that cannot be read, is not a regular
// file or is larger than kMaxSecretFileBytes. A file's contents are remembered as a secret
// (config/schema/secrets.hpp) and never shown in a message.
std::string expand_vars(const std::string& text, const YAML::Mark& mark);

// A scalar for a message: 'text' as written when it had no ${...}; otherwise named by what was
// written ("the expansion of '${file:/x}'"), so that an expanded secret never lands in an error
// message or a log. `text` is the node's expanded value.
std::string shown(const YAML::Node& node, const std::string& text);

// Scalar conversions shared by Options and stages that validate nested maps themselves.
std::chrono::milliseconds parse_duration(const YAML::Node& node);  // throws ConfigError
std::string scalar_string(const YAML::Node& node);                 // expanded; throws ConfigError
std::int64_t scalar_int(const YAML::Node& node);                   // throws ConfigError

// Checks that `value` (present, possibly null) fits `spec`: its kind, a choice among
// spec.choices, and that ${...} expands. Messages name the option; throws ConfigError at `value`.
void check_option(const OptionSpec& spec, const YAML::Node& value);

}  // namespace etld
