#include "daemon/logging.hpp"

#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <functional>
#include <list>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "config/schema/printable.hpp"
#include "config/schema/secrets.hpp"
#include "stages/engine/loggers.hpp"

namespace etld {

namespace {

constexpr std::chrono::seconds kRepeatWindow{10};

std::atomic<spdlog::level::level_enum> g_configured{spdlog::level::info};

// Every log line's message and logger (stage) name go through these flags: a remembered secret is
// masked (config/schema/secrets.hpp), control characters are escaped so that a record's newline cannot
// forge a line (JSON: escaped for a JSON string), and a message is bounded.
constexpr std::size_t kMaxLogMessageBytes = 16 * 1024;

template <Escaping escaping, bool message>
class SafeTextFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string_view raw = message ? std::string_view(msg.payload.data(), msg.payload.size())
                                   : std::string_view(msg.logger_name.data(), msg.logger_name.size());
    std::string out;
    append_printable(out, redact_secrets(raw), escaping, kMaxLogMessageBytes);
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SafeTextFlag>(); }
};

// `text` for a spdlog pattern: a literal, with '%' doubled.
std::string pattern_literal(std::string_view text) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '%') out += '%';
  }
  return out;
}

// The shape of a message: numbers masked, so "retrying in 200 ms" and "retrying in 400 ms" match.
// Only the first kShapeChars count, which bounds the memory a shape takes.
constexpr std::size_t kShapeChars = 512;
std::string message_shape(std::string_view logger, int level, std::string_view text) {
  text = text.substr(0, kShapeChars);
  std::string key;
  key.reserve(logger.size() + text.size() + 4);
  key.append(logger);
  key += '\x1f';
  key += static_cast<char>('0' + level);
  key += '\x1f';
  bool in_number = false;
  for (char c : text) {
    bool digit = c >= '0' && c <= '9';
    if (digit && !in_number) key += '#';
    if (!digit) key += c;
    in_number = digit;
  }
  return key;
}

class RateLimitedSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  RateLimitedSink(std::shared_ptr<spdlog::sinks::sink> inner, std::chrono::milliseconds window,
                  std::size_t max_keys)
      : inner_(std::move(inner)), window_(window), max_keys_(std::max<std::size_t>(1, max_keys)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::warn || msg.level == spdlog::level::off) {
      inner_->log(msg);
      return;
    }
    auto now = Clock::now();
    report_expired(now);
    auto key = message_shape({msg.logger_name.data(), msg.logger_name.size()}, msg.level,
                             {msg.payload.data(), msg.payload.size()});
    auto it = index_.find(key);
    if (it != index_.end()) {
      Entry& e = *it->second;
      if (now - e.since < window_) {
        ++e.repeats;
        // Numbers are masked in the shape, not in what they say: the summary shows the last
        // message too (a retry's delay grows from one message to the next).
        e.last.assign(msg.payload.data(), std::min(msg.payload.size(), kShapeChars));
        return;
      }
      report(e, now);
      order_.erase(it->second);
      index_.erase(it);
    }
    if (index_.size() >= max_keys_) {  // forget the oldest shape, after reporting it
      report(order_.front(), now);
      index_.erase(order_.front().key);
      order_.pop_front();
    }
    order_.push_back(Entry{key, std::string(msg.logger_name.data(), msg.logger_name.size()), msg.level,
                           std::string(msg.payload.data(), std::min(msg.payload.size(), kShapeChars)), now,
                           0});
    index_[key] = std::prev(order_.end());
    inner_->log(msg);
  }

  void flush_() override {
    report_expired(Clock::now());
    inner_->flush();
  }

  void set_pattern_(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::string key, logger;
    spdlog::level::level_enum level;
    std::string text;
    Clock::time_point since;
    std::uint64_t repeats = 0;
    std::string last = {};  // the latest of the repeats
  };

  // Entries are in order of their window's start: the expired ones are at the front.
  void report_expired(Clock::time_point now) {
    while (!order_.empty() && now - order_.front().since >= window_) {
      report(order_.front(), now);
      index_.erase(order_.front().key);
      order_.pop_front();
    }
  }

  void report(const Entry& e, Clock::time_point now) {
    if (e.repeats == 0) return;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - e.since).count();
    auto text =
        fmt::format("{} ... repeated {} times in the last {}s", e.text, e.repeats, std::max<long>(1, secs));
    if (e.last != e.text) text += fmt::format("; the last: {}", e.last);
    spdlog::details::log_msg msg(e.logger, e.level, text);
    inner_->log(msg);
  }

  std::shared_ptr<spdlog::sinks::sink> inner_;
  std::chrono::milliseconds window_;
  std::size_t max_keys_;
  std::list<Entry> order_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace

