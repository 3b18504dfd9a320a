#include "daemon/admin_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/chrono.h>
#include <atomic>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "daemon/logging.hpp"
#include "stages/dispatcher.hpp"
#include "stages/metrics.hpp"
#include "stages/readiness.hpp"
#include "stages/registry.hpp"
#include "stages/value.hpp"

namespace etld {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Labels = std::vector<std::pair<std::string, std::string>>;

namespace {

std::string time_text(std::chrono::system_clock::time_point t) {
  if (t == std::chrono::system_clock::time_point{}) return "";
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
}

Value u64(std::uint64_t v) { return Value(static_cast<std::int64_t>(v)); }

}  // namespace

std::string render_reload_json(const ReloadOutcome& o) {
  Array restarted;
  for (const auto& s : o.restarted_stages) restarted.emplace_back(s);
  Object obj{{"generation", u64(o.generation)},
             {"config_hash", Value(o.config_hash)},
             {"ok", Value(o.ok)},
             {"error", o.ok && o.error.empty() ? Value() : Value(o.error)},
             {"restarted_stages", Value(std::move(restarted))},
             {"at", Value(time_text(o.at))}};
  return Value(std::move(obj)).to_json() + "\n";
}

std::string render_pipeline_json(const AdminHooks& hooks) {
  auto config = hooks.config ? hooks.config() : nullptr;
  auto stats = hooks.stage_stats ? hooks.stage_stats() : std::vector<StageStats>{};
  Array stages;
  if (config) {
    for (const auto& sc : config->stages) {
      Array inputs, instances;
      for (const auto& in : sc.inputs) inputs.emplace_back(in);
      for (const auto& s : stats) {
        if (s.name != sc.name) continue;
        instances.emplace_back(Object{{"instance", Value(s.instance)},
                                      {"events_in", u64(s.events_in)},
                                      {"events_out", u64(s.events_out)},
                                      {"batches_in", u64(s.batches_in)},
                                      {"acked", u64(s.acked)},
                                      {"dead_lettered", u64(s.dead_lettered)},
                                      {"failed", u64(s.failed)},
                                      {"buffered", u64(s.buffered)},
                                      {"outstanding_demand", u64(s.outstanding_demand)},
                                      {"restarts", u64(s.restarts)}});
      }
      const auto* type = find_stage_type(sc.type);
      stages.emplace_back(Object{{"name", Value(sc.name)},
                                 {"type", Value(sc.type)},
                                 {"role", Value(type ? role_name(type->role) : "unknown")},
                                 {"inputs", Value(std::move(inputs))},
                                 {"concurrency", Value(sc.concurrency)},
                                 {"instances", Value(std::move(instances))}});
    }
  }
  Object root{{"pipeline", Value(config ? config->name : "")},
              {"file", Value(config ? config->file : "")},
              {"ready", Value(hooks.ready ? hooks.ready() : false)}};
  if (hooks.last_reload) root.emplace_back("generation", u64(hooks.last_reload().generation));
  root.emplace_back("stages", Value(std::move(stages)));
  return Value(std::move(root)).to_json() + "\n";
}

std::string render_metrics(const AdminHooks& hooks) {
  metrics::Exposition out;
  auto config = hooks.config ? hooks.config() : nullptr;
  std::string pipeline = config ? config->name : "";
  struct StageMetric {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t StageStats::*field;
  };
  static const StageMetric stage_metrics[] = {
      {"etld_stage_events_in_total", "counter", "Events received by the stage instance.",
       &StageStats::events_in},
      {"etld_stage_events_out_total", "counter", "Events sent downstream by the stage instance.",
       &StageStats::events_out},
      {"etld_stage_batches_in_total", "counter", "Batches received by the stage instance.",
       &StageStats::batches_in},
      {"etld_stage_events_acked_total", "counter",
       "Sinks: events reported fully handled (written and settled).", &StageStats::acked},
      {"etld_stage_events_dead_lettered_total", "counter",
       "Transforms: events rejected to the dead-letter path; sinks without a dead-letter destination: "
       "rejected "
       "events settled dead_lettered.",
       &StageStats::dead_lettered},
      {"etld_stage_events_failed_total", "counter",
       "Events dropped by a failing instance and settled failed (never committed).", &StageStats::failed},
      {"etld_stage_restarts_total", "counter", "Restarts of the stage instance after failures.",
       &StageStats::restarts},
      {"etld_stage_buffered_events", "gauge", "Events the instance holds for downstream, waiting for demand.",
       &StageStats::buffered},
      {"etld_stage_outstanding_demand", "gauge",
       "Events downstream asked the instance for and has not received.", &StageStats::outstanding_demand},
  };
  for (const auto& m : stage_metrics) out.family(m.name, m.type, m.help);
  out.family("etld_stage_batch_processing_seconds", "histogram",
             "Time a transform spent in process() or a sink in consume(), per input batch.");
  if (hooks.stage_stats) {
    for (const auto& s : hooks.stage_stats()) {
      Labels labels{{"pipeline", pipeline}, {"stage", s.name}, {"instance", std::to_string(s.instance)}};
      for (const auto& m : stage_metrics) out.sample(m.name, labels, static_cast<double>(s.*(m.field)));
      if (s.processing_seconds.count > 0 || s.batches_in > 0)
        out.histogram("etld_stage_batch_processing_seconds", labels, s.processing_seconds);
    }
  }
  out.family("etld_pipeline_ready", "gauge", "1 when the pipeline runs and its sinks are connected.");
  out.sample("etld_pipeline_ready", {{"pipeline", pipeline}}, hooks.ready && hooks.ready() ? 1 : 0);
  if (hooks.last_reload) {
    auto last = hooks.last_reload();
    out.family("etld_config_generation", "gauge", "Generation of the running configuration (1 at start-up).");
    out.sample("etld_config_generation", {{"pipeline", pipeline}}, static_cast<double>(last.generation));
    out.family("etld_last_reload_success", "gauge", "1 when the last reload attempt succeeded.");
    out.sample("etld_last_reload_success", {{"pipeline", pipeline}}, last.ok ? 1 : 0);
  }
  metrics::registry().collect(out);
  return out.render();
}

// ---- the server ---------------------------------------------------------------------------------

class Session;

struct AdminServer::State {
  AdminHooks hooks;
  AdminLimits limits;
  std::optional<tcp::acceptor> acceptor;
  std::atomic<std::size_t> connections{0}, rejected{0};
  std::atomic<bool> reloading{false}, stopped{false};
  std::mutex mu;  // guards sessions and reload_thread
  std::set<std::weak_ptr<Session>, std::owner_less<std::weak_ptr<Session>>> sessions;
  std::thread reload_thread;
};

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response make_response(http::status status, unsigned version, std::string body,
                       const char* content_type = "text/plain; charset=utf-8") {
  Response res{status, version};
  res.set(http::field::server, "etld");
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<AdminServer::State> state, bool over_limit)
      : stream_(std::move(socket)),
        state_(std::move(state)),
        buffer_(state_->limits.header_limit + state_->limits.body_limit + 1024),
        over_limit_(over_limit) {}

