#include "daemon/admin_request.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <mutex>
#include <sstream>

#include <fmt/chrono.h>
#include <spdlog/spdlog.h>

#include "daemon/logging.hpp"
#include "stages/engine/dispatcher.hpp"
#include "stages/engine/metrics.hpp"
#include "stages/engine/registry.hpp"
#include "stages/engine/value.hpp"

namespace etld {

namespace http = boost::beast::http;
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

namespace {

using metrics::Metric;
using metrics::Type;

struct StageMetric {
  Metric metric;
  std::uint64_t StageStats::*field;
};
const StageMetric kStageMetrics[] = {
    {{"etld_stage_events_in_total", Type::counter, "Events received by the stage instance."},
     &StageStats::events_in},
    {{"etld_stage_events_out_total", Type::counter, "Events sent downstream by the stage instance."},
     &StageStats::events_out},
    {{"etld_stage_batches_in_total", Type::counter, "Batches received by the stage instance."},
     &StageStats::batches_in},
    {{"etld_stage_events_acked_total", Type::counter,
      "Sinks: events reported fully handled (written and settled)."},
     &StageStats::acked},
    {{"etld_stage_events_dead_lettered_total", Type::counter,
      "Transforms: events rejected to the dead-letter path; sinks without a dead-letter destination: "
      "rejected "
      "events settled dead_lettered."},
     &StageStats::dead_lettered},
    {{"etld_stage_events_failed_total", Type::counter,
      "Events dropped by a failing instance and settled failed (never committed)."},
     &StageStats::failed},
    {{"etld_stage_restarts_total", Type::counter, "Restarts of the stage instance after failures."},
     &StageStats::restarts},
    {{"etld_stage_buffered_events", Type::gauge,
      "Events the instance holds for downstream, waiting for demand."},
     &StageStats::buffered},
    {{"etld_stage_outstanding_demand", Type::gauge,
      "Events downstream asked the instance for and has not received."},
     &StageStats::outstanding_demand},
};
constexpr Metric kBatchProcessingSeconds{
    "etld_stage_batch_processing_seconds", Type::histogram,
    "Time a transform spent in process() or a sink in consume(), per input batch."};
constexpr Metric kPipelineReady{"etld_pipeline_ready", Type::gauge,
                                "1 when the pipeline runs and its sinks are connected."};
constexpr Metric kConfigGeneration{"etld_config_generation", Type::gauge,
                                   "Generation of the running configuration (1 at start-up)."};
constexpr Metric kLastReloadSuccess{"etld_last_reload_success", Type::gauge,
                                    "1 when the last reload attempt succeeded."};

}  // namespace

std::string render_metrics(const AdminHooks& hooks) {
  metrics::Exposition out;
  auto config = hooks.config ? hooks.config() : nullptr;
  std::string pipeline = config ? config->name : "";
  for (const auto& m : kStageMetrics) out.family(m.metric);
  out.family(kBatchProcessingSeconds);
  if (hooks.stage_stats) {
    for (const auto& s : hooks.stage_stats()) {
      Labels labels{{"pipeline", pipeline}, {"stage", s.name}, {"instance", std::to_string(s.instance)}};
      for (const auto& m : kStageMetrics) out.sample(m.metric, labels, static_cast<double>(s.*(m.field)));
      if (s.processing_seconds.count > 0 || s.batches_in > 0)
        out.histogram(kBatchProcessingSeconds.name, labels, s.processing_seconds);
    }
  }
  out.sample(kPipelineReady, {{"pipeline", pipeline}}, hooks.ready && hooks.ready() ? 1 : 0);
  if (hooks.last_reload) {
    auto last = hooks.last_reload();
    out.sample(kConfigGeneration, {{"pipeline", pipeline}}, static_cast<double>(last.generation));
    out.sample(kLastReloadSuccess, {{"pipeline", pipeline}}, last.ok ? 1 : 0);
  }
  if (hooks.collect_metrics) hooks.collect_metrics(out);
  return out.render();
}

AdminResponse admin_answer(http::status status, unsigned version, std::string body,
                           const char* content_type) {
  AdminResponse res{status, version};
  res.set(http::field::server, "etld");
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

std::string AdminPeer::text() const {
  auto ip = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return ip + ":" + std::to_string(port);
}

namespace {

// Boost 1.74's beast has its own string_view.
std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A header's value for an answer: visible ASCII only, at most 64 characters.
std::string quoted(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += c > 0x20 && c < 0x7f ? c : '?';
  return "'" + out + (s.size() > 64 ? "...'" : "'");
}

// Lines written whatever the log level: a change made through the endpoint is always on record,
// even the one that sets the level to off.
void log_change(const std::string& text) {
  auto logger = spdlog::default_logger();
  if (logger->should_log(spdlog::level::info)) {
    logger->info(text);
    return;
  }
  spdlog::details::log_msg msg(logger->name(), spdlog::level::info, text);
  for (const auto& sink : logger->sinks()) sink->log(msg);
}

// Refused requests are logged, but at most kRefusalsLogged lines per window whoever sends them;
// the next line logged says how many were left out. The lines hold no text from the request.
class RefusalLog {
 public:
  void note(const std::string& text) {
    std::string line;
    {
      std::lock_guard lock(mu_);
      auto now = std::chrono::steady_clock::now();
      if (now - window_start_ >= kWindow) {
        window_start_ = now;
        logged_ = 0;
      }
      if (logged_ >= kRefusalsLogged) {
        ++left_out_;
        return;
      }
      ++logged_;
      line = text;
      if (left_out_ > 0)
        line += fmt::format(" ({} more refused requests not logged before this one)", left_out_);
      left_out_ = 0;
    }
    spdlog::warn("{}", line);
  }

 private:
  static constexpr std::chrono::seconds kWindow{60};
  static constexpr int kRefusalsLogged = 20;
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_start_{};
  int logged_ = 0;
  std::uint64_t left_out_ = 0;
};

RefusalLog& refusals() {
  static RefusalLog log;
  return log;
}

// Compared through their SHA-256 digests with CRYPTO_memcmp: the time taken tells nothing about
// how much of the token, or of its length, a guess got right.
bool token_matches(std::string_view given, const std::string& expected) {
  unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
  unsigned int na = 0, nb = 0;
  if (EVP_Digest(given.data(), given.size(), a, &na, EVP_sha256(), nullptr) != 1 ||
      EVP_Digest(expected.data(), expected.size(), b, &nb, EVP_sha256(), nullptr) != 1 || na != nb)
    return false;
  return CRYPTO_memcmp(a, b, na) == 0;
}

// An IP literal (its origin can only be the daemon's own address), localhost, or a listed name;
// a DNS name of the attacker's, rebound to the daemon's address, is none of these.
bool host_accepted(std::string_view header, const AdminAccess& access) {
  std::string host = lower(header);
  std::string name;
  boost::system::error_code ec;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string::npos) return false;
    auto rest = host.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.find_first_not_of("0123456789", 1) != std::string::npos))
      return false;
    boost::asio::ip::make_address_v6(host.substr(1, close - 1), ec);
    return !ec;
  }
  auto colon = host.rfind(':');
  name = host.substr(0, colon);
  if (colon != std::string::npos && host.find_first_not_of("0123456789", colon + 1) != std::string::npos)
    return false;
  if (name.empty() || name.find(':') != std::string::npos) return false;
  boost::asio::ip::make_address_v4(name, ec);
  if (!ec || name == "localhost") return true;
  for (const auto& allowed : access.allowed_hosts)
    if (allowed == "*" || lower(allowed) == name) return true;
  return false;
}

