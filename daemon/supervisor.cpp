#include "daemon/supervisor.hpp"
#include "config/loader.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "config/admin_token.hpp"
#include "config/schema/secrets.hpp"
#include "daemon/admin_server.hpp"
#include "daemon/logging.hpp"
#include "daemon/notify.hpp"
#include "daemon/signals.hpp"
#include "daemon/stage_watchdog.hpp"
#include "stages/engine/dispatcher.hpp"
#include "stages/engine/readiness.hpp"
#include "stages/engine/registry.hpp"

namespace etld {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::seconds kStatusInterval{2};
constexpr std::chrono::milliseconds kFinishPoll{50};
std::string config_hash(const std::string& text) { return fmt::format("{:016x}", hash_bytes(text)); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

class Supervisor::State {
 public:
  State(std::string file, std::shared_ptr<const PipelineConfig> config, std::string admin_address,
        std::string admin_token_file)
      : file_(std::move(file)),
        admin_address_(std::move(admin_address)),
        admin_token_file_(std::move(admin_token_file)),
        config_(std::move(config)),
        signals_(io_, SIGINT, SIGTERM, SIGHUP),
        deadline_(io_),
        finish_poll_(io_),
        status_timer_(io_),
        watchdog_(
            io_, [this] { return pipeline(); }, [this] { return this->config()->name; }) {}

  int run();
  ReloadOutcome reload();
  ReloadOutcome last_reload() const {
    std::lock_guard lock(mu_);
    return last_;
  }
  std::shared_ptr<Pipeline> pipeline() const {
    std::lock_guard lock(mu_);
    return pipeline_;
  }
  std::shared_ptr<const PipelineConfig> config() const {
    std::lock_guard lock(mu_);
    return config_;
  }
  bool ready() const { return unready_reason().empty(); }
  std::string unready_reason() const {
    bool running;
    std::shared_ptr<Pipeline> pipeline;
    {
      std::lock_guard lock(mu_);
      running = running_ && !stopping_ && pipeline_ && !pipeline_->finished();
      pipeline = pipeline_;
    }
    return etld::unready_reason(running,
                                running ? pipeline->unready_components() : std::vector<std::string>{});
  }
  AdminHooks admin_hooks();
  ~State() {  // the admin servers go before the pipelines whose pools they run on
    admin_.reset();
    retired_admin_.reset();
  }

  asio::io_context io_;

 private:
  void wait_signal();
  void on_signal(int signo);
  void drain(int signo);
  ReloadOutcome reload_here();
  void rebuild(std::shared_ptr<const PipelineConfig> next, ReloadOutcome& outcome);
  void start_admin(const std::string& address);
  AdminAccess admin_access(const PipelineConfig& config) const;
  void poll_finished();
  void report_status();
  std::string rates();

  const std::string file_;
  const std::string admin_address_;
  const std::string admin_token_file_;  // --admin-token-file; "" = the file's admin.token_file
  AdminAccess admin_access_;            // read at start and at each reload
  // Every pipeline this daemon runs registers here, so that counters go on across a rebuild.
  const std::shared_ptr<metrics::Registry> metrics_ = std::make_shared<metrics::Registry>();
  std::unique_ptr<AdminServer> admin_;  // on pipeline_'s pool
  // The pipeline a rebuild replaced, kept until the next rebuild or the end: an admin request
  // that was still running on its pool may hold it, and its pool must not be joined from there.
  std::shared_ptr<Pipeline> retired_;
  std::unique_ptr<AdminServer> retired_admin_;  // on retired_'s pool
  std::shared_ptr<void> log_level_signals_;
  mutable std::mutex mu_;  // guards what other threads read: the fields below up to `stopping_`
  std::shared_ptr<const PipelineConfig> config_;
  std::shared_ptr<Pipeline> pipeline_;
  ReloadOutcome last_;
  std::uint64_t generation_ = 1;
  bool running_ = false, stopping_ = false;

  asio::signal_set signals_;
  asio::steady_timer deadline_, finish_poll_, status_timer_;
  int signals_seen_ = 0;

  // Rates for STATUS=, between two reports.
  std::uint64_t last_in_ = 0, last_out_ = 0;
  Clock::time_point last_rates_at_ = Clock::now();

  StageWatchdog watchdog_;  // after the timers it shares the io_context with
};

int Supervisor::State::run() {
  try {
    auto pipeline = std::make_shared<Pipeline>(config_, metrics_);
    std::lock_guard lock(mu_);  // /readyz reads it from the admin server's threads
    pipeline_ = std::move(pipeline);
  } catch (const std::exception& e) {
    spdlog::error("pipeline '{}' could not be built: {}", config_->name, e.what());
    return 1;
  }
  log_level_signals_ = handle_log_level_signals(io_.get_executor());
  if (!admin_address_.empty()) {
    try {
      admin_access_ = admin_access(*config_);
      start_admin(admin_address_);
    } catch (const ConfigError& e) {
      spdlog::error("{}{}", e.what(), e.hint().empty() ? "" : " (" + e.hint() + ")");
      return 1;
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
  }
  {
    std::lock_guard lock(mu_);  // the admin endpoint (started above) reads it
    last_.generation = generation_;
    last_.config_hash = config_hash(config_->text);
    last_.at = std::chrono::system_clock::now();
  }
  wait_signal();
  spdlog::info(
      "pipeline '{}' starting: {} stages, {} threads (generation 1, config {})", config_->name,
      config_->stages.size(),
      config_->threads > 0 ? config_->threads : static_cast<int>(std::thread::hardware_concurrency()),
      last_.config_hash);
  pipeline_->start();
  {
    std::lock_guard lock(mu_);
    running_ = true;
  }
  notify_systemd("READY=1");
  notify_systemd(fmt::format("STATUS=pipeline '{}' running (generation {})", config_->name, generation_));
  last_rates_at_ = Clock::now();
  watchdog_.start(*metrics_);
  status_timer_.expires_after(kStatusInterval);
  status_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) report_status();
  });
  poll_finished();
  io_.run();