  ~Session() { (over_limit_ ? state_->rejected : state_->connections).fetch_sub(1); }

  void run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  bool awaiting_reload() const { return awaiting_reload_; }

  void close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream_.close();
    });
  }

 private:
  void read() {
    if (state_->stopped) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(state_->limits.header_limit));
    parser_->body_limit(state_->limits.body_limit);
    stream_.expires_after(state_->limits.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    if (ec) {
      if (ec.category() != http::make_error_code(http::error::end_of_stream).category() &&
          ec != beast::http::error::buffer_overflow)
        return;  // the connection broke: nothing to answer
      http::status status = http::status::bad_request;
      std::string why = "malformed request: " + ec.message() + "\n";
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        status = http::status::request_header_fields_too_large;
        why = "request header larger than " + std::to_string(state_->limits.header_limit) + " bytes\n";
      } else if (ec == http::error::body_limit) {
        status = http::status::payload_too_large;
        why = "request body larger than " + std::to_string(state_->limits.body_limit) + " bytes\n";
      }
      send(make_response(status, 11, std::move(why)), /*close=*/true);
      return;
    }
    Request req = parser_->release();
    if (over_limit_) {
      send(make_response(http::status::service_unavailable, req.version(),
                         "too many admin connections (at most " +
                             std::to_string(state_->limits.max_connections) + ")\n"),
           true);
      return;
    }
    handle(std::move(req));
  }

  void handle(Request req) {
    const auto target = std::string(req.target());
    const auto path = target.substr(0, target.find('?'));
    const auto method = req.method();
    const unsigned v = req.version();
    const bool close = !req.keep_alive();
    auto& hooks = state_->hooks;
    auto only = [&](std::initializer_list<http::verb> allowed, const char* allow_text) {
      for (auto m : allowed)
        if (m == method) return true;
      auto res = make_response(http::status::method_not_allowed, v,
                               "method " + std::string(req.method_string()) + " not allowed on " + path +
                                   " (allowed: " + allow_text + ")\n");
      res.set(http::field::allow, allow_text);
      send(std::move(res), close);
      return false;
    };

    if (path == "/metrics") {
      if (!only({http::verb::get}, "GET")) return;
      send(make_response(http::status::ok, v, render_metrics(hooks),
                         "text/plain; version=0.0.4; charset=utf-8"),
           close);
    } else if (path == "/healthz") {
      if (!only({http::verb::get}, "GET")) return;
      send(make_response(http::status::ok, v, "ok\n"), close);
    } else if (path == "/readyz") {
      if (!only({http::verb::get}, "GET")) return;
      if (hooks.ready && hooks.ready()) {
        send(make_response(http::status::ok, v, "ready\n"), close);
      } else {
        std::string why = hooks.unready_reason ? hooks.unready_reason() : "";
        if (why.empty()) why = "the pipeline is not running";
        send(make_response(http::status::service_unavailable, v, "not ready: " + why + "\n"), close);
      }
    } else if (path == "/pipeline") {
      if (!only({http::verb::get}, "GET")) return;
      send(make_response(http::status::ok, v, render_pipeline_json(hooks), "application/json"), close);
    } else if (path == "/reload") {
      if (!only({http::verb::get, http::verb::post}, "GET, POST")) return;
      if (method == http::verb::get) {
        if (!hooks.last_reload) {
          send(make_response(http::status::not_found, v, "no reload information\n"), close);
          return;
        }
        send(make_response(http::status::ok, v, render_reload_json(hooks.last_reload()), "application/json"),
             close);
      } else {
        post_reload(v, close);
      }
    } else if (path == "/log_level") {
      if (!only({http::verb::get, http::verb::put}, "GET, PUT")) return;
      if (method == http::verb::put) {
        std::string name = req.body();
        while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
        try {
          auto level = parse_log_level(name);
          set_log_level(level);
          spdlog::warn("admin endpoint: log level set to {}", spdlog::level::to_string_view(level));
        } catch (const std::invalid_argument& e) {
          send(make_response(http::status::bad_request, v, std::string(e.what()) + "\n"), close);
          return;
        }
      }
      auto body = fmt::format("{}\n", spdlog::level::to_string_view(current_log_level()));
      send(make_response(http::status::ok, v, std::move(body)), close);
    } else {
      send(make_response(http::status::not_found, v,
                         "no such path " + path +
                             " (try /metrics, /healthz, /readyz, /pipeline, /reload, /log_level)\n"),
           close);
    }
  }

  // The reload hook may take long (it builds and swaps a pipeline): it runs on a thread of its
  // own, and the answer is posted back to this connection's strand.
  void post_reload(unsigned v, bool close) {
    if (!state_->hooks.reload) {
      send(make_response(http::status::not_implemented, v, "reload is not available\n"), close);
      return;
    }
    if (state_->reloading.exchange(true)) {
      send(make_response(http::status::conflict, v, "a reload is already running\n"), close);
      return;
    }
    std::lock_guard lock(state_->mu);
    if (state_->reload_thread.joinable()) state_->reload_thread.join();  // the previous, finished one
    awaiting_reload_ = true;
    state_->reload_thread = std::thread([self = shared_from_this(), v, close] {
      ReloadOutcome outcome;
      std::string failure;
      try {
        outcome = self->state_->hooks.reload();
      } catch (const std::exception& e) {
        failure = e.what();
      }
      self->state_->reloading = false;
      asio::post(self->stream_.get_executor(), [self, v, close, outcome, failure] {
        self->awaiting_reload_ = false;
        if (!failure.empty()) {
          self->send(
              make_response(http::status::internal_server_error, v, "reload failed: " + failure + "\n"),
              close);
          return;
        }
        self->send(make_response(outcome.ok ? http::status::ok : http::status::unprocessable_entity, v,
                                 render_reload_json(outcome), "application/json"),
                   close);
      });
    });
  }

  void send(Response res, bool close) {
    res.keep_alive(!close);
    res_ = std::move(res);
    stream_.expires_after(state_->limits.request_timeout);
    http::async_write(stream_, res_, [self = shared_from_this(), close](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (close) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->read();
    });
  }

  beast::tcp_stream stream_;
  std::shared_ptr<AdminServer::State> state_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  std::atomic<bool> awaiting_reload_{false};  // its answer comes when the reload hook returns
  bool over_limit_;
};

