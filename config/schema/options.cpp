#include "config/schema/options.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "config/schema/diagnostics.hpp"
#include "config/schema/secrets.hpp"

namespace etld {

const char* option_kind_name(OptionKind kind) {
  switch (kind) {
    case OptionKind::string: return "string";
    case OptionKind::integer: return "integer";
    case OptionKind::number: return "number";
    case OptionKind::boolean: return "boolean";
    case OptionKind::duration: return "duration";
    case OptionKind::string_list: return "list of strings";
    case OptionKind::string_map: return "map of strings";
    case OptionKind::choice: return "choice";
    case OptionKind::mapping: return "mapping";
    case OptionKind::sequence: return "sequence";
    case OptionKind::any: return "any";
  }
  return "?";
}

namespace {

// How a node looks, for "got ..." in messages.
std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return "'" + node.Scalar() + "'";
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool valid_var_name(std::string_view name) {
  if (name.empty()) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// The contents of a ${file:} secret, remembered as a secret (config/schema/secrets.hpp). Only a regular
// file of at most kMaxSecretFileBytes is read: /dev/zero or a FIFO would never end, and a message
// never shows what was read.
std::string read_secret_file(const std::string& path, const YAML::Mark& mark) {
  if (path.empty()) throw ConfigError(mark, "empty path in '${file:}'", "write ${file:/path/to/secret}");
  auto fail = [&](const std::string& why, std::string hint = {}) {
    return ConfigError(mark, "cannot read secret file '" + path + "': " + why, std::move(hint));
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw fail(std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw fail(std::string("it is ") + file_kind(st.st_mode) + ", not a regular file",
               "point ${file:...} at a file that holds the secret");
  const std::string too_big = "it is larger than " + std::to_string(kMaxSecretFileBytes) + " bytes";
  if (static_cast<std::uint64_t>(st.st_size) > kMaxSecretFileBytes)
    throw fail(too_big, "a ${file:...} secret is read whole into the configuration");
  std::string text;
  char buf[8192];
  for (;;) {  // st_size may lie (a file that grows, procfs): the bound holds on what is read
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail(std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxSecretFileBytes)
      throw fail(too_big, "a ${file:...} secret is read whole into the configuration");
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  remember_secret(text);
  return text;
}

// The expanded text of a scalar node; throws for maps, lists and nothing.
std::string scalar_text(const YAML::Node& node, const char* expected) {
  if (!node.IsDefined() || !node.IsScalar())
    throw ConfigError(node.IsDefined() ? node.Mark() : YAML::Mark::null_mark(),
                      std::string("expected ") + expected + "; got " + describe(node));
  return expand_vars(node.Scalar(), node.Mark());
}

bool parse_int(const std::string& text, std::int64_t& out) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;
  if (begin == end) return false;
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end;
}

bool parse_double(const std::string& text, double& out) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;
  if (begin == end) return false;
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end && std::isfinite(out);
}

bool parse_bool(const std::string& text, bool& out) {
  std::string t = lower(text);
  if (t == "true" || t == "yes" || t == "on") return out = true, true;
  if (t == "false" || t == "no" || t == "off") return out = false, true;
  return false;
}

[[noreturn]] void rethrow_named(const std::string& name, const ConfigError& e) {
  throw ConfigError(e.mark(), "option '" + name + "': " + e.what(), e.hint());
}

}  // namespace

std::string shown(const YAML::Node& node, const std::string& text) {
  if (node.Scalar() == text) return "'" + text + "'";
  return "the expansion of '" + node.Scalar() + "'";
}

std::string expand_vars(const std::string& text, const YAML::Mark& mark) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {  // escaped: a literal "${"
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    std::size_t close = text.find('}', i + 2);
    if (close == std::string::npos)
      throw ConfigError(mark, "unterminated '${' in '" + text + "'", "write $${ for a literal ${");
    std::string body = text.substr(i + 2, close - i - 2);
    i = close + 1;
    if (body.rfind("file:", 0) == 0) {
      out += read_secret_file(body.substr(5), mark);
      continue;
    }
    std::string name = body;
    std::optional<std::string> fallback;
    if (auto sep = body.find(":-"); sep != std::string::npos) {
      name = body.substr(0, sep);
      fallback = body.substr(sep + 2);
    }
    if (!valid_var_name(name))
      throw ConfigError(mark, "invalid variable name '" + name + "' in '${" + body + "}'",
                        "use ${NAME}, ${NAME:-default} or ${file:/path}; write $${ for a literal ${");
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && (*value != '\0' || !fallback)) {
      // A variable named like a secret (DB_PASSWORD, API_TOKEN) is one, as a ${file:} is.
      if (is_secret_setting(name)) remember_secret(value);
      out += value;
    } else if (fallback) {
      out += *fallback;
    } else {
      throw ConfigError(mark, "environment variable '" + name + "' is not set",
                        "set it, or give a default with ${" + name + ":-default}");
    }
  }
  return out;
}

std::chrono::milliseconds parse_duration(const YAML::Node& node) {
  static const char* expected = "a duration such as 100ms, 5s, 2m";
  std::string text = scalar_text(node, expected);
  auto fail = [&]() -> ConfigError {
    return ConfigError(node.Mark(), std::string("expected ") + expected + "; got " + shown(node, text),
                       "units are ms, s, m and h; a bare number is milliseconds");
  };
  std::size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
    ++digits;
  if (digits == 0 || !std::isdigit(static_cast<unsigned char>(text[0]))) throw fail();
  double amount = 0;
  if (!parse_double(text.substr(0, digits), amount)) throw fail();
  std::string unit = text.substr(digits);
  double scale = 0;
  if (unit.empty() || unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    throw fail();
  }
  double ms = std::round(amount * scale);
  if (ms > 1e15) throw fail();
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::string scalar_string(const YAML::Node& node) { return scalar_text(node, "a string"); }

std::int64_t scalar_int(const YAML::Node& node) {
  std::string text = scalar_text(node, "an integer");
  std::int64_t value = 0;
  if (!parse_int(text, value))
    throw ConfigError(node.Mark(), "expected an integer; got " + shown(node, text));
  return value;
}

namespace {

double scalar_number(const YAML::Node& node) {
  std::string text = scalar_text(node, "a number");
  double value = 0;
  if (!parse_double(text, value))
    throw ConfigError(node.Mark(), "expected a number; got " + shown(node, text));
  return value;
}

bool scalar_bool(const YAML::Node& node) {
  std::string text = scalar_text(node, "true or false");
  bool value = false;
  if (!parse_bool(text, value))
    throw ConfigError(node.Mark(), "expected true or false; got " + shown(node, text));
  return value;
}

std::vector<std::string> string_list(const YAML::Node& node) {
  static const char* expected = "a list of strings such as [a, b]";
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(expand_vars(node.Scalar(), node.Mark()));
    return out;
  }
  if (!node.IsSequence())
    throw ConfigError(node.Mark(), std::string("expected ") + expected + "; got " + describe(node));
  for (const auto& item : node) {
    if (!item.IsScalar())
      throw ConfigError(item.Mark(),
                        std::string("expected ") + expected + "; got " + describe(item) + " in the list");
    out.push_back(expand_vars(item.Scalar(), item.Mark()));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> string_map(const YAML::Node& node) {
  static const char* expected = "a map of strings such as {key: value}";
  if (!node.IsMap())
    throw ConfigError(node.Mark(), std::string("expected ") + expected + "; got " + describe(node));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar())
      throw ConfigError(kv.first.Mark(), std::string("expected ") + expected + "; got a non-scalar key");
    if (!kv.second.IsScalar())
      throw ConfigError(kv.second.Mark(), std::string("expected ") + expected + "; got " +
                                              describe(kv.second) + " as the value of '" + kv.first.Scalar() +
                                              "'");
    out.emplace_back(kv.first.Scalar(), expand_vars(kv.second.Scalar(), kv.second.Mark()));
  }
  return out;
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  return out;
}

}  // namespace

void check_option(const OptionSpec& spec, const YAML::Node& value) {
  try {
    if (value.IsNull() && spec.kind != OptionKind::any)
      throw ConfigError(value.Mark(), std::string("has no value; expected ") +
                                          (spec.kind == OptionKind::choice
                                               ? "one of " + quoted_list(spec.choices)
                                               : std::string("a ") + option_kind_name(spec.kind)));
    switch (spec.kind) {
      case OptionKind::string: scalar_string(value); break;
      case OptionKind::integer: scalar_int(value); break;
      case OptionKind::number: scalar_number(value); break;
      case OptionKind::boolean: scalar_bool(value); break;
      case OptionKind::duration: parse_duration(value); break;
      case OptionKind::string_list: string_list(value); break;
      case OptionKind::string_map: string_map(value); break;
      case OptionKind::choice: {
        std::string text = scalar_text(value, "one of the choices");
        bool found = false;
        for (const auto& c : spec.choices) found = found || c == text;
        if (!found) {
          std::string hint = did_you_mean(text, spec.choices);
          throw ConfigError(value.Mark(),
                            "expected one of " + quoted_list(spec.choices) + "; got " + shown(value, text),
                            hint);
        }
        break;
      }
      case OptionKind::mapping:
        if (!value.IsMap()) throw ConfigError(value.Mark(), "expected a map; got " + describe(value));
        break;
      case OptionKind::sequence:
        if (!value.IsSequence()) throw ConfigError(value.Mark(), "expected a list; got " + describe(value));
        break;
      case OptionKind::any: break;
    }
  } catch (const ConfigError& e) {
    rethrow_named(spec.name, e);
  }
}

YAML::Node default_value(const OptionSpec& spec) {
  if (spec.default_text.empty()) return YAML::Node(YAML::NodeType::Null);
  auto wrong = [&](const std::string& why) {
    return std::logic_error("option '" + spec.name + "': its default '" + spec.default_text + "' " + why);
  };
  YAML::Node node;
  try {
    node = YAML::Load(spec.default_text);
  } catch (const YAML::Exception& e) {
    throw wrong(std::string("is not YAML: ") + e.what());
  }
  try {
    check_option(spec, node);
  } catch (const ConfigError& e) {
    throw wrong(std::string("does not fit its own spec: ") + e.what());
  }
  return node;
}

Options::Options(YAML::Node stage_node, const std::vector<OptionSpec>* specs)
    : node_(std::move(stage_node)), specs_(specs) {}

bool Options::has(const std::string& name) const {
  if (!node_.IsDefined() || !node_.IsMap()) return false;
  const YAML::Node& map = node_;
  YAML::Node value = map[name];
  return value.IsDefined() && !value.IsNull();
}

YAML::Mark Options::mark(const std::string& name) const {
  if (!node_.IsDefined()) return YAML::Mark::null_mark();
  if (node_.IsMap()) {
    const YAML::Node& map = node_;
    YAML::Node value = map[name];
    if (value.IsDefined()) return value.Mark();
  }
  return node_.Mark();
}

YAML::Node Options::node(const std::string& name) const {
  if (!node_.IsDefined() || !node_.IsMap()) return YAML::Node();
  const YAML::Node& map = node_;
  YAML::Node value = map[name];
  return value.IsDefined() ? value : YAML::Node();
}

const OptionSpec* Options::spec(const std::string& name) const {
  if (specs_ == nullptr) return nullptr;
  for (const auto& s : *specs_)
    if (s.name == name) return &s;
  return nullptr;
}

YAML::Node Options::default_node(const std::string& name) const {
  const OptionSpec* s = spec(name);
  return s == nullptr ? YAML::Node(YAML::NodeType::Null) : default_value(*s);
}

YAML::Node Options::value(const std::string& name) const {
  if (has(name)) return node(name);
  YAML::Node d = default_node(name);
  if (d.IsNull())
    throw std::logic_error("option '" + name + "' is absent and " +
                           (spec(name) == nullptr ? std::string("not declared by the stage type")
                                                  : std::string("its spec declares no default")) +
                           ": read it only when has() is true");
  return d;
}

// The option's value, or its spec's default, read by `parse`; errors name the option.
template <class Parse>
auto Options::read(const std::string& name, Parse parse) const -> decltype(parse(YAML::Node())) {
  YAML::Node v = value(name);
  try {
    return parse(v);
  } catch (const ConfigError& e) {
    rethrow_named(name, e);
  }
}

std::string Options::get_string(const std::string& name) const { return read(name, scalar_string); }

std::int64_t Options::get_int(const std::string& name) const { return read(name, scalar_int); }

double Options::get_number(const std::string& name) const { return read(name, scalar_number); }

bool Options::get_bool(const std::string& name) const { return read(name, scalar_bool); }

std::chrono::milliseconds Options::get_duration(const std::string& name) const {
  return read(name, parse_duration);
}

std::vector<std::string> Options::get_string_list(const std::string& name) const {
  YAML::Node v = has(name) ? node(name) : default_node(name);
  if (v.IsNull()) return {};
  try {
    return string_list(v);
  } catch (const ConfigError& e) {
    rethrow_named(name, e);
  }
}

std::vector<std::pair<std::string, std::string>> Options::get_string_map(const std::string& name) const {
  YAML::Node v = has(name) ? node(name) : default_node(name);
  if (v.IsNull()) return {};
  try {
    return string_map(v);
  } catch (const ConfigError& e) {
    rethrow_named(name, e);
  }
}

}  // namespace etld