  {
    std::lock_guard lock(mu_);
    running_ = false;
  }
  io_.restart();
  io_.poll();  // reloads posted meanwhile answer "not running"
  signals_.remove(SIGHUP);
  log_level_signals_.reset();
  ignore_control_signals();  // not handled any more, and their default would kill the process
  watchdog_.stop();
  admin_.reset();
  retired_admin_.reset();
  auto pipeline = this->pipeline();
  if (auto error = pipeline->error()) {
    spdlog::error("pipeline '{}' failed: {}", config()->name, *error);
    return 1;
  }
  spdlog::info("pipeline '{}' finished", config()->name);
  return 0;
}

void Supervisor::State::wait_signal() {
  signals_.async_wait([this](boost::system::error_code ec, int signo) {
    if (ec) return;
    on_signal(signo);
    wait_signal();
  });
}

void Supervisor::State::on_signal(int signo) {
  if (signo == SIGHUP) {
    if (stopping_) {
      spdlog::warn("SIGHUP ignored: the pipeline is draining");
      return;
    }
    spdlog::info("SIGHUP: reloading {}", file_);
    reload_here();
    return;
  }
  drain(signo);
}

void Supervisor::State::drain(int signo) {
  if (++signals_seen_ > 1) {
    spdlog::critical("second signal ({}): exiting now without draining", signo);
    std::_Exit(130);
  }
  auto timeout = config()->shutdown_timeout;
  spdlog::info("signal {}: draining (at most {}ms; send it again to exit now)", signo, timeout.count());
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  notify_systemd("STOPPING=1");
  notify_systemd("STATUS=draining");
  pipeline()->stop();
  deadline_.expires_after(timeout);
  deadline_.async_wait([timeout](boost::system::error_code e) {
    if (e) return;
    spdlog::critical("shutdown_timeout of {}ms passed before the pipeline drained: exiting", timeout.count());
    std::_Exit(1);
  });
}

void Supervisor::State::poll_finished() {
  if (pipeline()->finished()) {
    io_.stop();
    return;
  }
  finish_poll_.expires_after(kFinishPoll);
  finish_poll_.async_wait([this](boost::system::error_code ec) {
    if (!ec) poll_finished();
  });
}

// Events in: emitted by the sources; out: received by the sinks.
std::string Supervisor::State::rates() {
  auto config = this->config();
  std::set<std::string> sources, sinks;
  for (const auto& sc : config->stages)
    if (const auto* type = find_stage_type(sc.type)) {
      if (type->role == Role::source) sources.insert(sc.name);
      if (type->role == Role::sink) sinks.insert(sc.name);
    }
  std::uint64_t in = 0, out = 0;
  for (const auto& s : pipeline()->stats()) {
    if (sources.count(s.name)) in += s.events_out;
    if (sinks.count(s.name)) out += s.events_in;
  }
  auto now = Clock::now();
  double secs = std::max(1e-3, std::chrono::duration<double>(now - last_rates_at_).count());
  // A rebuilt pipeline counts from zero again.
  auto in_rate = in >= last_in_ ? static_cast<double>(in - last_in_) / secs : 0.0;
  auto out_rate = out >= last_out_ ? static_cast<double>(out - last_out_) / secs : 0.0;
  last_in_ = in;
  last_out_ = out;
  last_rates_at_ = now;
  return fmt::format("{:.0f} events/s in, {:.0f} events/s out", in_rate, out_rate);
}

