// libFuzzer target: the admin HTTP endpoint (daemon/admin_server.cpp) as a client reaches it:
// each input is sent as raw bytes over a real loopback connection to a real AdminServer (Beast's
// request parser with the server's header and body limits, then the routing and the handlers),
// the client half-closes, and the answer is read until the server closes.
// Checks (besides ASan/UBSan on the server's threads): whatever the bytes, the server answers with
// HTTP or closes, within a few seconds, and keeps serving the next connection.
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "daemon/admin_server.hpp"

using namespace etld;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "admin_fuzz: %s\n", what.c_str());
  std::abort();
}

struct Server {
  asio::thread_pool pool{2};
  std::shared_ptr<const PipelineConfig> config;
  TapHub taps{{"gen", "out"}};
  std::unique_ptr<AdminServer> admin;
  unsigned short port = 0;

  Server() {
    Diagnostics diags("fuzz.yaml");
    config = load_pipeline_text(
        "pipeline: fuzz\nstages:\n  gen: {type: generate, count: 1}\n  out: {type: \"null\", inputs: "
        "[gen]}\n",
        "fuzz.yaml", diags);
    if (!config) fail("the server's pipeline does not load: " + diags.format());
    AdminHooks hooks;
    hooks.config = [this] { return config; };
    hooks.stage_stats = [] {
      StageStats s;
      s.name = "gen";
      s.events_out = 3;
      return std::vector<StageStats>{s};
    };
    hooks.ready = [] { return false; };
    hooks.unready_reason = [] { return std::string("sink 'out' is not connected"); };
    ReloadOutcome outcome;
    outcome.generation = 2;
    outcome.ok = false;
    outcome.error = "fuzz.yaml:3:5: error: unknown stage type 'x'";
    hooks.reload = [outcome] { return outcome; };
    hooks.last_reload = [outcome] { return outcome; };
    // GET /tap with the token (in admin.dict): a tap on stages no event passes, streamed until the
    // client half-closes.
    hooks.open_tap = [this](const std::string& stage, const TapLimits& limits) {
      return taps.open(stage, limits);
    };
    admin = std::make_unique<AdminServer>(pool.get_executor(), hooks,
                                          AdminAccess{.token = "fuzz-token-0123456789"});
    admin->start("127.0.0.1:0");
    port = admin->local_endpoint().port();
  }
};

Server* server = nullptr;

bool interrupted(const boost::system::error_code& ec) { return ec == asio::error::interrupted; }

// Sends `raw`, half-closes, returns everything the server sent until it closed.
// libFuzzer's timeout timer (SIGALRM) interrupts blocking calls, so each one retries on EINTR.
std::string exchange(const std::string& raw) {
  asio::io_context io;
  tcp::socket socket(io);
  const tcp::endpoint server_at{asio::ip::make_address("127.0.0.1"), server->port};
  boost::system::error_code ec;
  do {
    socket.close(ec);
    socket.connect(server_at, ec);
  } while (interrupted(ec));
  if (ec) fail("cannot connect to the admin server: " + ec.message());
  socket.set_option(tcp::no_delay(true));
  timeval tv{5, 0};  // the server's own deadline is 10 s, but a half-closed request ends at once
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < raw.size()) {
    sent += socket.write_some(asio::buffer(raw.data() + sent, raw.size() - sent), ec);
    if (ec && !interrupted(ec)) break;  // the server may have answered early and closed
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = socket.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (interrupted(ec)) continue;
    if (ec == asio::error::would_block || ec == asio::error::try_again) fail("no answer within 5 s");
    if (ec) break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // PUT /log_level turns logging back on: a logger without sinks keeps the run's output readable.
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("fuzz"));
  server = new Server();  // lives as long as the process: libFuzzer exits without unwinding
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string reply = exchange(std::string(reinterpret_cast<const char*>(data), size));
  if (!reply.empty() && reply.rfind("HTTP/", 0) != 0) fail("an answer that is not HTTP: " + reply);
  // The server still serves: a plain request on a new connection gets its answer.
  if (size % 64 == 0) {
    std::string health = exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    if (health.rfind("HTTP/1.1 200", 0) != 0) fail("/healthz does not answer after an input: " + health);
  }
  return 0;
}