spdlog::level::level_enum parse_log_level(const std::string& name) {
  auto lvl = spdlog::level::from_str(name);
  if (lvl == spdlog::level::off && name != "off")
    throw std::invalid_argument("unknown log level '" + name +
                                "' (trace, debug, info, warn, error, critical, off)");
  return lvl;
}

spdlog::level::level_enum current_log_level() { return spdlog::default_logger()->level(); }
spdlog::level::level_enum configured_log_level() { return g_configured.load(); }
void set_log_level(spdlog::level::level_enum level) { set_all_log_levels(level); }

std::shared_ptr<spdlog::sinks::sink> make_rate_limited_sink(std::shared_ptr<spdlog::sinks::sink> inner,
                                                            std::chrono::milliseconds window,
                                                            std::size_t max_keys) {
  return std::make_shared<RateLimitedSink>(std::move(inner), window, max_keys);
}

std::unique_ptr<spdlog::formatter> make_log_formatter(const std::string& format,
                                                      const std::string& pipeline) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (format == "json") {
    formatter->add_flag<SafeTextFlag<Escaping::json, true>>('j');
    formatter->add_flag<SafeTextFlag<Escaping::json, false>>('J');
    formatter->set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","pipeline":")" +
        pattern_literal(printable(redact_secrets(pipeline), std::string::npos, Escaping::json)) +
        R"(","stage":"%J","msg":"%j"})");
  } else if (format == "text") {
    formatter->add_flag<SafeTextFlag<Escaping::text, true>>('q');
    formatter->add_flag<SafeTextFlag<Escaping::text, false>>('Q');
    formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%Q] %q");
  } else {
    throw std::invalid_argument("unknown log format '" + format + "' (text, json)");
  }
  return formatter;
}

void setup_logging(const std::string& level, const std::string& format, const std::string& pipeline) {
  auto lvl = parse_log_level(level);
  auto stderr_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  stderr_sink->set_formatter(make_log_formatter(format, pipeline));
  auto logger = std::make_shared<spdlog::logger>("etld", make_rate_limited_sink(stderr_sink, kRepeatWindow));
  logger->set_level(lvl);
  g_configured = lvl;
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));  // also reports pending repeat counts
}

namespace {
struct LevelSignals {
  explicit LevelSignals(boost::asio::any_io_executor ex) : set(ex, SIGUSR1, SIGUSR2) {}
  boost::asio::signal_set set;
};

void wait_level_signal(std::weak_ptr<LevelSignals> weak) {
  auto self = weak.lock();
  if (!self) return;
  self->set.async_wait([weak](boost::system::error_code ec, int signo) {
    if (ec) return;
    auto level = configured_log_level();
    if (signo == SIGUSR1) {
      auto now = current_log_level();
      level = now > spdlog::level::trace ? static_cast<spdlog::level::level_enum>(now - 1) : now;
    }
    set_log_level(level);
    spdlog::warn("{}: log level now {}", signo == SIGUSR1 ? "SIGUSR1" : "SIGUSR2",
                 spdlog::level::to_string_view(level));
    wait_level_signal(weak);
  });
}
}  // namespace

std::shared_ptr<void> handle_log_level_signals(boost::asio::any_io_executor executor) {
  auto signals = std::make_shared<LevelSignals>(executor);
  wait_level_signal(signals);
  return signals;
}

}  // namespace etld
