// Helpers shared by the builtin transforms: Rejecter, the one place where an event with bad data
// leaves a transform (dead-lettered, logged rate-limited), and compile_expr_option, which compiles
// an expression written in a stage option and turns a syntax error into a located ConfigError.
// Threading: a Rejecter belongs to one stage instance and is used on its strand only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "config/schema/diagnostics.hpp"
#include "stages/engine/event.hpp"
#include "stages/engine/stage.hpp"
#include "stages/expr/expr.hpp"

namespace etld {

// Rejects events a transform cannot process (an expression failed on their data, their payload
// is not JSON): marks them with the reason and passes them on, so that they reach their sink's
// dead-letter destination with their raw bytes and coordinates (see Event::rejection). Logs the
// first kFirstLogged with their reason and origin, then at most one summary per kSummaryEvery,
// so a flood of bad records cannot flood the log.
class Rejecter {
 public:
  static constexpr std::uint64_t kFirstLogged = 5;
  static constexpr std::chrono::seconds kSummaryEvery{10};

  void bind(StageContext& ctx) {
    log_ = &ctx.log();
    stage_ = ctx.stage_name();
  }

  // Marks `event` and moves it to `out`.
  void reject(Batch& out, Event& event, const std::string& reason) {
    mark(event, reason);
    out.push_back(std::move(event));
  }

  // Marks `event` where it is (for a transform that passes its input batch on as it is).
  void mark(Event& event, const std::string& reason) {
    ++count_;
    if (count_ <= kFirstLogged) {
      if (count_ == kFirstLogged) last_summary_ = std::chrono::steady_clock::now();
      log().warn("rejected event from {}[{}]@{}: {}{}", origin(event.topic.str()), event.partition,
                 event.offset, reason, count_ == kFirstLogged ? " (further rejections are summarised)" : "");
    } else {
      ++suppressed_;
      last_reason_ = reason;
      auto now = std::chrono::steady_clock::now();
      if (now - last_summary_ >= kSummaryEvery) summarise(now);
    }
    event.rejection = "stage '" + stage_ + "': " + reason;
  }

  // Logs what the rate limit held back (at end of input, so nothing goes unreported).
  void flush() {
    if (suppressed_ > 0) summarise(std::chrono::steady_clock::now());
  }

  std::uint64_t count() const { return count_; }

 private:
  static const std::string& origin(const std::string& topic) {
    static const std::string none = "-";
    return topic.empty() ? none : topic;
  }

  void summarise(std::chrono::steady_clock::time_point now) {
    log().warn("rejected {} more events ({} in total); last reason: {}", suppressed_, count_, last_reason_);
    suppressed_ = 0;
    last_summary_ = now;
  }

  spdlog::logger& log() { return log_ ? *log_ : *spdlog::default_logger_raw(); }

  spdlog::logger* log_ = nullptr;
  std::string stage_;
  std::uint64_t count_ = 0;
  std::uint64_t suppressed_ = 0;
  std::string last_reason_;
  std::chrono::steady_clock::time_point last_summary_{};
};

// `text` in double quotes; a long one only around `column`, with "..." where it was cut, so that
// an error about a hostile 60,000-character expression stays one readable line.
inline std::string quoted_excerpt(const std::string& text, std::size_t column) {
  constexpr std::size_t kShown = 120;
  if (text.size() <= kShown) return "\"" + text + "\"";
  std::size_t from = column > kShown / 2 ? std::min(column - kShown / 2, text.size() - kShown) : 0;
  return std::string(from > 0 ? "..." : "") + "\"" + text.substr(from, kShown) + "\"" +
         (from + kShown < text.size() ? "..." : "");
}

// Compiles the expression `text` of option `option` (located at `mark`). A syntax error becomes
// a ConfigError at that mark naming the option, the 0-based column and the expression.
// `column_offset` shifts columns when the expression is embedded in a larger text ("sum(x)").
inline Expr compile_expr_option(const std::string& text, const std::string& option, const YAML::Mark& mark,
                                const std::string& whole_text = {}, std::size_t column_offset = 0) {
  try {
    return Expr::compile(text);
  } catch (const ExprSyntaxError& e) {
    const std::string& shown = whole_text.empty() ? text : whole_text;
    std::string message = e.what();
    // The parser says "... at column N" relative to `text`; restate it relative to `shown`.
    auto at = message.rfind(" at column ");
    if (at != std::string::npos) message.erase(at);
    std::size_t column = e.column + column_offset;
    throw ConfigError(mark, option + ": invalid expression: " + message + " at column " +
                                std::to_string(column) + " of " + quoted_excerpt(shown, column));
  }
}

// The position of the value of `key` in the map option `map` (e.g. one entry of map's `set`), or
// `fallback` when it cannot be found.
inline YAML::Mark option_entry_mark(const YAML::Node& map, const std::string& key,
                                    const YAML::Mark& fallback) {
  if (map.IsMap())
    for (const auto& kv : map)
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second.Mark();
  return fallback;
}

}  // namespace etld