std::string without_default_port(std::string s) {
  if (s.size() > 3 && s.compare(s.size() - 3, 3, ":80") == 0) s.resize(s.size() - 3);
  return s;
}

// What a browser tells about where a request comes from. Origin is sent with every cross-origin
// request and with same-origin POSTs; Sec-Fetch-Site by current browsers. Clients that are not
// browsers send neither.
std::string cross_origin_reason(const AdminRequest& req) {
  auto site = req.find("Sec-Fetch-Site");
  if (site != req.end() && sv(site->value()) != "same-origin" && sv(site->value()) != "none")
    return "Sec-Fetch-Site is " + quoted(sv(site->value()));
  auto origin = req.find(http::field::origin);
  if (origin == req.end()) return "";
  auto host = req.find(http::field::host);
  if (host != req.end() && without_default_port(lower(sv(origin->value()))) ==
                               "http://" + without_default_port(lower(sv(host->value()))))
    return "";
  return "Origin " + quoted(sv(origin->value())) + " is not this endpoint's";
}

struct Route {
  const char* path;
  const char* allow;  // the methods, for 405 and Allow
  bool probe;         // answers whatever the Host
};
constexpr Route kRoutes[] = {
    {"/metrics", "GET", false},  {"/healthz", "GET", true},       {"/readyz", "GET", true},
    {"/pipeline", "GET", false}, {"/reload", "GET, POST", false}, {"/log_level", "GET, PUT", false},
    {"/tap", "GET", false},
};

