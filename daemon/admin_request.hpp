// One admin HTTP request, apart from the socket: who may ask what (Host, Origin, bearer token)
// and the answer of every path. AdminServer runs route_admin_request() on each request it reads;
// answer_admin_request() does the same from raw bytes to raw bytes, for tests and fuzzing.
//
// Access: GET endpoints answer whoever reaches the address (they carry no secret), but GET /tap
// (events may hold personal data). It and the mutations (POST /reload, PUT /log_level) need
// `Authorization: Bearer TOKEN` with the token of AdminAccess (403 when there is none, 401 when
// it is missing or wrong), and are refused when a browser says the request comes from another
// origin. Every endpoint but the probes (/healthz, /readyz) refuses a Host that is not an IP
// address, localhost or an allowed name, so that a web page cannot reach it through a DNS name it
// rebinds to the daemon's address.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/admin_tap.hpp"
#include "daemon/control.hpp"

namespace etld {

struct AdminLimits {
  // Open connections in all and from one IP address. A new connection past either limit closes
  // the connection that has waited longest on its client (for a request, or to take an answer)
  // instead of being refused, so that slow clients cannot lock a health check out.
  std::size_t max_connections = 256;
  std::size_t max_connections_per_peer = 64;
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 4 * 1024;
  // To receive one whole request (headers and body), counted from the connection or the previous
  // answer; also how long an idle keep-alive connection stays open.
  std::chrono::milliseconds request_timeout{5'000};
};

struct AdminAccess {
  std::string token;                       // a secret, never logged; "" = mutations off
  std::vector<std::string> allowed_hosts;  // Host names accepted besides IPs and localhost; "*" = any
};

struct AdminPeer {
  boost::asio::ip::address address;
  unsigned short port = 0;
  std::string text() const;  // "10.0.0.1:5678", "[::1]:5678"
};

using AdminRequest = boost::beast::http::request<boost::beast::http::string_body>;
using AdminResponse = boost::beast::http::response<boost::beast::http::string_body>;

// An answer as every endpoint gives it (Server: etld, the body's length).
AdminResponse admin_answer(boost::beast::http::status status, unsigned version, std::string body,
                           const char* content_type = "text/plain; charset=utf-8");

// The answer to a parsed request; none yet for an accepted POST /reload: the caller runs
// hooks.reload() where it may block, then answers with reload_answer().
// Nor for an accepted GET /tap: the caller opens hooks.open_tap(tap) and streams it.
struct AdminRouting {
  std::optional<AdminResponse> response;
  bool reload = false;
  std::optional<TapRequest> tap;
};
AdminRouting route_admin_request(const AdminRequest& request, const AdminPeer& peer,
                                 const AdminAccess& access, const AdminHooks& hooks);
// The answer to a reload: its outcome, or a 500 if the hook threw `failure` (logged, not sent:
// a library's message may hold what it was given).
AdminResponse reload_answer(unsigned version, const ReloadOutcome& outcome, const std::string& failure);
// The answer when hooks.open_tap refused: 404 (no such stage) or 429 (too many taps open).
AdminResponse tap_refusal(unsigned version, const TapRefused& refused);
// GET /tap answered in one piece, with what the tap holds as soon as it is open (for
// answer_admin_request, which has no socket to stream on).
AdminResponse tap_answer_at_once(unsigned version, const TapRequest& request, const AdminHooks& hooks);
// The answer to a request the parser refused (400, 413, 431); none when the connection broke.
std::optional<AdminResponse> parse_error_answer(boost::beast::error_code ec, const AdminLimits& limits);

// Raw bytes of one connection in, the raw answer to its first request out, as the server would
// give it: parsed with limits' header and body limits, checked, answered (a reload runs inline).
// "" when the bytes end before the request does (the server would wait for more).
// The entry point of the admin request fuzz target: no socket, no thread, no timer.
std::string answer_admin_request(std::string_view raw, const AdminPeer& peer, const AdminAccess& access,
                                 const AdminHooks& hooks, const AdminLimits& limits = {});

// The bodies of /metrics, /pipeline and /reload.
std::string render_metrics(const AdminHooks& hooks);  // stage metrics + hooks.collect_metrics
std::string render_pipeline_json(const AdminHooks& hooks);
std::string render_reload_json(const ReloadOutcome& outcome);

}  // namespace etld