namespace {

void accept_next(const std::shared_ptr<AdminServer::State>& state, asio::any_io_executor ex) {
  if (state->stopped) return;
  state->acceptor->async_accept(asio::make_strand(ex), [state, ex](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || state->stopped) return;
    if (!ec) {
      bool over = state->connections.fetch_add(1) >= state->limits.max_connections;
      if (over) {
        state->connections.fetch_sub(1);
        if (state->rejected.fetch_add(1) >= state->limits.max_connections) {
          state->rejected.fetch_sub(1);
          beast::error_code ignored;
          socket.close(ignored);  // far over the limit: not even a 503
          accept_next(state, ex);
          return;
        }
      }
      auto session = std::make_shared<Session>(std::move(socket), state, over);
      {
        std::lock_guard lock(state->mu);
        std::erase_if(state->sessions, [](const auto& w) { return w.expired(); });
        state->sessions.insert(session);
      }
      session->run();
    } else {
      spdlog::warn("admin endpoint: accept failed: {}", ec.message());
    }
    accept_next(state, ex);
  });
}

tcp::endpoint resolve(const std::string& address, asio::any_io_executor ex) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    throw std::runtime_error("admin address '" + address + "' is not HOST:PORT");
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  unsigned long port_number = 0;
  try {
    port_number = std::stoul(port);
  } catch (const std::exception&) {
    port_number = 65536;
  }
  if (port_number > 65535)
    throw std::runtime_error("admin address '" + address + "': bad port '" + port + "'");
  if (!ec) return tcp::endpoint(ip, static_cast<unsigned short>(port_number));
  tcp::resolver resolver(ex);
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty())
    throw std::runtime_error("admin address '" + address + "': cannot resolve '" + host +
                             "': " + ec.message());
  return results.begin()->endpoint();
}

}  // namespace

