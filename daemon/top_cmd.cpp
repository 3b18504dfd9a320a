#include "daemon/top_cmd.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"
#include "daemon/admin_client.hpp"
#include "daemon/top_view.hpp"
#include "stages/engine/value.hpp"

namespace etld {

const char* const kTopUsage = R"(Usage: etld top [--admin HOST:PORT] [--interval 1s] [--once] [--json]

Shows a running etld from its admin endpoint (GET /metrics and GET /pipeline; it changes
nothing, and needs no token): per stage events in and out per second, events buffered and
demand outstanding (the credits), dead letters, failures and restarts; Kafka lag and fetch rate
per partition and the total lag; per postgres sink rows per second, mean batch size and
latency, the latency's p50 and p99, retries and dead letters; the configuration generation and
readiness. Rates and percentiles are over two scrapes an interval apart.

  --admin HOST:PORT   the admin endpoint (admin.address, or etld run --admin-address);
                      default: $ETLD_ADMIN_ADDRESS. 0.0.0.0 and [::] mean this host.
  --interval D        time between scrapes: 500ms, 1s (default), 5s
  --once              print one snapshot as text (two scrapes an interval apart) and exit
  --json              the same as one JSON object (implies --once); docs/operations.md lists
                      its fields

Live (the default, on a terminal): the screen is redrawn every interval; q or Ctrl-C quits.
Exit status: 0, 1 when the endpoint cannot be read (--once, --json), 2 usage error.
)";

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

using Endpoint = AdminEndpoint;

std::string http_get(const Endpoint& at, const std::string& target, milliseconds timeout) {
  return admin_get(at, {.target = target, .timeout = timeout, .user_agent = "etld-top"});
}

top::Scrape take_scrape(const Endpoint& at, milliseconds timeout) {
  top::Scrape s;
  auto metrics = http_get(at, "/metrics", timeout);
  s.at = steady_clock::now();
  try {
    s.samples = top::parse_exposition(metrics);
  } catch (const top::ExpositionError& e) {
    throw std::runtime_error("GET /metrics of " + at.text() + ": " + e.what());
  }
  // The stage types and start order; the metrics alone still make a view.
  try {
    auto pipeline = parse_json(http_get(at, "/pipeline", timeout));
    if (const auto* name = pipeline.find("pipeline"); name && name->kind() == Value::Kind::string)
      s.pipeline = name->as_string();
    if (const auto* stages = pipeline.find("stages"); stages && stages->kind() == Value::Kind::array)
      for (const auto& st : stages->as_array()) {
        const auto* name = st.find("name");
        const auto* type = st.find("type");
        if (name && name->kind() == Value::Kind::string)
          s.stages.push_back(
              {name->as_string(), type && type->kind() == Value::Kind::string ? type->as_string() : ""});
      }
  } catch (const std::exception&) {
  }
  return s;
}

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }
extern "C" void on_winch(int) {}  // only to wake poll() for a redraw at the new size

