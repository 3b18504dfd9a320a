#include "daemon/admin_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace etld {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class Session;

struct AdminServer::State {
  AdminHooks hooks;
  AdminLimits limits;
  std::optional<tcp::acceptor> acceptor;
  std::atomic<bool> reloading{false}, stopped{false};
  std::mutex mu;  // guards sessions, access and reload_thread
  std::vector<std::weak_ptr<Session>> sessions;
  std::shared_ptr<const AdminAccess> access;
  std::thread reload_thread;

  std::shared_ptr<const AdminAccess> current_access() {
    std::lock_guard lock(mu);
    return access;
  }
};

namespace {

std::int64_t steady_now() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<AdminServer::State> state, AdminPeer peer)
      : stream_(std::move(socket)),
        state_(std::move(state)),
        peer_(std::move(peer)),
        buffer_(state_->limits.header_limit + state_->limits.body_limit + 1024) {}

  void run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  const AdminPeer& peer() const { return peer_; }
  bool awaiting_reload() const { return awaiting_reload_; }
  // Since when it waits on its client, for a request or to take an answer; 0 while it waits for
  // a reload (then it is never the one closed to make room).
  std::int64_t waiting_since() const { return awaiting_reload_ ? 0 : since_.load(); }

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
    since_ = steady_now();
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
      if (auto answer = parse_error_answer(ec, state_->limits)) send(std::move(*answer), /*close=*/true);
      return;
    }
    AdminRequest req = parser_->release();
    auto access = state_->current_access();
    auto routing = route_admin_request(req, peer_, *access, state_->hooks);
    if (routing.reload)
      post_reload(req.version(), !req.keep_alive());
    else if (routing.tap)
      start_tap(req.version(), std::move(*routing.tap));
    else
      send(std::move(*routing.response), !req.keep_alive());
  }

  // The reload hook may take long (it builds and swaps a pipeline): it runs on a thread of its
  // own, and the answer is posted back to this connection's strand.
  void post_reload(unsigned v, bool close) {
    if (state_->reloading.exchange(true)) {
      send(admin_answer(http::status::conflict, v, "a reload is already running\n"), close);
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
        self->send(reload_answer(v, outcome, failure), close);
      });
    });
  }

  // GET /tap: the tap's lines as chunks, written as it fills, until it has sampled its limit, its
  // time is up, the client goes or the server stops; then the connection closes. Nothing here
  // blocks: a tick every kTapTick takes what the tap holds; while a chunk is being written the tap
  // keeps sampling into its bounded buffer, and drops (and counts) what does not fit.
  void start_tap(unsigned v, TapRequest request) {
    try {
      tap_ = state_->hooks.open_tap(request.stage, request.limits);
    } catch (const TapRefused& e) {
      send(tap_refusal(v, e), true);
      return;
    } catch (const std::exception& e) {
      spdlog::warn("admin endpoint: cannot open a tap on stage '{}': {}", request.stage, e.what());
      send(admin_answer(http::status::service_unavailable, v, "tap: the pipeline is not running\n"), true);
      return;
    }
    spdlog::info("admin endpoint: tap on stage '{}' opened by {} (limit {}, rate {}/s, max_bytes {}, {}s)",
                 request.stage, peer_.text(), request.limits.limit, request.limits.rate,
                 request.limits.max_bytes, request.seconds.count());
    tap_deadline_ = std::chrono::steady_clock::now() + request.seconds;
    tap_head_ = {http::status::ok, v};
    tap_head_.set(http::field::server, "etld");
    tap_head_.set(http::field::content_type, "application/x-ndjson");
    tap_head_.set(http::field::cache_control, "no-store");
    tap_head_.keep_alive(false);
    tap_head_.chunked(true);
    tap_serializer_.emplace(tap_head_);
    since_ = steady_now();
    stream_.expires_after(state_->limits.request_timeout);
    http::async_write_header(
        stream_, *tap_serializer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->end_tap("the client went away");
          // The client closing its end (or sending anything) ends the tap at once.
          self->stream_.socket().async_wait(tcp::socket::wait_read, [self](beast::error_code) {
            self->client_gone_ = true;
            self->tap_timer_.cancel();
          });
          self->tap_tick();
        });
  }

  void tap_tick() {
    if (!tap_) return;
    if (client_gone_ || state_->stopped)
      return end_tap(client_gone_ ? "the client went away" : "etld stopped");
    bool complete = tap_->complete();  // before take(): then everything sampled is taken
    bool time_up = std::chrono::steady_clock::now() >= tap_deadline_;
    auto taken = tap_->take();
    tap_chunk_.clear();
    if (taken.dropped > 0) tap_chunk_ += tap_dropped_line(taken.dropped);
    for (const auto& e : taken.events) tap_chunk_ += tap_event_line(e);
    bool last = complete || time_up;
    if (last) tap_chunk_ += tap_end_line(*tap_, complete ? "limit reached" : "time is up");
    if (tap_chunk_.empty()) {
      tap_timer_.expires_after(kTapTick);
      tap_timer_.async_wait([self = shared_from_this()](beast::error_code) { self->tap_tick(); });
      return;
    }
    since_ = steady_now();
    stream_.expires_after(state_->limits.request_timeout);  // a client that takes nothing is let go
    asio::async_write(stream_, http::make_chunk(asio::buffer(tap_chunk_)),
                      [self = shared_from_this(), last](beast::error_code ec, std::size_t) {
                        if (ec) return self->end_tap("the client went away");
                        if (last) return self->finish_tap();
                        self->tap_timer_.expires_after(kTapTick);
                        self->tap_timer_.async_wait([self](beast::error_code) { self->tap_tick(); });
                      });
  }

  void finish_tap() {
    asio::async_write(stream_, http::make_chunk_last(),
                      [self = shared_from_this()](beast::error_code, std::size_t) { self->end_tap(""); });
  }

  void end_tap(const char* why) {
    if (!tap_) return;
    spdlog::info(
        "admin endpoint: tap on stage '{}' by {} ended{}{}: {} sampled, {} dropped, of {} that passed",
        tap_->stage(), peer_.text(), *why ? ": " : "", why, tap_->sampled(), tap_->dropped(), tap_->seen());
    tap_.reset();  // its place among the kMaxTaps is free again
    tap_timer_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  void send(AdminResponse res, bool close) {
    res.keep_alive(!close);
    res_ = std::move(res);
    since_ = steady_now();
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
  const AdminPeer peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  AdminResponse res_;
  static constexpr std::chrono::milliseconds kTapTick{100};
  std::shared_ptr<Tap> tap_;  // GET /tap being streamed
  std::chrono::steady_clock::time_point tap_deadline_;
  http::response<http::empty_body> tap_head_;
  std::optional<http::response_serializer<http::empty_body>> tap_serializer_;
  std::string tap_chunk_;
  asio::steady_timer tap_timer_{stream_.get_executor()};
  bool client_gone_ = false;
  std::atomic<bool> awaiting_reload_{false};  // its answer comes when the reload hook returns
  std::atomic<std::int64_t> since_{0};
};

namespace {

// The session to close for a new one: of those from `peer` (or from anyone when null), the one
// that has waited longest on its client. Requires state.mu.
std::shared_ptr<Session> longest_waiting(const std::vector<std::shared_ptr<Session>>& live,
                                         const asio::ip::address* peer) {
  std::shared_ptr<Session> victim;
  std::int64_t oldest = 0;
  for (const auto& s : live) {
    if (peer && s->peer().address != *peer) continue;
    auto since = s->waiting_since();
    if (since != 0 && (!victim || since < oldest)) victim = s, oldest = since;
  }
  return victim;
}

// Registers the connection, closing another to stay within the limits. A client that opens
// connections and sends nothing (or dribbles) thus only ever pushes out its own oldest ones, and
// whoever else connects, a health check included, is served. Refused (closed) only when every
// open connection is waiting for a reload.
void admit(const std::shared_ptr<AdminServer::State>& state, tcp::socket socket) {
  beast::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  AdminPeer peer{remote.address(), remote.port()};
  std::shared_ptr<Session> victim;
  std::string why;
  bool refuse = false;
  auto session = std::make_shared<Session>(std::move(socket), state, peer);
  {
    std::lock_guard lock(state->mu);
    std::vector<std::shared_ptr<Session>> live;
    std::map<asio::ip::address, std::size_t> per_peer;
    for (const auto& w : state->sessions)
      if (auto s = w.lock()) live.push_back(s), ++per_peer[s->peer().address];
    const auto& limits = state->limits;
    if (per_peer[peer.address] >= limits.max_connections_per_peer) {
      victim = longest_waiting(live, &peer.address);
      why = fmt::format("{} has {} connections open (at most {} per address)", peer.address.to_string(),
                        per_peer[peer.address], limits.max_connections_per_peer);
      refuse = !victim;
    } else if (live.size() >= limits.max_connections) {
      auto busiest = std::max_element(per_peer.begin(), per_peer.end(),
                                      [](const auto& a, const auto& b) { return a.second < b.second; });
      victim = longest_waiting(live, &busiest->first);
      if (!victim) victim = longest_waiting(live, nullptr);
      why = fmt::format("{} connections are open (at most {})", live.size(), limits.max_connections);
      refuse = !victim;
    }
    state->sessions.clear();
    for (auto& s : live)
      if (s != victim) state->sessions.push_back(s);
    if (!refuse) state->sessions.push_back(session);
  }
  if (refuse) {
    spdlog::warn("admin endpoint: {} and each waits for a reload: refused {}", why, peer.text());
    return;  // the session closes its socket as it goes
  }
  if (victim) {
    spdlog::warn("admin endpoint: {}: closed the one that waited longest on its client", why);
    victim->close();
  }
  session->run();
}

void accept_next(const std::shared_ptr<AdminServer::State>& state, asio::any_io_executor ex) {
  if (state->stopped) return;
  state->acceptor->async_accept(asio::make_strand(ex), [state, ex](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || state->stopped) return;
    if (!ec) {
      admit(state, std::move(socket));
      accept_next(state, ex);
      return;
    }
    // Out of descriptors, most likely: try again shortly rather than spin.
    spdlog::warn("admin endpoint: accept failed: {}", ec.message());
    auto timer =
        std::make_shared<asio::steady_timer>(state->acceptor->get_executor(), std::chrono::milliseconds(100));
    timer->async_wait([state, ex, timer](beast::error_code) { accept_next(state, ex); });
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

AdminServer::AdminServer(asio::any_io_executor executor, AdminHooks hooks, AdminAccess access,
                         AdminLimits limits)
    : state_(std::make_shared<State>()) {
  state_->hooks = std::move(hooks);
  state_->limits = limits;
  state_->access = std::make_shared<const AdminAccess>(std::move(access));
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

void AdminServer::set_access(AdminAccess access) {
  auto fresh = std::make_shared<const AdminAccess>(std::move(access));
  std::lock_guard lock(state_->mu);
  state_->access = std::move(fresh);
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