AdminServer::AdminServer(asio::any_io_executor executor, AdminHooks hooks, AdminLimits limits)
    : state_(std::make_shared<State>()) {
  state_->hooks = std::move(hooks);
  state_->limits = limits;
  state_->acceptor.emplace(asio::make_strand(executor));
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start(const std::string& address) {
  auto endpoint = resolve(address, state_->acceptor->get_executor());
  beast::error_code ec;
  auto& acc = *state_->acceptor;
  auto fail = [&](const char* what) {
    throw std::runtime_error("admin endpoint: cannot " + std::string(what) + " " + address + ": " +
                             ec.message());
  };
  acc.open(endpoint.protocol(), ec);
  if (ec) fail("open a socket for");
  acc.set_option(asio::socket_base::reuse_address(true), ec);
  acc.bind(endpoint, ec);
  if (ec) fail("bind to");
  acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen on");
  accept_next(state_, acc.get_executor());
}

tcp::endpoint AdminServer::local_endpoint() const {
  beast::error_code ec;
  return state_->acceptor->local_endpoint(ec);
}

void AdminServer::retire() {
  if (state_->stopped.exchange(true)) return;
  asio::post(state_->acceptor->get_executor(), [state = state_] {
    beast::error_code ignored;
    state->acceptor->close(ignored);
  });
  std::lock_guard lock(state_->mu);
  for (auto& w : state_->sessions)
    if (auto s = w.lock(); s && !s->awaiting_reload()) s->close();
}

void AdminServer::stop() {
  retire();
  std::thread reload;
  {
    std::lock_guard lock(state_->mu);
    for (auto& w : state_->sessions)
      if (auto s = w.lock()) s->close();
    state_->sessions.clear();
    reload = std::move(state_->reload_thread);
  }
  if (reload.joinable()) reload.join();
}

}  // namespace etld