class Router {
 public:
  Router(const AdminRequest& req, const AdminPeer& peer, const AdminAccess& access, const AdminHooks& hooks)
      : req_(req), peer_(peer), access_(access), hooks_(hooks), v_(req.version()) {}

  AdminRouting route() {
    auto target = sv(req_.target());
    path_ = std::string(target.substr(0, target.find('?')));
    const Route* route = nullptr;
    for (const auto& r : kRoutes)
      if (path_ == r.path) route = &r;
    if (!route)
      return answer(http::status::not_found,
                    "no such path " + quoted(path_) +
                        " (try /metrics, /healthz, /readyz, /pipeline, /reload, /log_level, /tap)\n");
    if (count(http::field::host) > 1 || count(http::field::authorization) > 1)
      return answer(http::status::bad_request, "more than one Host or Authorization header\n");
    auto host = req_.find(http::field::host);
    if (!route->probe && host != req_.end() && !host_accepted(sv(host->value()), access_)) {
      refused(route, "Host not accepted");
      return answer(http::status::forbidden,
                    "Host " + quoted(sv(host->value())) +
                        " is not accepted: use an IP address or localhost, or list the name in "
                        "admin.allowed_hosts\n");
    }
    const auto method = req_.method();
    bool mutation = (path_ == "/reload" && method == http::verb::post) ||
                    (path_ == "/log_level" && method == http::verb::put);
    if (!mutation && method != http::verb::get) {
      auto res = admin_answer(http::status::method_not_allowed, v_,
                              "method " + quoted(sv(req_.method_string())) + " not allowed on " + path_ +
                                  " (allowed: " + route->allow + ")\n");
      res.set(http::field::allow, route->allow);
      return {std::move(res)};
    }
    // A tap shows events, which may hold personal data: the token, as for a change.
    if (mutation || path_ == "/tap")
      if (auto refusal = authorize(route)) return {std::move(refusal)};
    return serve();
  }

 private:
  std::size_t count(http::field f) const {
    auto range = req_.equal_range(f);
    return static_cast<std::size_t>(std::distance(range.first, range.second));
  }

  AdminRouting answer(http::status status, std::string body) {
    return {admin_answer(status, v_, std::move(body))};
  }

  void refused(const Route* route, const char* why) {
    // The method as beast names it (an unknown one is the client's text: not logged).
    auto method = req_.method() == http::verb::unknown ? std::string_view("a request to")
                                                       : sv(http::to_string(req_.method()));
    refusals().note(
        fmt::format("admin endpoint: refused {} {} from {}: {}", method, route->path, peer_.text(), why));
  }

