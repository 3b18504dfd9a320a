#include "tests/support/services.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

namespace etld::test {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string source_dir() {
  if (auto dir = env("ETLD_SOURCE_DIR"); !dir.empty()) return dir;
#ifdef ETLD_SOURCE_DIR
  return ETLD_SOURCE_DIR;
#else
  return ".";
#endif
}

// "export NAME=value" or "export NAME='value'" -> value, for NAME.
std::optional<std::string> parse_export(const std::string& line, const std::string& name) {
  std::string prefix = "export " + name + "=";
  if (line.rfind(prefix, 0) != 0) return std::nullopt;
  std::string v = line.substr(prefix.size());
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  if (v.size() >= 2 && ((v.front() == '\'' && v.back() == '\'') || (v.front() == '"' && v.back() == '"')))
    v = v.substr(1, v.size() - 2);
  return v;
}

Services start() {
  Services s{env("KAFKA_BROKERS"), env("PG_DSN")};
  if (!s.kafka_brokers.empty() && !s.pg_dsn.empty()) return s;
  std::string cmd = "cd '" + source_dir() + "' && scripts/dev-env up 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + cmd);
  std::string output;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) {
    std::string line = buf;
    output += line;
    if (auto v = parse_export(line, "KAFKA_BROKERS")) s.kafka_brokers = *v;
    if (auto v = parse_export(line, "PG_DSN")) s.pg_dsn = *v;
  }
  int status = ::pclose(p);
  if (status != 0 || s.kafka_brokers.empty() || s.pg_dsn.empty())
    throw std::runtime_error("scripts/dev-env up failed (status " + std::to_string(status) + "):\n" + output);
  ::setenv("KAFKA_BROKERS", s.kafka_brokers.c_str(), 1);
  ::setenv("PG_DSN", s.pg_dsn.c_str(), 1);
  return s;
}

}  // namespace

const Services& services() {
  static std::once_flag once;
  static Services s;
  std::call_once(once, [] { s = start(); });
  return s;
}

}  // namespace etld::test
