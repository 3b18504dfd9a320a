#include "daemon/cli.hpp"

#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "config/loader.hpp"
#include "config/reference.hpp"
#include "config/schema/pipeline.hpp"
#include "config/terminal_progress.hpp"
#include "config/warnings.hpp"
#include "daemon/graph.hpp"
#include "daemon/logging.hpp"
#include "daemon/replay_cmd.hpp"
#include "daemon/supervisor.hpp"
#include "daemon/tap_cmd.hpp"
#include "daemon/test_cmd.hpp"
#include "daemon/top_cmd.hpp"
#include "etld_version.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/registry.hpp"
#ifdef ETLD_WITH_KAFKA
#include "connectors/kafka/kafka_version.hpp"
#endif

namespace etld {

namespace {

constexpr const char* kUsage = R"(etld - stream Kafka topics into PostgreSQL, and more, from a YAML pipeline

Usage:
  etld run FILE [options]        run the pipeline until its sources end or SIGTERM/SIGINT
  etld validate FILE [options]   check FILE; exit 0 if valid, 1 with file:line:column errors
  etld graph FILE                print the stage graph as a Mermaid flowchart
  etld test FILE...              run the test cases of FILE against the pipeline's transforms,
                                 without Kafka or PostgreSQL; exit 0 passed, 1 a case failed,
                                 2 invalid (etld test --help, docs/testing.md)
  etld top [--admin HOST:PORT] [--interval 1s] [--once] [--json]
                                 watch a running etld from its admin endpoint: events/s per
                                 stage, buffers and demand, dead letters, Kafka lag per
                                 partition, PostgreSQL batches, latency and retries; q quits
                                 (etld top --help)
  etld tap STAGE [--admin HOST:PORT] [--token-file FILE] [--limit N] [--rate R] [--json]
                                 print a sample of the live events leaving STAGE of a running
                                 etld (rate- and size-limited; needs the admin token)
                                 (etld tap --help)
  etld replay FILE --from TIME [--to TIME] [--group NAME]
                                 load a time range of the kafka sources' topics again, under
                                 a consumer group of its own (the live group's offsets stay),
                                 then exit 0 (etld replay --help, docs/operations.md)
  etld stages                    list the stage types
  etld reference                 print every stage type and option as Markdown (docs/stages.md)
  etld --version                 print versions
  etld --help                    this text

Options:
  --log-level LEVEL    trace, debug, info, warn, error, critical, off (overrides the file)
  --log-format FORMAT  text or json (overrides the file)
  --admin-address HOST:PORT
                       (run) serve the admin HTTP endpoint there (overrides the file's
                       admin.address): /metrics, /healthz, /readyz, /pipeline, /reload,
                       /log_level, /tap. Reading is open to whoever reaches it; POST /reload,
                       PUT /log_level and GET /tap (events) need a bearer token, and are off
                       without one.
  --admin-token-file PATH
                       (run) the file holding that token (overrides admin.token_file); it
                       must be readable by etld's user only (chmod 600)
  --against-db         (validate) also check stages against the live systems they use:
                       tables, columns and types in PostgreSQL, and for a sink fed by
                       format: avro, its columns against the registry's latest schema
                       of each topic (docs/formats.md). On a terminal, a line on stderr
                       says which stage and table it checks (not when CI or NO_PROGRESS
                       is set)

Signals (run): SIGTERM or SIGINT drain the pipeline (sources stop, in-flight events reach
their sinks, offsets commit) within shutdown_timeout, then exit 0; a second signal exits at
once with status 130. SIGHUP reloads FILE: if it is invalid, the errors are logged as
file:line:column and the running pipeline goes on; if valid, only the stages whose settings
changed are rebuilt, without losing events (adding or removing stages, or changing inputs,
concurrency, partitioning or threads, drains and rebuilds the whole pipeline). SIGUSR1 raises
the log level one step (info, debug, trace); SIGUSR2 restores the configured one. Before
the pipeline is built and once it has finished, SIGHUP, SIGUSR1 and SIGUSR2 are ignored.

systemd: under Type=notify (NOTIFY_SOCKET set) etld sends READY=1, RELOADING=1, STOPPING=1,
STATUS= with events/s in and out, and WATCHDOG=1 while no stage is wedged (WatchdogSec=);
with or without systemd, /metrics says how long each stage has held events without progress.
Unit files: packaging/etld.service, packaging/etld@.service; see docs/operations.md.

Exit status: 0 success, 1 invalid configuration or a pipeline error, 2 usage error
(etld test: 0 every case passed, 1 a case failed, 2 a test file or its pipeline is invalid).
Docs: docs/operations.md (admin endpoint, metrics, logs), docs/delivery.md (at least / exactly once),
docs/configuration.md, docs/stages.md (every stage type and option), docs/expressions.md.
)";

struct Args {
  std::string command, file, log_level, log_format, admin_address, admin_token_file;
  bool against_db = false;
  std::vector<std::string> more_files;  // test: the FILEs after the first
};

int usage_error(const std::string& message) {
  std::cerr << "etld: " << message << "\n(see etld --help)\n";
  return 2;
}

std::unique_ptr<PipelineConfig> load_or_report(const std::string& file) {
  Diagnostics diags(file);
  auto config = load_pipeline(file, diags);
  if (!config) std::cerr << diags.format();
  return config;
}

int cmd_validate(const Args& args) {
  auto config = load_or_report(args.file);
  if (!config) return 1;
  if (args.against_db) {
    Diagnostics diags(args.file);
    std::vector<std::pair<const StageConfig*, const StageType*>> checked;
    for (const auto& stage : config->stages)
      if (const auto* type = find_stage_type(stage.type); type && type->check_live)
        checked.emplace_back(&stage, type);
    // Many tables take a while: say which one on a terminal (a routed sink adds "table k of n").
    TerminalProgress progress(STDERR_FILENO, progress_wanted(STDERR_FILENO));
    ScopedProgress current(progress);
    for (std::size_t k = 0; k < checked.size(); ++k) {
      const auto& stage = *checked[k].first;
      const auto* type = checked[k].second;
      progress.show(
          fmt::format("validate --against-db: stage {} of {} ({})", k + 1, checked.size(), stage.name));
      try {
        type->check_live(stage, *config);
      } catch (const ConfigErrors& all) {
        for (const auto& e : all.all()) diags.error(e.has_mark() ? e.mark() : stage.mark, e.what(), e.hint());
      } catch (const ConfigError& e) {
        if (e.has_mark())
          diags.error(e);
        else
          diags.error(stage.mark, e.what(), e.hint());
      } catch (const std::exception& e) {
        diags.error(stage.mark, std::string("stage '") + stage.name + "': " + e.what());
      }
    }
    progress.clear();
    if (!diags.ok()) {
      std::cerr << diags.format();
      return 1;
    }
  }
  for (const auto& w : pipeline_warnings(*config)) std::cerr << w << "\n";
  std::cerr << args.file << ": ok (" << config->stages.size() << " stages)\n";
  return 0;
}

int cmd_graph(const Args& args) {
  auto config = load_or_report(args.file);
  if (!config) return 1;
  std::cout << mermaid_graph(*config);
  return 0;
}

int cmd_run(const Args& args) {
  auto config = load_or_report(args.file);
  if (!config) return 1;
  try {
    setup_logging(args.log_level.empty() ? config->log_level : args.log_level,
                  args.log_format.empty() ? config->log_format : args.log_format, config->name);
  } catch (const std::exception& e) {
    return usage_error(e.what());
  }
  for (const auto& w : pipeline_warnings(*config)) spdlog::warn("{}", w);
  auto admin_address = args.admin_address.empty() ? config->admin_address : args.admin_address;
  Supervisor supervisor(args.file, std::move(config), admin_address, args.admin_token_file);
  return supervisor.run();
}

int cmd_test(const Args& args) {
  std::vector<std::string> files{args.file};
  files.insert(files.end(), args.more_files.begin(), args.more_files.end());
  return run_test_files(files);
}

int cmd_stages() {
  for (const auto* type : all_stage_types())
    std::cout << type->name << std::string(type->name.size() < 14 ? 14 - type->name.size() : 1, ' ')
              << role_name(type->role) << std::string(11 - std::string(role_name(type->role)).size(), ' ')
              << type->summary << "\n";
  return 0;
}

}  // namespace

int cli_main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "replay") return replay_main(argc, argv);
  std::vector<std::string> argv_s(argv + 1, argv + argc);
  if (!argv_s.empty() && argv_s[0] == "top") return top_main({argv_s.begin() + 1, argv_s.end()});
  if (!argv_s.empty() && argv_s[0] == "tap") return tap_main({argv_s.begin() + 1, argv_s.end()});
  Args args;
  for (std::size_t i = 0; i < argv_s.size(); ++i) {
    const auto& a = argv_s[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argv_s.size()) throw std::invalid_argument(std::string(name) + " needs a value");
      return argv_s[++i];
    };
    try {
      if (a == "--help" || a == "-h" || a == "help") {
        std::cout << (args.command == "test" ? kTestUsage : kUsage);
        return 0;
      } else if (a == "--version" || a == "-V" || a == "version") {
        std::cout << "etld " << ETLD_VERSION << "\n";
#ifdef ETLD_WITH_KAFKA
        std::cout << "librdkafka " << librdkafka_version() << "\n";
#endif
        return 0;
      } else if (a == "--log-level") {
        args.log_level = value("--log-level");
      } else if (a == "--log-format") {
        args.log_format = value("--log-format");
      } else if (a == "--admin-address") {
        args.admin_address = value("--admin-address");
      } else if (a == "--admin-token-file") {
        args.admin_token_file = value("--admin-token-file");
      } else if (a == "--against-db") {
        args.against_db = true;
      } else if (!a.empty() && a[0] == '-') {
        return usage_error("unknown option '" + a + "'");
      } else if (args.command.empty()) {
        args.command = a;
      } else if (args.file.empty()) {
        args.file = a;
      } else if (args.command == "test") {
        args.more_files.push_back(a);
      } else {
        return usage_error("unexpected argument '" + a + "'");
      }
    } catch (const std::invalid_argument& e) {
      return usage_error(e.what());
    }
  }
  if (args.command.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  if (args.command == "stages") return cmd_stages();
  if (args.command == "reference") {  // regenerates docs/stages.md
    std::cout << stage_reference_markdown();
    return 0;
  }
  static const std::map<std::string, int (*)(const Args&)> commands{
      {"run", cmd_run}, {"validate", cmd_validate}, {"graph", cmd_graph}, {"test", cmd_test}};
  auto it = commands.find(args.command);
  if (it == commands.end()) return usage_error("unknown command '" + args.command + "'");
  if (args.file.empty())
    return usage_error("'" + args.command + "' needs a " + (args.command == "test" ? "test" : "pipeline") +
                       " FILE");
  spdlog::set_level(spdlog::level::info);
  return it->second(args);
}

}  // namespace etld
