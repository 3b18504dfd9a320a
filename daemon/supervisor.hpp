// The running daemon: owns the pipeline of the current configuration generation, handles the
// signals (SIGTERM/SIGINT drain, SIGHUP reload), keeps systemd informed (READY, RELOADING,
// STOPPING, STATUS with rates, WATCHDOG fed by the engine's progress check) and answers the
// admin endpoint through AdminHooks.
//
// Threading: run() runs signals, timers and reloads on the calling thread (the supervisor's
// thread). reload() may be called from any thread: it runs the reload on that thread and waits.
// The other accessors are thread-safe and never block on a reload.
//
// An admin endpoint plugs in between construction and run(): serve admin_hooks(), on executor()
// or on threads of its own; the hooks stay valid for the Supervisor's lifetime.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/schema/pipeline.hpp"
#include "daemon/control.hpp"
#include "stages/engine/pipeline.hpp"

namespace etld {

class Supervisor {
 public:
  // A non-empty admin_address ("HOST:PORT") serves the admin endpoint there, on the running
  // pipeline's thread pool; a rebuild moves it to the new pipeline's pool, same address. Its
  // bearer token comes from admin_token_file if set, else from the file's admin.token_file, read
  // again at each reload; an unfit token file fails run() and refuses a reload.
  Supervisor(std::string file, std::shared_ptr<const PipelineConfig> config, std::string admin_address = {},
             std::string admin_token_file = {});
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Builds and starts the pipeline, runs until it finished (sources ended, or drained after a
  // signal) and returns the exit status: 0, or 1 if it could not be built or failed.
  int run();

  // Of the supervisor's thread, for whatever else the daemon serves (the admin endpoint).
  boost::asio::any_io_executor executor();

  ReloadOutcome reload();  // re-reads the file; blocks until the reload is done
  ReloadOutcome last_reload() const;
  std::vector<StageStats> stage_stats() const;
  std::shared_ptr<const PipelineConfig> config() const;
  bool ready() const;  // the pipeline runs and is not draining
  AdminHooks admin_hooks();

  class State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace etld
