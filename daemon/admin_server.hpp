// The admin HTTP endpoint (HTTP/1.1, Boost.Beast) on the pipeline's own thread pool:
//   GET /metrics      Prometheus text format 0.0.4
//   GET /healthz      200 while the process serves
//   GET /readyz       200 when the pipeline runs and its sinks are connected, else 503 and why
//   GET /pipeline     the stage graph as JSON with live counters per instance
//   GET /reload       the last reload outcome as JSON; POST /reload reloads now
//   GET /log_level    the level in force; PUT /log_level with a level name changes it
// Who may do what (a bearer token for the two changes, Host and Origin checks) is in
// admin_request.hpp. Bounded: request header and body sizes, connections in all and per client
// address, and the time a request may take to arrive (AdminLimits). Handlers never block a pool
// thread: POST /reload runs the reload hook on a thread of its own (one reload at a time) and
// answers when it is done.
// Threading: start/stop from one control thread; the server must be stopped (or destroyed)
// before the executor's pool goes away. set_access() may be called from any thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "daemon/admin_request.hpp"
#include "daemon/control.hpp"

namespace etld {

class AdminServer {
 public:
  AdminServer(boost::asio::any_io_executor executor, AdminHooks hooks, AdminAccess access = {},
              AdminLimits limits = {});
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Listens on "HOST:PORT" (port 0 picks a free one). Throws std::runtime_error saying why not.
  void start(const std::string& address);
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // For the requests that come next (a reload read a new token file).
  void set_access(AdminAccess access);
  // Stops accepting, closes every connection and waits for a running reload hook to return.
  void stop();
  // Stops accepting and closes every connection but one waiting for a reload, which gets its
  // answer; does not wait. For a reload that replaces the pipeline whose pool serves this.
  void retire();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace etld
