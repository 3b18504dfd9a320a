// The Supervisor in-process: the AdminHooks it hands the admin endpoint (reload, last_reload,
// config, ready, stage_stats), the systemd watchdog it feeds from the engine's progress check,
// read from a real notification socket, and the watchdog metrics of that check (with and
// without systemd). Signals are real: SIGTERM to this process.
#include "daemon/supervisor.hpp"
#include "config/loader.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/test_stages.hpp"

using namespace etld;
using namespace etld::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("etld_supervisor_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

void write(const fs::path& file, const std::string& text) { std::ofstream(file) << text; }

// Runs a Supervisor on its own thread, as `etld run` does on the main thread.
struct Running {
  Supervisor supervisor;
  int rc = -1;
  std::thread thread;
  Running(const fs::path& file)
      : supervisor(file.string(), config_from_file(file)), thread([this] { rc = supervisor.run(); }) {}
  static std::shared_ptr<const PipelineConfig> config_from_file(const fs::path& file) {
    Diagnostics diags(file.string());
    std::shared_ptr<const PipelineConfig> config = load_pipeline(file.string(), diags);
    REQUIRE_MESSAGE(config, diags.format());
    return config;
  }
  int terminate() {  // SIGTERM, as systemd stops the service
    ::kill(::getpid(), SIGTERM);
    thread.join();
    return rc;
  }
};

void wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  REQUIRE(done());
}

// systemd's side of NOTIFY_SOCKET: a unix datagram socket whose messages the test reads.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : fd_(::socket(AF_UNIX, SOCK_DGRAM, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{0, 50'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }
  // Every message received within `window`.
  std::vector<std::string> read_for(std::chrono::milliseconds window) {
    std::vector<std::string> out;
    auto end = std::chrono::steady_clock::now() + window;
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) out.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_;
};

std::size_t count(const std::vector<std::string>& messages, const std::string& what) {
  return static_cast<std::size_t>(std::count(messages.begin(), messages.end(), what));
}

// Pipeline `wedge`: 1000 events a second through `stuck`, which blocks at event `at` until the
// gate `gate` opens, into `out` (bucket `gate`).
std::string blocking_pipeline(const std::string& gate, int at) {
  return "pipeline: wedge\nthreads: 3\nstages:\n"
         "  producer: { type: generate, rate: 1000 }\n"
         "  stuck: { type: test_block, inputs: [producer], gate: " +
         gate + ", at: " + std::to_string(at) +
         " }\n  out: { type: test_collect, inputs: [stuck], bucket: " + gate + " }\n";
}

// What the admin endpoint's /metrics would add from the supervisor and its pipelines.
std::string metrics_text(const AdminHooks& hooks) {
  metrics::Exposition out;
  hooks.collect_metrics(out);
  return out.render();
}

// The value of etld_stage_stalled_seconds for instance 0 of `stage`; -1 when there is none.
double stalled_seconds(const std::string& scrape, const std::string& stage) {
  auto key = "etld_stage_stalled_seconds{pipeline=\"" + std::string("wedge") + "\",stage=\"" + stage +
             "\",instance=\"0\"} ";
  auto at = scrape.find(key);
  return at == std::string::npos ? -1 : std::stod(scrape.substr(at + key.size()));
}

}  // namespace

TEST_CASE("supervisor: the admin hooks reload, report the outcome and serve the running generation") {
  TempDir dir;
  auto file = dir.path / "pipeline.yaml";
  auto pipeline = [](const std::string& bucket) {
    return "pipeline: hooks\nthreads: 2\nstages:\n"
           "  producer: { type: generate, template: '{\"n\": {{seq}}}', rate: 5000 }\n"
           "  out: { type: test_collect, inputs: [producer], bucket: " +
           bucket + " }\n";
  };
  reset_bucket("sv_a");
  reset_bucket("sv_b");
  write(file, pipeline("sv_a"));
  Running running(file);
  auto hooks = running.supervisor.admin_hooks();
  wait_until([&] { return hooks.ready() && bucket("sv_a")->count() > 100; });

  auto first = hooks.last_reload();
  CHECK(first.generation == 1);
  CHECK(first.ok);
  CHECK(first.config_hash.size() == 16);

  write(file, pipeline("sv_b"));
  auto second = hooks.reload();
  CHECK(second.ok);
  CHECK(second.generation == 2);
  CHECK(second.restarted_stages == std::vector<std::string>{"out"});
  CHECK(second.config_hash != first.config_hash);
  CHECK(hooks.last_reload().generation == 2);
  CHECK(hooks.config()->find("out")->options.get_string("bucket") == "sv_b");
  wait_until([&] { return bucket("sv_b")->count() > 100; });

  write(file, "pipeline: hooks\nstages:\n  producer: { type: generate, cuont: 5 }\n");
  auto refused = hooks.reload();
  CHECK_FALSE(refused.ok);
  CHECK(refused.generation == 2);
  CHECK(refused.error.find(file.string() + ":3:31: error: unknown option 'cuont'") != std::string::npos);
  CHECK(refused.error.find("did you mean 'count'") != std::string::npos);
  CHECK(hooks.ready());  // the old pipeline goes on
  auto before = bucket("sv_b")->count();
  wait_until([&] { return bucket("sv_b")->count() > before + 100; });
  CHECK(hooks.config()->find("out")->options.get_string("bucket") == "sv_b");

  std::set<std::string> stages;
  for (const auto& s : hooks.stage_stats()) stages.insert(s.name);
  CHECK(stages == std::set<std::string>{"producer", "out"});

  // A stage added: the graph cannot take it live, so the whole pipeline is rebuilt.
  reset_bucket("sv_c");
  write(file, pipeline("sv_b") + "  more: { type: test_collect, inputs: [producer], bucket: sv_c }\n");
  auto rebuilt = hooks.reload();
  CHECK(rebuilt.ok);
  CHECK(rebuilt.generation == 3);
  CHECK(rebuilt.restarted_stages == std::vector<std::string>{"producer", "out", "more"});
  wait_until([&] { return bucket("sv_c")->count() > 100; });
  stages.clear();
  for (const auto& s : hooks.stage_stats()) stages.insert(s.name);
  CHECK(stages == std::set<std::string>{"producer", "out", "more"});

  CHECK(running.terminate() == 0);
  CHECK_FALSE(hooks.ready());
  CHECK_FALSE(hooks.reload().ok);  // not running any more
}