  // The refusal of a mutation, or nothing when it may go ahead.
  std::optional<AdminResponse> authorize(const Route* route) {
    const std::string what = std::string(sv(req_.method_string())) + " " + path_;
    if (auto why = cross_origin_reason(req_); !why.empty()) {
      refused(route, "cross-origin");
      return admin_answer(http::status::forbidden, v_, "cross-origin request refused: " + why + "\n");
    }
    if (access_.token.empty() && path_ == "/tap") {
      refused(route, "no admin token is configured");
      return admin_answer(http::status::forbidden, v_,
                          "tap is off until an admin token is configured: set admin.token_file (or etld run "
                          "--admin-token-file) to a file readable only by etld that holds a token, and send "
                          "'Authorization: Bearer TOKEN' (etld tap --token-file FILE)\n");
    }
    if (access_.token.empty()) {
      refused(route, "no admin token is configured");
      return admin_answer(
          http::status::forbidden, v_,
          what +
              " is off: no admin token is configured. Set admin.token_file (or etld run --admin-token-file) "
              "to a file readable only by etld that holds a token, and send 'Authorization: Bearer TOKEN'. "
              "Without one: SIGHUP (systemctl reload) reloads, SIGUSR1/SIGUSR2 change the log level.\n");
    }
    auto auth = req_.find(http::field::authorization);
    std::string_view given;
    if (auth != req_.end()) {
      auto value = sv(auth->value());
      if (value.size() > 7 && lower(value.substr(0, 7)) == "bearer ") {
        given = value.substr(7);
        while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
      }
    }
    if (given.empty() || !token_matches(given, access_.token)) {
      refused(route, given.empty() ? "no bearer token" : "wrong bearer token");
      auto res = admin_answer(http::status::unauthorized, v_,
                              given.empty() ? what +
                                                  " needs 'Authorization: Bearer TOKEN' (the token in "
                                                  "admin.token_file)\n"
                                            : "the bearer token is not the one in admin.token_file\n");
      res.set(http::field::www_authenticate,
              given.empty() ? "Bearer realm=\"etld\"" : "Bearer realm=\"etld\", error=\"invalid_token\"");
      return res;
    }
    return std::nullopt;
  }

  AdminRouting serve() {
    const bool get = req_.method() == http::verb::get;
    if (path_ == "/metrics")
      return {admin_answer(http::status::ok, v_, render_metrics(hooks_),
                           "text/plain; version=0.0.4; charset=utf-8")};
    if (path_ == "/healthz") return answer(http::status::ok, "ok\n");
    if (path_ == "/readyz") {
      if (hooks_.ready && hooks_.ready()) return answer(http::status::ok, "ready\n");
      std::string why = hooks_.unready_reason ? hooks_.unready_reason() : "";
      if (why.empty()) why = "the pipeline is not running";
      return answer(http::status::service_unavailable, "not ready: " + why + "\n");
    }
    if (path_ == "/pipeline")
      return {admin_answer(http::status::ok, v_, render_pipeline_json(hooks_), "application/json")};
    if (path_ == "/reload") {
      if (!get) {
        if (!hooks_.reload) return answer(http::status::not_implemented, "reload is not available\n");
        log_change("admin endpoint: reload requested by " + peer_.text());
        return {std::nullopt, true};
      }
      if (!hooks_.last_reload) return answer(http::status::not_found, "no reload information\n");
      return {
          admin_answer(http::status::ok, v_, render_reload_json(hooks_.last_reload()), "application/json")};
    }
    if (path_ == "/tap") return tap();
    // /log_level
    if (!get) {
      std::string name = req_.body();
      while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
      spdlog::level::level_enum level;
      try {
        level = parse_log_level(name);
      } catch (const std::invalid_argument&) {
        return answer(http::status::bad_request, "unknown log level " + quoted(name) +
                                                     " (trace, debug, info, warn, error, critical, off)\n");
      }
      log_change(fmt::format("admin endpoint: log level {} -> {}, set by {}",
                             spdlog::level::to_string_view(current_log_level()),
                             spdlog::level::to_string_view(level), peer_.text()));
      set_log_level(level);
    }
    return answer(http::status::ok, fmt::format("{}\n", spdlog::level::to_string_view(current_log_level())));
  }

  // Checked here; the server opens the tap and streams it (admin_server.cpp).
  AdminRouting tap() {
    if (v_ < 11)
      return answer(http::status::bad_request, "GET /tap streams its answer chunked: use HTTP/1.1\n");
    auto target = sv(req_.target());
    auto mark = target.find('?');
    TapRequest request;
    try {
      request =
          parse_tap_query(mark == std::string_view::npos ? std::string_view() : target.substr(mark + 1));
    } catch (const std::invalid_argument& e) {
      return answer(http::status::bad_request, std::string("tap: ") + e.what() + "\n");
    }
    auto config = hooks_.config ? hooks_.config() : nullptr;
    std::string names;
    bool known = false;
    if (config)
      for (const auto& sc : config->stages) {
        names += (names.empty() ? "" : ", ") + sc.name;
        known = known || sc.name == request.stage;
      }
    if (!known)
      return answer(http::status::not_found, "tap: no stage " + quoted(request.stage) +
                                                 " in the pipeline (its stages: " + names + ")\n");
    if (!hooks_.open_tap) return answer(http::status::not_implemented, "tap is not available\n");
    return {std::nullopt, false, std::move(request)};
  }

