// Process-wide logging: human text or JSON lines on stderr, repeated warnings and errors
// rate-limited, and the level changeable at runtime (admin endpoint, SIGUSR1/SIGUSR2).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <string>

#include <spdlog/common.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/sink.h>

namespace etld {

// Throws std::invalid_argument for an unknown level or format.
void setup_logging(const std::string& level, const std::string& format, const std::string& pipeline);

// The formatter of setup_logging's lines: "text" or "json" (one object per line). In both, the
// message and the stage name are scrubbed of remembered secrets (config/schema/secrets.hpp), their control
// characters escaped (a record's newline cannot forge a line) and a message is cut at 16 KiB; in
// JSON every field is escaped, the pipeline name too. Throws std::invalid_argument for another format.
std::unique_ptr<spdlog::formatter> make_log_formatter(const std::string& format, const std::string& pipeline);

// "trace" ... "off" -> level; throws std::invalid_argument naming the valid ones.
spdlog::level::level_enum parse_log_level(const std::string& name);
// The level in force now, and the one setup_logging configured.
spdlog::level::level_enum current_log_level();
spdlog::level::level_enum configured_log_level();
// Changes the level of every logger at runtime.
void set_log_level(spdlog::level::level_enum level);

// Wraps `inner`: a warning or error whose message has the same shape (the same stage, level and
// text once numbers are masked) as one logged less than `window` ago is counted instead of
// written; when the window ends the count is logged as "<first message> ... repeated N times in
// the last Ts" (at the next such message or the next flush(), which spdlog runs every second).
// At most `max_keys` shapes are tracked (the oldest are reported and forgotten).
std::shared_ptr<spdlog::sinks::sink> make_rate_limited_sink(std::shared_ptr<spdlog::sinks::sink> inner,
                                                            std::chrono::milliseconds window,
                                                            std::size_t max_keys = 1024);

// SIGUSR1 raises verbosity one step (info -> debug -> trace), SIGUSR2 restores the configured
// level; handled on `executor` for as long as the returned object lives.
std::shared_ptr<void> handle_log_level_signals(boost::asio::any_io_executor executor);

}  // namespace etld
