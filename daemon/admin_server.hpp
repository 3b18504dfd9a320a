// The admin HTTP endpoint (HTTP/1.1, Boost.Beast) on the pipeline's own thread pool:
//   GET /metrics      Prometheus text format 0.0.4
//   GET /healthz      200 while the process serves
//   GET /readyz       200 when the pipeline runs and its sinks are connected, else 503 and why
//   GET /pipeline     the stage graph as JSON with live counters per instance
//   GET /reload       the last reload outcome as JSON; POST /reload reloads now
//   GET /log_level    the level in force; PUT /log_level with a level name changes it
// Bounded: request header and body sizes, concurrent connections and the time a request may take
// to arrive are limited. Handlers never block a pool thread: POST /reload runs the reload hook on
// a thread of its own (one reload at a time) and answers when it is done.
// Threading: start/stop from one control thread; the server must be stopped (or destroyed)
// before the executor's pool goes away.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "daemon/control.hpp"

namespace etld {

struct AdminLimits {
  std::size_t max_connections = 64;  // beyond this, up to as many more are answered 503
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 4 * 1024;
  std::chrono::milliseconds request_timeout{10'000};  // to receive one whole request
};

class AdminServer {
 public:
  AdminServer(boost::asio::any_io_executor executor, AdminHooks hooks, AdminLimits limits = {});
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Listens on "HOST:PORT" (port 0 picks a free one). Throws std::runtime_error saying why not.
  void start(const std::string& address);
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting, closes every connection and waits for a running reload hook to return.
  void stop();
  // Stops accepting and closes every connection but one waiting for a reload, which gets its
  // answer; does not wait. For a reload that replaces the pipeline whose pool serves this.
  void retire();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// The /metrics body: stage metrics from the hooks plus everything in metrics::registry().
std::string render_metrics(const AdminHooks& hooks);
// The /pipeline body.
std::string render_pipeline_json(const AdminHooks& hooks);
std::string render_reload_json(const ReloadOutcome& outcome);

}  // namespace etld
