// Configuration problems, each located at file:line:column and collected together, so one run of
// `etld validate` reports every mistake with what was expected and, for typos, a did-you-mean.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace etld {

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (a missing file)
  int column = 0;  // 1-based
  std::string message;
  std::string hint;            // "did you mean 'topics'?" or how to fix it; may be empty
  std::string format() const;  // "file:line:col: error: message (hint)", remembered secrets masked
};

// Thrown by option accessors and stage factories; carries the YAML position of the culprit.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const YAML::Mark& mark, std::string message, std::string hint = {});
  explicit ConfigError(std::string message, std::string hint = {});
  const YAML::Mark& mark() const { return mark_; }
  const std::string& hint() const { return hint_; }
  bool has_mark() const { return mark_.line >= 0; }

 private:
  YAML::Mark mark_ = YAML::Mark::null_mark();
  std::string hint_;
};

// Several independent problems a stage's configure found (each bad expression of a map's `set`),
// thrown together so that `etld validate` lists them all; what() is the first one's message.
class ConfigErrors : public ConfigError {
 public:
  explicit ConfigErrors(std::vector<ConfigError> all) : ConfigError(all.front()), all_(std::move(all)) {}
  const std::vector<ConfigError>& all() const { return all_; }
  // Throws nothing when `all` is empty, `all`'s one error alone, else a ConfigErrors.
  static void throw_if_any(std::vector<ConfigError> all);

 private:
  std::vector<ConfigError> all_;
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  void error(const YAML::Mark& mark, std::string message, std::string hint = {});
  void error(const ConfigError& e);
  bool ok() const { return items_.empty(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  std::string format() const;  // one line per problem, in file order
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<Diagnostic> items_;
};

// "did you mean 'x'?" for the closest candidate within a small edit distance, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace etld
