// Who may do what at the admin endpoint, through answer_admin_request() (the bytes of a request
// in, the bytes of the answer out, as the server gives them): read-only endpoints open, the two
// changes only with the bearer token and never from another origin, the Host rule against DNS
// rebinding, what is logged of changes and refusals, and that no answer holds the token.
#include "daemon/admin_request.hpp"

#include <doctest/doctest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sstream>

#include "daemon/logging.hpp"

using namespace etld;

namespace {

const std::string kToken = "s3cret-t0ken-0123456789";

struct Answer {
  int status = 0;
  std::string head, body;
  bool has(const std::string& header_line) const {
    return head.find("\r\n" + header_line + "\r\n") != std::string::npos;
  }
};

Answer answer(const std::string& raw, const AdminAccess& access = {}, AdminHooks hooks = {}) {
  AdminPeer peer{boost::asio::ip::make_address("192.0.2.7"), 40000};
  auto text = answer_admin_request(raw, peer, access, hooks);
  Answer a;
  if (text.rfind("HTTP/1.1 ", 0) != 0) return a;
  a.status = std::stoi(text.substr(9, 3));
  auto split = text.find("\r\n\r\n");
  a.head = text.substr(0, split + 2);
  a.body = text.substr(split + 4);
  return a;
}

std::string req(const std::string& method, const std::string& path, const std::string& headers,
                const std::string& body = {}) {
  return method + " " + path + " HTTP/1.1\r\n" + headers + "Content-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

const AdminAccess kWithToken{.token = kToken};
const std::string kLocal = "Host: 127.0.0.1:9187\r\n";
const std::string kBearer = "Authorization: Bearer " + kToken + "\r\n";

// The default logger writes into `out` at `level` for the scope's lifetime.
struct CapturedLog {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  explicit CapturedLog(spdlog::level::level_enum level) {
    auto logger =
        std::make_shared<spdlog::logger>("etld", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
    set_log_level(level);
  }
  ~CapturedLog() {
    spdlog::set_default_logger(previous);
    set_log_level(spdlog::level::info);
  }
};

AdminHooks reload_hooks(int& calls) {
  AdminHooks hooks;
  hooks.reload = [&calls] {
    ++calls;
    ReloadOutcome o;
    o.generation = 2;
    return o;
  };
  return hooks;
}

}  // namespace

// First in the file: the limit is per process and minute, and the tests below are refused too.
TEST_CASE("refusals are logged without the request's text, and at most 20 a minute") {
  CapturedLog log(spdlog::level::info);
  CHECK(answer(req("GET", "/metrics", "Host: evil-forged.example\r\n")).status == 403);
  for (int i = 0; i < 100; ++i)
    answer(req("POST", "/reload", kLocal + "Authorization: Bearer guess" + std::to_string(i) + "\r\n"),
           kWithToken);
  auto text = log.out.str();
  auto lines = std::count(text.begin(), text.end(), '\n');
  CHECK(lines <= 20);
  CHECK(lines >= 1);
  CHECK(
      text.find("warning admin endpoint: refused POST /reload from 192.0.2.7:40000: wrong bearer token\n") !=
      std::string::npos);
  CHECK(text.find("guess") == std::string::npos);
  CHECK(text.find("warning admin endpoint: refused GET /metrics from 192.0.2.7:40000: Host not accepted\n") !=
        std::string::npos);
  CHECK(text.find("forged") == std::string::npos);
}

TEST_CASE("read-only endpoints answer without a token; the two changes need it") {
  int calls = 0;
  auto hooks = reload_hooks(calls);
  for (auto path : {"/healthz", "/metrics", "/pipeline", "/log_level"})
    CHECK_MESSAGE(answer(req("GET", path, kLocal)).status == 200, path);

  SUBCASE("no token configured: 403 saying how to turn them on") {
    auto off = answer(req("POST", "/reload", kLocal + kBearer), {}, hooks);
    CHECK(off.status == 403);
    CHECK(off.body.find("POST /reload is off: no admin token is configured. Set admin.token_file") == 0);
    CHECK(answer(req("PUT", "/log_level", kLocal + kBearer, "off")).status == 403);
    CHECK(calls == 0);
  }
  SUBCASE("missing, malformed or wrong token: 401 with WWW-Authenticate") {
    auto missing = answer(req("POST", "/reload", kLocal), kWithToken, hooks);
    CHECK(missing.status == 401);
    CHECK(missing.has("WWW-Authenticate: Bearer realm=\"etld\""));
    CHECK(missing.body ==
          "POST /reload needs 'Authorization: Bearer TOKEN' (the token in admin.token_file)\n");
    for (const auto& bad :
         std::vector<std::string>{"Bearer " + kToken + "x", "Bearer " + kToken.substr(1), "Bearer x",
                                  "Basic " + kToken, kToken, "Bearer " + std::string(5000, 'a')}) {
      auto wrong =
          answer(req("POST", "/reload", kLocal + "Authorization: " + bad + "\r\n"), kWithToken, hooks);
      CHECK_MESSAGE(wrong.status == 401, bad.substr(0, 40));
      CHECK(wrong.body.find(kToken) == std::string::npos);
    }
    CHECK(calls == 0);
  }
  SUBCASE("the right token: the change is made") {
    auto ok = answer(req("POST", "/reload", kLocal + kBearer), kWithToken, hooks);
    CHECK(ok.status == 200);
    CHECK(calls == 1);
    CHECK(answer(req("POST", "/reload", kLocal + "authorization: bearer   " + kToken + "\r\n"), kWithToken,
                 hooks)
              .status == 200);  // scheme and header names are case-insensitive
    CapturedLog log(spdlog::level::info);
    CHECK(answer(req("PUT", "/log_level", kLocal + kBearer, "warn\n"), kWithToken).body ==
          "warning\n");  // spdlog's name
    CHECK(current_log_level() == spdlog::level::warn);
  }
}

TEST_CASE("a browser's cross-origin change is refused, even with the token") {
  int calls = 0;
  auto hooks = reload_hooks(calls);
  auto post = [&](const std::string& extra) {
    return answer(req("POST", "/reload", kLocal + kBearer + extra), kWithToken, hooks).status;
  };
  CHECK(post("Origin: http://evil.example\r\n") == 403);
  CHECK(post("Origin: null\r\n") == 403);
  CHECK(post("Origin: http://127.0.0.1:9188\r\n") == 403);  // another port is another origin
  CHECK(post("Origin: https://127.0.0.1:9187\r\n") == 403);
  CHECK(post("Sec-Fetch-Site: cross-site\r\n") == 403);
  CHECK(post("Sec-Fetch-Site: same-site\r\n") == 403);
  CHECK(calls == 0);
  CHECK(
      answer(req("POST", "/reload", kBearer + "Origin: http://evil.example\r\n"), kWithToken, hooks).status ==
      403);                                                 // no Host to be the same as
  CHECK(post("Origin: http://127.0.0.1:9187\r\n") == 200);  // the endpoint's own page
  CHECK(post("Sec-Fetch-Site: same-origin\r\n") == 200);
  CHECK(post("Sec-Fetch-Site: none\r\n") == 200);  // typed into the address bar
  CHECK(calls == 3);
  auto refused = answer(req("PUT", "/log_level", kLocal + kBearer + "Origin: http://evil.example\r\n", "off"),
                        kWithToken);
  CHECK(refused.body ==
        "cross-origin request refused: Origin 'http://evil.example' is not this endpoint's\n");
}

TEST_CASE("Host: IP addresses, localhost and allowed names; the probes answer whatever the Host") {
  auto status = [](const std::string& host, const AdminAccess& access = {}, const char* path = "/metrics") {
    return answer(req("GET", path, host.empty() ? "" : "Host: " + host + "\r\n"), access).status;
  };
  for (auto ok : {"127.0.0.1", "127.0.0.1:9187", "10.1.2.3:80", "[::1]", "[::1]:9187", "[fd00::7]:1",
                  "localhost", "LOCALHOST:9187", ""})
    CHECK_MESSAGE(status(ok) == 200, ok);
  for (auto bad : {"evil.example", "evil.example:9187", "127.0.0.1.evil.example", "localhost.evil.example",
                   "0x7f.1", "[::1", "[::1]x", "127.0.0.1:abc", "a:b:c", ":9187"})
    CHECK_MESSAGE(status(bad) == 403, bad);
  CHECK(status("evil.example", {}, "/healthz") == 200);
  CHECK(status("evil.example", {}, "/readyz") == 503);  // answered: not ready, no hooks
  AdminAccess named{.allowed_hosts = {"etld.internal"}};
  CHECK(status("etld.internal:9187", named) == 200);
  CHECK(status("ETLD.Internal", named) == 200);
  CHECK(status("other.internal", named) == 403);
  CHECK(status("anything.example", AdminAccess{.allowed_hosts = {"*"}}) == 200);
  auto refused = answer(req("GET", "/pipeline", "Host: evil.example\r\n"));
  CHECK(refused.body ==
        "Host 'evil.example' is not accepted: use an IP address or localhost, or list the name in "
        "admin.allowed_hosts\n");
  CHECK(answer(req("GET", "/metrics", kLocal + kLocal)).status == 400);  // two Hosts
}

TEST_CASE("every change is logged with the client's address, even one that turns logging off") {
  CapturedLog log(spdlog::level::info);
  int calls = 0;
  auto hooks = reload_hooks(calls);
  CHECK(answer(req("PUT", "/log_level", kLocal + kBearer, "off"), kWithToken).status == 200);
  CHECK(answer(req("POST", "/reload", kLocal + kBearer), kWithToken, hooks).status == 200);
  CHECK(answer(req("PUT", "/log_level", kLocal + kBearer, "info"), kWithToken).status == 200);
  auto text = log.out.str();
  CHECK(text.find("info admin endpoint: log level info -> off, set by 192.0.2.7:40000\n") !=
        std::string::npos);
  CHECK(text.find("info admin endpoint: reload requested by 192.0.2.7:40000\n") != std::string::npos);
  CHECK(text.find("info admin endpoint: log level off -> info, set by 192.0.2.7:40000\n") !=
        std::string::npos);
  CHECK(text.find(kToken) == std::string::npos);
}

TEST_CASE("malformed, oversized and incomplete requests") {
  CHECK(answer("\x16\x03\x01\x02\x00 hello\r\n\r\n").status == 400);
  CHECK(answer("GET /healthz HTTP/9.x\r\n\r\n").status == 400);
  CHECK(answer("GET /healthz HTTP/1.1\r\nno colon\r\n\r\n").status == 400);
  CHECK(answer("GET /healthz HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n").status == 431);
  CHECK(answer(req("PUT", "/log_level", kLocal + kBearer, std::string(5000, 'a')), kWithToken).status == 413);
  CHECK(answer("PUT /log_level HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").status == 413);
  CHECK(answer_admin_request("GET /healthz HTTP/1.1\r\nHost: 1", {}, {}, {}).empty());  // the rest may come
  CHECK(answer(req("DELETE", "/metrics", kLocal)).status == 405);
  CHECK(answer(req("OPTIONS", "/reload", kLocal)).status == 405);  // no CORS preflight passes
  CHECK(answer(req("BREW", "/metrics", kLocal)).status == 405);
  auto unknown = answer(req("GET", "/../etc/passwd?x=\x01", kLocal));
  CHECK(unknown.status == 400);  // a control character in the target
  CHECK(answer(req("GET", "/nope", kLocal)).status == 404);
}