  const AdminRequest& req_;
  const AdminPeer& peer_;
  const AdminAccess& access_;
  const AdminHooks& hooks_;
  const unsigned v_;
  std::string path_;
};

}  // namespace

AdminRouting route_admin_request(const AdminRequest& request, const AdminPeer& peer,
                                 const AdminAccess& access, const AdminHooks& hooks) {
  return Router(request, peer, access, hooks).route();
}

AdminResponse reload_answer(unsigned version, const ReloadOutcome& outcome, const std::string& failure) {
  if (!failure.empty()) {
    spdlog::error("admin endpoint: the reload failed: {}", failure);
    return admin_answer(http::status::internal_server_error, version, "reload failed (the log says why)\n");
  }
  return admin_answer(outcome.ok ? http::status::ok : http::status::unprocessable_entity, version,
                      render_reload_json(outcome), "application/json");
}

AdminResponse tap_refusal(unsigned version, const TapRefused& refused) {
  bool too_many = refused.why == TapRefused::Why::too_many;
  auto res = admin_answer(too_many ? http::status::too_many_requests : http::status::not_found, version,
                          std::string("tap: ") + refused.what() + "\n");
  if (too_many) res.set(http::field::retry_after, "10");
  return res;
}

// Without a socket to stream on: what the tap holds the moment it is opened (little or nothing),
// and its end line.
AdminResponse tap_answer_at_once(unsigned version, const TapRequest& request, const AdminHooks& hooks) {
  std::shared_ptr<Tap> tap;
  try {
    tap = hooks.open_tap(request.stage, request.limits);
  } catch (const TapRefused& e) {
    return tap_refusal(version, e);
  }
  auto taken = tap->take();
  std::string body = taken.dropped ? tap_dropped_line(taken.dropped) : "";
  for (const auto& e : taken.events) body += tap_event_line(e);
  body += tap_end_line(*tap, "answered at once");
  return admin_answer(http::status::ok, version, std::move(body), "application/x-ndjson");
}

std::optional<AdminResponse> parse_error_answer(boost::beast::error_code ec, const AdminLimits& limits) {
  if (ec.category() != http::make_error_code(http::error::end_of_stream).category() &&
      ec != http::error::buffer_overflow)
    return std::nullopt;  // the connection broke: nothing to answer
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return admin_answer(http::status::request_header_fields_too_large, 11,
                        "request header larger than " + std::to_string(limits.header_limit) + " bytes\n");
  if (ec == http::error::body_limit)
    return admin_answer(http::status::payload_too_large, 11,
                        "request body larger than " + std::to_string(limits.body_limit) + " bytes\n");
  return admin_answer(http::status::bad_request, 11, "malformed request: " + ec.message() + "\n");
}

std::string answer_admin_request(std::string_view raw, const AdminPeer& peer, const AdminAccess& access,
                                 const AdminHooks& hooks, const AdminLimits& limits) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
  parser.body_limit(limits.body_limit);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!parser.is_done() && used < raw.size()) {
    auto n = parser.put(boost::asio::buffer(raw.data() + used, raw.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) {
      ec = {};
      if (n == 0) break;  // the parser wants more than there is
    } else if (ec) {
      break;
    }
  }
  std::optional<AdminResponse> res;
  if (ec) {
    res = parse_error_answer(ec, limits);
  } else if (!parser.is_done()) {
    return "";
  } else {
    const AdminRequest& req = parser.get();
    auto routing = route_admin_request(req, peer, access, hooks);
    if (routing.reload) {
      ReloadOutcome outcome;
      std::string failure;
      try {
        outcome = hooks.reload();
      } catch (const std::exception& e) {
        failure = e.what();
      }
      routing.response = reload_answer(req.version(), outcome, failure);
    } else if (routing.tap) {
      routing.response = tap_answer_at_once(req.version(), *routing.tap, hooks);
    }
    res = std::move(routing.response);
  }
  if (!res) return "";
  std::ostringstream out;
  out << *res;
  return out.str();
}

}  // namespace etld
