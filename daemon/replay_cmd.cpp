// etld replay: the pipeline file is validated as written (its errors at its own lines), then every
// kafka source gets start_at, stop_at and a group of its own, and the result, written to a
// temporary file (which a SIGHUP reload reads again, bounds included), runs as `etld run` would.
#include "daemon/replay_cmd.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "config/loader.hpp"
#include "connectors/kafka/kafka_bounds.hpp"
#include "daemon/logging.hpp"
#include "daemon/supervisor.hpp"

namespace etld {

const char* const kReplayUsage = R"(Usage: etld replay FILE --from TIME [--to TIME] [--group NAME] [options]

Runs the pipeline FILE once over a time range of its Kafka topics, then exits 0: every kafka
source reads from the first record at or after --from (start_at) up to, not including, the
first record at or after --to (stop_at; without --to, the end of each partition seen at start),
by the records' timestamps and the broker's offsets-for-times. Other sources run as written.

Each kafka source consumes as a group of its own, so the live group's committed offsets are
untouched: --group NAME (with several kafka sources, NAME-<stage>), else the source's group
followed by -replay-<the replay's start, UTC, e.g. 20261206T203000Z>. Replaying into the live
table is safe with mode: upsert and a guard (docs/operations.md, "Replaying a time range").

  --from TIME        RFC 3339, e.g. 2026-12-01T10:00:00Z (seconds may be left out)
  --to TIME          RFC 3339; default: the end seen at start
  --group NAME       the consumer group of the replay
  --log-level LEVEL, --log-format FORMAT, --admin-address HOST:PORT, --admin-token-file PATH
                     as for etld run
)";

namespace {

int usage(const std::string& message) {
  std::cerr << "etld replay: " << message << "\n(see etld replay --help)\n";
  return 2;
}

std::string utc_stamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Bounds every kafka stage of `root`; returns one line per stage for the log.
std::vector<std::string> bound_sources(YAML::Node root, const std::string& from, const std::string& to,
                                       const std::string& group) {
  std::vector<std::string> said;
  YAML::Node stages = root["stages"];
  std::size_t kafka = 0;
  for (auto it = stages.begin(); it != stages.end(); ++it)
    if (it->second["type"].as<std::string>("") == "kafka") ++kafka;
  const std::string stamp = utc_stamp();
  for (auto it = stages.begin(); it != stages.end(); ++it) {
    YAML::Node stage = it->second;
    if (stage["type"].as<std::string>("") != "kafka") continue;
    auto name = it->first.as<std::string>();
    std::string g = group.empty() ? stage["group"].as<std::string>("") + "-replay-" + stamp
                    : kafka == 1  ? group
                                  : group + "-" + name;
    stage["group"] = g;
    stage["start_at"] = from;
    stage["stop_at"] = to.empty() ? std::string("end") : to;
    if (stage["stop_at_end"]) stage.remove("stop_at_end");
    said.push_back("kafka source '" + name + "' reads [" + from + ", " + (to.empty() ? "end" : to) +
                   ") as group '" + g + "'");
  }
  return said;
}

}  // namespace

int replay_main(int argc, char** argv) {
  std::string file, from, to, group, log_level, log_format, admin_address, admin_token_file;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--help" || a == "-h") {
      std::cout << kReplayUsage;
      return 0;
    } else if (a == "--from") {
      ok = value(from);
    } else if (a == "--to") {
      ok = value(to);
    } else if (a == "--group") {
      ok = value(group);
    } else if (a == "--log-level") {
      ok = value(log_level);
    } else if (a == "--log-format") {
      ok = value(log_format);
    } else if (a == "--admin-address") {
      ok = value(admin_address);
    } else if (a == "--admin-token-file") {
      ok = value(admin_token_file);
    } else if (!a.empty() && a[0] == '-') {
      return usage("unknown option '" + a + "'");
    } else if (file.empty()) {
      file = a;
    } else {
      return usage("unexpected argument '" + a + "'");
    }
    if (!ok) return usage(a + " needs a value");
  }
  if (file.empty()) return usage("needs a pipeline FILE");
  if (from.empty()) return usage("needs --from TIME");
  std::int64_t from_ms = kafka::parse_bound_time(from), to_ms = to.empty() ? 0 : kafka::parse_bound_time(to);
  if (from_ms < 0)
    return usage("--from '" + from + "' is not an RFC 3339 time (such as 2026-12-01T10:00:00Z)");
  if (to_ms < 0) return usage("--to '" + to + "' is not an RFC 3339 time (such as 2026-12-01T12:00:00Z)");
  if (!to.empty() && to_ms <= from_ms) return usage("--to must be later than --from");

  // As written first: errors point at the user's file, not at the temporary one.
  {
    Diagnostics diags(file);
    if (!load_pipeline(file, diags)) {
      std::cerr << diags.format();
      return 1;
    }
  }
  YAML::Node root = YAML::LoadFile(file);
  auto said = bound_sources(root, from, to, group);
  if (said.empty()) {
    std::cerr << "etld replay: " << file << " has no kafka source: nothing to replay\n";
    return 1;
  }
  YAML::Emitter out;
  out << root;
  char path[] = "/tmp/etld-replay-XXXXXX.yaml";
  int fd = ::mkstemps(path, 5);
  if (fd < 0) {
    std::perror("etld replay: cannot create its temporary pipeline file");
    return 1;
  }
  ::close(fd);
  struct Remove {
    const char* p;
    ~Remove() { std::remove(p); }
  } remove_at_exit{path};
  std::ofstream(path) << "# etld replay of " << file << "\n" << out.c_str() << "\n";

  Diagnostics diags(path);
  std::shared_ptr<const PipelineConfig> config = load_pipeline(path, diags);
  if (!config) {  // the bounds themselves were refused (e.g. by an option of the source)
    std::cerr << diags.format();
    return 1;
  }
  try {
    setup_logging(log_level.empty() ? config->log_level : log_level,
                  log_format.empty() ? config->log_format : log_format, config->name);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  for (const auto& line : said) spdlog::info("replay of {}: {}", file, line);
  Supervisor supervisor(path, config, admin_address.empty() ? config->admin_address : admin_address,
                        admin_token_file);
  return supervisor.run();
}

}  // namespace etld