// The terminal in the state the live view needs, given back as it was found on destruction:
// no echo, keys read one at a time (Ctrl-C still a signal), the alternate screen, no cursor.
class LiveTerminal {
 public:
  LiveTerminal() {
    raw_ = tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (raw_) {
      termios t = saved_;
      t.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      t.c_cc[VMIN] = 0;
      t.c_cc[VTIME] = 0;
      tcsetattr(STDIN_FILENO, TCSANOW, &t);
    }
    std::cout << "\x1b[?1049h\x1b[?25l" << std::flush;
  }
  ~LiveTerminal() {
    std::cout << "\x1b[?25h\x1b[?1049l" << std::flush;
    if (raw_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  LiveTerminal(const LiveTerminal&) = delete;
  LiveTerminal& operator=(const LiveTerminal&) = delete;

  static std::pair<std::size_t, std::size_t> size() {  // columns, rows
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
      return {ws.ws_col, ws.ws_row};
    return {80, 24};
  }

  // Waits until `deadline`; true when q was pressed (or stdin closed), or a signal asked to stop.
  bool wait_for_quit(steady_clock::time_point deadline) {
    while (!g_stop) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
      if (left <= 0) return false;
      // Once stdin is at its end (not a terminal), only a signal stops the view.
      pollfd fd{stdin_open_ ? STDIN_FILENO : -1, POLLIN, 0};
      int n = poll(&fd, 1, static_cast<int>(left));
      if (n < 0 && errno == EINTR) return g_stop != 0;  // a resize: redraw now
      if (n > 0) {
        char c = 0;
        auto got = read(STDIN_FILENO, &c, 1);
        if (got <= 0) stdin_open_ = false;
        if (got == 1 && (c == 'q' || c == 'Q' || c == 3)) return true;
      }
    }
    return true;
  }

 private:
  termios saved_{};
  bool raw_ = false;
  bool stdin_open_ = true;
};

void draw(const std::string& text) {
  auto [cols, rows] = LiveTerminal::size();
  std::string frame = "\x1b[H";
  std::size_t line_no = 0, start = 0;
  while (start < text.size() && line_no + 1 < rows) {
    auto end = text.find('\n', start);
    auto line = text.substr(start, end - start);
    if (line.size() > cols) line.resize(cols);
    frame += line + "\x1b[K\r\n";
    start = end == std::string::npos ? text.size() : end + 1;
    ++line_no;
  }
  frame += "\x1b[J";
  std::cout << frame << std::flush;
}

int run_live(const Endpoint& at, milliseconds interval, milliseconds timeout) {
  struct sigaction stop {};
  stop.sa_handler = on_stop_signal;  // no SA_RESTART: poll() returns at once
  sigemptyset(&stop.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &stop, nullptr);
  struct sigaction winch {};
  winch.sa_handler = on_winch;
  sigemptyset(&winch.sa_mask);
  sigaction(SIGWINCH, &winch, nullptr);

  LiveTerminal terminal;
  std::optional<top::Scrape> previous;
  std::string last_screen, error;
  auto next = steady_clock::now();
  while (!g_stop) {
    if (steady_clock::now() >= next) {
      next = steady_clock::now() + interval;
      try {
        auto scrape = take_scrape(at, timeout);
        auto view = top::compute_view(previous ? &*previous : nullptr, scrape);
        last_screen = top::render_text(view, at.text());
        previous = std::move(scrape);
        error.clear();
      } catch (const std::exception& e) {
        error = e.what();  // shown under the last good view; the next scrape tries again
      }
    }
    std::string screen = last_screen;
    if (!error.empty()) screen += "\n" + error + "\n";
    screen += "\nq or Ctrl-C quits";
    draw(screen);
    if (terminal.wait_for_quit(next)) break;
  }
  return 0;
}

int run_once(const Endpoint& at, milliseconds interval, milliseconds timeout, bool json) {
  try {
    auto first = take_scrape(at, timeout);
    std::this_thread::sleep_until(first.at + interval);
    auto second = take_scrape(at, timeout);
    auto view = top::compute_view(&first, second);
    std::cout << (json ? top::render_json(view, at.text()) : top::render_text(view, at.text()));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "etld top: " << e.what() << "\n";
    return 1;
  }
}

int usage_error(const std::string& message) {
  std::cerr << "etld top: " << message << "\n(see etld top --help)\n";
  return 2;
}

}  // namespace

int top_main(const std::vector<std::string>& args) {
  std::string admin;
  if (const char* env = std::getenv("ETLD_ADMIN_ADDRESS")) admin = env;
  milliseconds interval{1000};
  bool once = false, json = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    try {
      if (a == "--help" || a == "-h") {
        std::cout << kTopUsage;
        return 0;
      } else if (a == "--admin") {
        admin = value();
      } else if (a == "--interval") {
        auto text = value();
        try {
          interval = parse_duration(YAML::Node(text));
        } catch (const ConfigError& e) {
          return usage_error("--interval: " + std::string(e.what()) + " (" + e.hint() + ")");
        }
        if (interval < milliseconds(100)) return usage_error("--interval must be at least 100ms");
      } else if (a == "--once") {
        once = true;
      } else if (a == "--json") {
        json = once = true;
      } else {
        return usage_error("unknown argument '" + a + "'");
      }
    } catch (const std::invalid_argument& e) {
      return usage_error(e.what());
    }
  }
  if (admin.empty())
    return usage_error("which daemon? give --admin HOST:PORT (its admin.address) or set ETLD_ADMIN_ADDRESS");
  Endpoint at;
  try {
    at = parse_admin_endpoint(admin);
  } catch (const std::invalid_argument& e) {
    return usage_error(e.what());
  }
  // A scrape may take up to the interval, and at least 2 s (a busy daemon answers late).
  auto timeout = std::max(interval, milliseconds(2000));
  if (once) return run_once(at, interval, timeout, json);
  if (!isatty(STDOUT_FILENO))
    return usage_error("the live view needs a terminal; for scripts use --once or --json");
  return run_live(at, interval, timeout);
}

}  // namespace etld