TEST_CASE("supervisor: the systemd watchdog is fed while stages progress, and stops while one is wedged") {
  TempDir dir;
  NotifySocket notify(dir.path / "notify.sock");
  ::setenv("NOTIFY_SOCKET", (dir.path / "notify.sock").c_str(), 1);
  ::setenv("WATCHDOG_USEC", "400000", 1);  // pings every 200 ms; wedged after 400 ms
  auto file = dir.path / "pipeline.yaml";
  write(file, blocking_pipeline("sv_wedge", 1200));
  reset_bucket("sv_wedge");
  auto gate = test::gate("sv_wedge");
  Running running(file);

  std::vector<std::string> early;
  while (!gate->reached) {
    auto got = notify.read_for(100ms);
    early.insert(early.end(), got.begin(), got.end());
  }
  REQUIRE(!early.empty());
  CHECK(early[0] == "READY=1");
  CHECK(count(early, "WATCHDOG=1") >= 2);

  // The wedge is noticed one period (400 ms) after the check last saw progress, which a late
  // sample may place a little after the block began.
  notify.read_for(1200ms);
  auto wedged = notify.read_for(1000ms);
  CHECK(count(wedged, "WATCHDOG=1") == 0);
  // The metrics say so too: one instance wedged, the blocked one, stalled longer than the period.
  auto hooks = running.supervisor.admin_hooks();
  auto scrape = metrics_text(hooks);
  CHECK(scrape.find("etld_watchdog_wedged_stages{pipeline=\"wedge\"} 1\n") != std::string::npos);
  CHECK(stalled_seconds(scrape, "stuck") >= 0.4);
  CHECK(stalled_seconds(scrape, "producer") == 0);  // waits for demand: not stalled
  CHECK(stalled_seconds(scrape, "out") == 0);       // holds nothing

  gate->open();
  auto recovered = notify.read_for(1000ms);
  CHECK(count(recovered, "WATCHDOG=1") >= 2);
  scrape = metrics_text(hooks);
  CHECK(scrape.find("etld_watchdog_wedged_stages{pipeline=\"wedge\"} 0\n") != std::string::npos);
  CHECK(stalled_seconds(scrape, "stuck") == 0);

  CHECK(running.terminate() == 0);
  auto last = notify.read_for(200ms);
  CHECK(count(last, "STOPPING=1") == 1);
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
}

TEST_CASE("supervisor: without systemd, a blocked stage's stalled seconds grow; wedged only after 60 s") {
  TempDir dir;
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  auto file = dir.path / "pipeline.yaml";
  write(file, blocking_pipeline("sv_stall", 500));
  reset_bucket("sv_stall");
  auto gate = test::gate("sv_stall");
  Running running(file);
  auto hooks = running.supervisor.admin_hooks();
  wait_until([&] { return gate->reached.load(); });
  // Sampled every second: the block shows within two, and grows with time.
  wait_until([&] { return stalled_seconds(metrics_text(hooks), "stuck") >= 1.5; }, 5s);
  auto scrape = metrics_text(hooks);
  CHECK(stalled_seconds(scrape, "out") == 0);
  CHECK(stalled_seconds(scrape, "producer") == 0);
  // Wedged means stalled for 60 s without systemd's WatchdogSec: not yet.
  CHECK(scrape.find("etld_watchdog_wedged_stages{pipeline=\"wedge\"} 0\n") != std::string::npos);
  CHECK(scrape.find("# TYPE etld_stage_stalled_seconds gauge") != std::string::npos);
  gate->open();
  wait_until([&] { return stalled_seconds(metrics_text(hooks), "stuck") == 0; }, 5s);
  CHECK(running.terminate() == 0);
}
