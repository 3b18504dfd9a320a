// Logging: repeated warnings and errors are rate-limited with counts; the level changes at runtime
// for every stage logger.
#include "daemon/logging.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "config/schema/secrets.hpp"
#include "stages/engine/loggers.hpp"
#include "stages/engine/value.hpp"

using namespace etld;
using namespace std::chrono_literals;

namespace {

// Keeps every line it is given, as "logger level message".
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.push_back(fmt::format("{} {} {}", std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                                 spdlog::level::to_string_view(msg.level),
                                 std::string_view(msg.payload.data(), msg.payload.size())));
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

}  // namespace

TEST_CASE("repeated warnings of one shape: the first is logged, the rest counted and reported once") {
  auto capture = std::make_shared<CaptureSink>();
  auto limited = make_rate_limited_sink(capture, 200ms);
  spdlog::logger log("kafka_in", limited);
  log.set_level(spdlog::level::trace);
  for (int i = 0; i < 5; ++i) log.warn("commit of orders[{}]@{} failed", i % 2, 1000 + i);
  log.error("commit of orders[0]@1 failed");               // another level: another shape
  for (int i = 0; i < 3; ++i) log.info("progress {}", i);  // below warn: never limited
  CHECK(capture->lines() == std::vector<std::string>{"kafka_in warning commit of orders[0]@1000 failed",
                                                     "kafka_in error commit of orders[0]@1 failed",
                                                     "kafka_in info progress 0", "kafka_in info progress 1",
                                                     "kafka_in info progress 2"});
  std::this_thread::sleep_for(250ms);
  log.warn("commit of orders[1]@2000 failed");  // the window has passed: report, then log this one
  auto lines = capture->lines();
  REQUIRE(lines.size() == 7);
  CHECK(lines[5].starts_with(
      "kafka_in warning commit of orders[0]@1000 failed ... repeated 4 times in the last "));
  CHECK(lines[6] == "kafka_in warning commit of orders[1]@2000 failed");
}

TEST_CASE("a pending count is reported at the next flush once its window ends, and only once") {
  auto capture = std::make_shared<CaptureSink>();
  spdlog::logger log("pg", make_rate_limited_sink(capture, 100ms));
  log.warn("PostgreSQL unavailable: retrying in 100 ms");
  log.warn("PostgreSQL unavailable: retrying in 200 ms");
  log.flush();  // window not over yet: nothing to report
  CHECK(capture->lines().size() == 1);
  std::this_thread::sleep_for(150ms);
  log.flush();
  log.flush();
  auto lines = capture->lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].starts_with("pg warning PostgreSQL unavailable: retrying in 100 ms ... repeated 1 times"));
  // The delay grew: the summary says what the last message said, not only the first.
  CHECK(lines[1].ends_with("; the last: PostgreSQL unavailable: retrying in 200 ms"));
}

TEST_CASE("the same text from two stages is two shapes; the table of shapes is bounded") {
  auto capture = std::make_shared<CaptureSink>();
  auto limited = make_rate_limited_sink(capture, 10s, /*max_keys=*/2);
  spdlog::logger a("a", limited), b("b", limited);
  a.warn("boom");
  b.warn("boom");
  a.warn("boom");  // counted
  CHECK(capture->lines().size() == 2);
  a.warn("other trouble");  // a third shape: the oldest ("a boom") is reported and forgotten
  auto lines = capture->lines();
  REQUIRE(lines.size() == 4);
  CHECK(lines[2].starts_with("a warning boom ... repeated 1 times"));
  CHECK(lines[3] == "a warning other trouble");
  a.warn("boom");  // forgotten, so logged again
  CHECK(capture->lines().back() == "a warning boom");
}

TEST_CASE("the log level changes at runtime for the default logger and every live stage logger") {
  setup_logging("info", "text", "test");
  auto stage = make_stage_logger("stage_x");
  CHECK(stage->level() == spdlog::level::info);
  set_log_level(parse_log_level("debug"));
  CHECK(current_log_level() == spdlog::level::debug);
  CHECK(stage->level() == spdlog::level::debug);
  CHECK(configured_log_level() == spdlog::level::info);
  auto later = make_stage_logger("stage_y");  // new loggers take the level in force
  CHECK(later->level() == spdlog::level::debug);
  set_log_level(configured_log_level());
  CHECK(stage->level() == spdlog::level::info);
  CHECK(later->level() == spdlog::level::info);
  CHECK_THROWS_WITH_AS(parse_log_level("loud"), doctest::Contains("trace, debug, info"),
                       std::invalid_argument);
  CHECK(parse_log_level("off") == spdlog::level::off);
}

namespace {

// The lines `formatter` makes of the messages logged through a logger named `logger_name`.
std::vector<std::string> formatted(std::unique_ptr<spdlog::formatter> formatter,
                                   const std::string& logger_name,
                                   const std::function<void(spdlog::logger&)>& log_some) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(std::move(formatter));
  spdlog::logger log(logger_name, sink);
  log.set_level(spdlog::level::trace);
  log_some(log);
  log.flush();
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("text log lines: a record's newline or terminal escape cannot forge a line, secrets are masked") {
  remember_secret("log-secret-7781");
  auto lines = formatted(make_log_formatter("text", "p"), "db\nFAKE", [](spdlog::logger& log) {
    log.warn("rejected: column name (text): 'x\n2026-01-01 00:00:00.000 error [db] forged\x1b[2J'");
    log.error("cannot connect: password log-secret-7781 refused");
  });
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find(" [db\\nFAKE] rejected: column name (text): 'x\\n2026-01-01 00:00:00.000 error [db] "
                      "forged\\x1b[2J'") != std::string::npos);
  CHECK(lines[1].ends_with("[db\\nFAKE] cannot connect: password *** refused"));
}

TEST_CASE(
    "JSON log lines: every field is escaped, the pipeline name too; secrets are masked; long ones cut") {
  remember_secret("log-secret-7782");
  auto lines =
      formatted(make_log_formatter("json", "pipe \"quoted\" 100%d\\"), "st\"age", [](spdlog::logger& log) {
        log.info("value 'a\nb\x1b[31m' with log-secret-7782 and \xff");
        log.info("{}", std::string(20000, 'x'));
      });
  REQUIRE(lines.size() == 2);
  Value v = parse_json(lines[0]);  // throws if the line is not one JSON object
  CHECK(v.find("pipeline")->as_string() == "pipe \"quoted\" 100%d\\");
  CHECK(v.find("stage")->as_string() == "st\"age");
  CHECK(v.find("msg")->as_string() == "value 'a\nb\x1b[31m' with *** and \\xff");
  Value long_one = parse_json(lines[1]);
  CHECK(long_one.find("msg")->as_string() == std::string(16 * 1024, 'x') + "...(3616 more bytes)");
}