void Supervisor::State::report_status() {
  auto line = rates();
  if (stopping_)
    notify_systemd("STATUS=draining: " + line);
  else
    notify_systemd(fmt::format("STATUS=generation {}: {}{}", generation_, line,
                               last_.ok ? "" : " (last reload refused, see the log)"));
  status_timer_.expires_after(kStatusInterval);
  status_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) report_status();
  });
}

ReloadOutcome Supervisor::State::reload() {
  if (io_.get_executor().running_in_this_thread()) return reload_here();
  std::promise<ReloadOutcome> promise;
  auto result = promise.get_future();
  {
    std::lock_guard lock(mu_);  // held while posting: run() cannot finish its last poll in between
    if (!running_) {
      ReloadOutcome out = last_;
      out.ok = false;
      out.error = "the pipeline is not running";
      out.restarted_stages.clear();
      return out;
    }
    asio::post(io_, [this, &promise] { promise.set_value(reload_here()); });
  }
  return result.get();
}

ReloadOutcome Supervisor::State::reload_here() {
  ReloadOutcome outcome;
  outcome.at = std::chrono::system_clock::now();
  outcome.generation = generation_;
  if (!running_ || stopping_) {
    outcome.ok = false;
    outcome.error = running_ ? "the pipeline is draining" : "the pipeline is not running";
    outcome.config_hash = last_.config_hash;
    return outcome;
  }
  notify_systemd("RELOADING=1");
  Diagnostics diags(file_);
  std::shared_ptr<const PipelineConfig> next = load_pipeline(file_, diags);
  outcome.config_hash = config_hash(next ? next->text : read_file(file_));
  auto current = config();
  std::string refusal;  // why `next` is not taken
  if (!next) {
    refusal = diags.format();
    while (!refusal.empty() && refusal.back() == '\n') refusal.pop_back();
  } else if (!admin_address_.empty()) {
    try {  // even for an unchanged file: the token file may have been rotated
      admin_access_ = admin_access(*next);
      if (admin_) admin_->set_access(admin_access_);
    } catch (const ConfigError& e) {
      refusal = std::string(e.what()) + (e.hint().empty() ? "" : " (" + e.hint() + ")");
      next = nullptr;
    }
  }
  if (!next) {
    outcome.ok = false;
    outcome.error = refusal;
    spdlog::error("reload refused, generation {} keeps running:\n{}", generation_, outcome.error);
  } else if (next->text == current->text) {
    spdlog::info("reload: {} is unchanged (generation {})", file_, generation_);
  } else {
    if (next->log_level != current->log_level || next->log_format != current->log_format)
      spdlog::warn("reload: log_level and log_format changes take effect at the next start");
    auto result = pipeline()->reconfigure(next, next->shutdown_timeout);
    if (!result.needs_rebuild.empty()) {
      spdlog::info("reload: {}, so the whole pipeline is rebuilt (drained, then started again)",
                   result.needs_rebuild);
      rebuild(next, outcome);
    } else if (result.applied) {
      std::lock_guard lock(mu_);
      config_ = next;
      outcome.generation = ++generation_;
      outcome.restarted_stages = result.restarted;
      if (!result.error.empty()) outcome.error = result.error;
    } else {
      outcome.ok = false;
      outcome.error = result.error;
    }
  }
  // Stored for GET /reload and answered to POST /reload: a message from a library (libpq,
  // librdkafka) inside it must not carry a secret out.
  outcome.error = redact_secrets(outcome.error);
  if (outcome.ok)
    spdlog::info("reload: generation {} (config {}) running; {}{}", outcome.generation, outcome.config_hash,
                 outcome.restarted_stages.empty() ? std::string("no stage restarted")
                                                  : "restarted: " + join(outcome.restarted_stages),
                 outcome.error.empty() ? "" : "; " + outcome.error);
  else if (next)
    spdlog::error("reload failed, generation {} keeps running: {}", generation_, outcome.error);
  {
    std::lock_guard lock(mu_);
    last_ = outcome;
  }
  notify_systemd("READY=1");
  notify_systemd(outcome.ok ? fmt::format("STATUS=reloaded: generation {} (config {}){}", outcome.generation,
                                          outcome.config_hash,
                                          outcome.restarted_stages.empty()
                                              ? std::string()
                                              : ", restarted " + join(outcome.restarted_stages))
                            : fmt::format("STATUS=reload refused (config {}), generation {} keeps running",
                                          outcome.config_hash, outcome.generation));
  return outcome;
}

