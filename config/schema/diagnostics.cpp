#include "config/schema/diagnostics.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <tuple>

#include "config/schema/secrets.hpp"

namespace etld {

std::string Diagnostic::format() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line) + ':' + std::to_string(column > 0 ? column : 1);
  }
  out += ": error: ";
  out += message;
  if (!hint.empty()) out += " (" + hint + ")";
  return redact_secrets(out);  // a library's message inside may quote a secret
}

ConfigError::ConfigError(const YAML::Mark& mark, std::string message, std::string hint)
    : std::runtime_error(std::move(message)), mark_(mark), hint_(std::move(hint)) {}

ConfigError::ConfigError(std::string message, std::string hint)
    : std::runtime_error(std::move(message)), hint_(std::move(hint)) {}

void ConfigErrors::throw_if_any(std::vector<ConfigError> all) {
  if (all.empty()) return;
  if (all.size() == 1) throw ConfigError(std::move(all.front()));
  throw ConfigErrors(std::move(all));
}

void Diagnostics::error(const YAML::Mark& mark, std::string message, std::string hint) {
  Diagnostic d;
  d.file = file_;
  if (mark.line >= 0) {  // yaml-cpp marks are 0-based
    d.line = mark.line + 1;
    d.column = mark.column + 1;
  }
  d.message = std::move(message);
  d.hint = std::move(hint);
  // Keep items in file order; problems at the same position stay in the order they were found.
  auto pos = std::upper_bound(items_.begin(), items_.end(), d, [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  items_.insert(pos, std::move(d));
}

void Diagnostics::error(const ConfigError& e) { error(e.mark(), e.what(), e.hint()); }

std::string Diagnostics::format() const {
  std::string out;
  for (const auto& d : items_) {
    out += d.format();
    out += '\n';
  }
  return out;
}

namespace {

// Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions),
// case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

}  // namespace

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::size_t threshold = std::max<std::size_t>(2, word.size() / 3);
  std::size_t best = std::numeric_limits<std::size_t>::max();
  const std::string* choice = nullptr;
  for (const auto& c : candidates) {
    std::size_t dist = edit_distance(word, c);
    if (dist < best) {
      best = dist;
      choice = &c;
    }
  }
  if (choice == nullptr || best > threshold || best >= std::max(word.size(), choice->size())) return {};
  return "did you mean '" + *choice + "'?";
}

}  // namespace etld
