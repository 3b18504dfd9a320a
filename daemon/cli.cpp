#include "daemon/cli.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "config/pipeline.hpp"
#include "config/reference.hpp"
#include "daemon/admin_server.hpp"
#include "daemon/graph.hpp"
#include "daemon/logging.hpp"
#include "etld_version.hpp"
#include "stages/pipeline.hpp"
#include "stages/registry.hpp"
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
  etld stages                    list the stage types
  etld --version                 print versions
  etld --help                    this text

Options:
  --log-level LEVEL    trace, debug, info, warn, error, critical, off (overrides the file)
  --log-format FORMAT  text or json (overrides the file)
  --admin-address HOST:PORT
                       (run) serve the admin HTTP endpoint there (overrides the file's
                       admin.address): /metrics, /healthz, /readyz, /pipeline, /reload,
                       /log_level. No authentication: keep it on loopback.
  --against-db         (validate) also check stages against the live systems they use:
                       tables, columns and types in PostgreSQL

Signals (run): SIGTERM or SIGINT drain the pipeline (sources stop, in-flight events reach
their sinks, offsets commit) within shutdown_timeout, then exit 0; a second signal exits at
once with status 130. SIGUSR1 raises the log level one step (info, debug, trace); SIGUSR2
restores the configured one.

Exit status: 0 success, 1 invalid configuration or a pipeline error, 2 usage error.
Docs: docs/operations.md (admin endpoint, metrics, logs),
docs/configuration.md, docs/stages.md (every stage type and option), docs/expressions.md.
)";

struct Args {
  std::string command, file, log_level, log_format, admin_address;
  bool against_db = false;
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
    for (const auto& stage : config->stages) {
      const auto* type = find_stage_type(stage.type);
      if (!type || !type->check_live) continue;
      try {
        type->check_live(stage, *config);
      } catch (const ConfigError& e) {
        if (e.has_mark())
          diags.error(e);
        else
          diags.error(stage.mark, e.what(), e.hint());
      } catch (const std::exception& e) {
        diags.error(stage.mark, std::string("stage '") + stage.name + "': " + e.what());
      }
    }
    if (!diags.ok()) {
      std::cerr << diags.format();
      return 1;
    }
  }
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
  std::shared_ptr<const PipelineConfig> shared = std::move(config);
  auto timeout = shared->shutdown_timeout;
  std::unique_ptr<Pipeline> owned;
  try {
    owned = std::make_unique<Pipeline>(shared);
  } catch (const std::exception& e) {
    spdlog::error("pipeline '{}' could not be built: {}", shared->name, e.what());
    return 1;
  }
  Pipeline& pipeline = *owned;
  // Declared after the pipeline: both go before its pool does.
  auto level_signals = handle_log_level_signals(pipeline.executor());
  std::unique_ptr<AdminServer> admin;
  if (auto address = args.admin_address.empty() ? shared->admin_address : args.admin_address;
      !address.empty()) {
    try {
      admin = std::make_unique<AdminServer>(pipeline.executor(), pipeline_admin_hooks(pipeline, shared));
      admin->start(address);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
    auto ep = admin->local_endpoint();
    spdlog::info("admin endpoint listening on {}:{}", ep.address().to_string(), ep.port());
  }

  boost::asio::io_context signals_io;
  boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  boost::asio::steady_timer deadline(signals_io);
  int signals_seen = 0;
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (++signals_seen > 1) {
        spdlog::critical("second signal ({}): exiting now without draining", signo);
        std::_Exit(130);
      }
      spdlog::info("signal {}: draining (at most {}ms; send it again to exit now)", signo, timeout.count());
      pipeline.stop();
      deadline.expires_after(timeout);
      deadline.async_wait([&](boost::system::error_code e) {
        if (e) return;
        spdlog::critical("shutdown_timeout of {}ms passed before the pipeline drained: exiting",
                         timeout.count());
        std::_Exit(1);
      });
      wait_signal();
    });
  };
  wait_signal();

  spdlog::info("pipeline '{}' starting: {} stages, {} threads", shared->name, shared->stages.size(),
               shared->threads > 0 ? shared->threads : static_cast<int>(std::thread::hardware_concurrency()));
  pipeline.start();
  std::thread waiter([&] {
    pipeline.wait();
    boost::asio::post(signals_io, [&] {
      signals.cancel();
      deadline.cancel();
    });
  });
  signals_io.run();
  waiter.join();
  if (auto error = pipeline.error()) {
    spdlog::error("pipeline '{}' failed: {}", shared->name, *error);
    return 1;
  }
  spdlog::info("pipeline '{}' finished", shared->name);
  return 0;
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
  std::vector<std::string> argv_s(argv + 1, argv + argc);
  Args args;
  for (std::size_t i = 0; i < argv_s.size(); ++i) {
    const auto& a = argv_s[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argv_s.size()) throw std::invalid_argument(std::string(name) + " needs a value");
      return argv_s[++i];
    };
    try {
      if (a == "--help" || a == "-h" || a == "help") {
        std::cout << kUsage;
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
      } else if (a == "--against-db") {
        args.against_db = true;
      } else if (!a.empty() && a[0] == '-') {
        return usage_error("unknown option '" + a + "'");
      } else if (args.command.empty()) {
        args.command = a;
      } else if (args.file.empty()) {
        args.file = a;
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
      {"run", cmd_run}, {"validate", cmd_validate}, {"graph", cmd_graph}};
  auto it = commands.find(args.command);
  if (it == commands.end()) return usage_error("unknown command '" + args.command + "'");
  if (args.file.empty()) return usage_error("'" + args.command + "' needs a pipeline FILE");
  spdlog::set_level(spdlog::level::info);
  return it->second(args);
}

}  // namespace etld