// The graph cannot take the new configuration live: build the new pipeline first (nothing
// changes if that fails), drain the old one (its sources commit), then start the new one.
void Supervisor::State::rebuild(std::shared_ptr<const PipelineConfig> next, ReloadOutcome& outcome) {
  std::shared_ptr<Pipeline> fresh;
  try {
    fresh = std::make_shared<Pipeline>(next, metrics_);
  } catch (const std::exception& e) {
    outcome.ok = false;
    outcome.error = std::string("the new pipeline could not be built: ") + e.what();
    return;
  }
  auto old = pipeline();
  old->stop();
  if (!old->wait_for(next->shutdown_timeout))
    spdlog::error(
        "reload: the old pipeline did not drain within {}ms; what it did not settle is not committed "
        "and will be delivered again",
        next->shutdown_timeout.count());
  else if (auto error = old->error())
    spdlog::warn("reload: the old pipeline ended with: {}", *error);
  std::string admin_at;
  if (admin_) {
    auto ep = admin_->local_endpoint();  // the same port, even if the first one was picked (port 0)
    admin_at = (ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string()) +
               ":" + std::to_string(ep.port());
    // Not stopped here: a POST /reload that asked for this rebuild waits for its answer on it.
    admin_->retire();
  }
  retired_admin_.reset();  // the one of the rebuild before, on the pool of retired_
  retired_admin_ = std::move(admin_);
  fresh->start();
  {
    std::lock_guard lock(mu_);
    pipeline_ = fresh;
    config_ = next;
    outcome.generation = ++generation_;
  }
  retired_ = old;
  if (!admin_at.empty()) {
    try {
      start_admin(admin_at);
    } catch (const std::exception& e) {
      outcome.error = e.what();
      spdlog::error("reload: {}", e.what());
    }
  }
  for (const auto& sc : next->stages) outcome.restarted_stages.push_back(sc.name);
  watchdog_.pipeline_rebuilt();
  last_in_ = last_out_ = 0;
}

// The old acceptor closes on its own strand, so the port may still be taken for a moment.
void Supervisor::State::start_admin(const std::string& address) {
  for (int attempt = 1;; ++attempt) {
    auto server = std::make_unique<AdminServer>(pipeline()->executor(), admin_hooks(), admin_access_);
    try {
      server->start(address);
    } catch (const std::exception&) {
      if (attempt >= 20) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    auto ep = server->local_endpoint();
    spdlog::info("admin endpoint listening on {}:{} ({})", ep.address().to_string(), ep.port(),
                 admin_access_.token.empty()
                     ? "read-only: POST /reload, PUT /log_level and GET /tap are off without admin.token_file"
                     : "POST /reload, PUT /log_level and GET /tap need the bearer token of the token file");
    admin_ = std::move(server);
    return;
  }
}

// The token file of --admin-token-file, else of admin.token_file; throws ConfigError if it is unfit.
AdminAccess Supervisor::State::admin_access(const PipelineConfig& config) const {
  AdminAccess access;
  access.allowed_hosts = config.admin_allowed_hosts;
  const auto& file = admin_token_file_.empty() ? config.admin_token_file : admin_token_file_;
  if (!file.empty()) access.token = read_admin_token(file);
  return access;
}

AdminHooks Supervisor::State::admin_hooks() {
  return AdminHooks{
      .stage_stats =
          [this] {
            auto p = pipeline();
            return p ? p->stats() : std::vector<StageStats>{};
          },
      .config = [this] { return config(); },
      .ready = [this] { return ready(); },
      .reload = [this] { return reload(); },
      .last_reload = [this] { return last_reload(); },
      .unready_reason = [this] { return unready_reason(); },
      .collect_metrics = [this](metrics::Exposition& out) { metrics_->collect(out); },
      .open_tap = [this](const std::string& stage, const TapLimits& limits) -> std::shared_ptr<Tap> {
        auto p = pipeline();
        if (!p) throw std::runtime_error("no pipeline runs");
        return p->tap(stage, limits);
      },
  };
}

Supervisor::Supervisor(std::string file, std::shared_ptr<const PipelineConfig> config,
                       std::string admin_address, std::string admin_token_file)
    : s_(std::make_unique<State>(std::move(file), std::move(config), std::move(admin_address),
                                 std::move(admin_token_file))) {}
Supervisor::~Supervisor() = default;
int Supervisor::run() { return s_->run(); }
boost::asio::any_io_executor Supervisor::executor() { return s_->io_.get_executor(); }
ReloadOutcome Supervisor::reload() { return s_->reload(); }
ReloadOutcome Supervisor::last_reload() const { return s_->last_reload(); }
std::vector<StageStats> Supervisor::stage_stats() const {
  auto pipeline = s_->pipeline();
  return pipeline ? pipeline->stats() : std::vector<StageStats>{};
}
std::shared_ptr<const PipelineConfig> Supervisor::config() const { return s_->config(); }
bool Supervisor::ready() const { return s_->ready(); }

AdminHooks Supervisor::admin_hooks() { return s_->admin_hooks(); }

}  // namespace etld
