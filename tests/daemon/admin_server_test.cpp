// The admin endpoint in process, through real TCP connections: a running pipeline's endpoints,
// readiness, the reload hook off the pool, and the limits (header, body, connections in all and
// per client address, time). Who may do what is tested in admin_request_test.cpp.
#include "daemon/admin_server.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

#include "stages/engine/pipeline.hpp"
#include "stages/engine/readiness.hpp"
#include "stages/engine/value.hpp"
#include "tests/support/test_stages.hpp"

using namespace etld;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

const std::string kToken = "0123456789abcdef-token";

struct Client {
  asio::io_context io;
  tcp::socket socket{io};
  // `from`: the local address, so that one test can be several clients (all of 127/8 is loopback).
  explicit Client(unsigned short port, const char* from = "127.0.0.1") {
    socket.open(tcp::v4());
    socket.bind({asio::ip::make_address(from), 0});
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    timeval tv{10, 0};  // a test never hangs on a server that does not answer
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void send(const std::string& raw) { asio::write(socket, asio::buffer(raw)); }
  // True once the server closed the connection (within the 10 s receive timeout).
  bool closed_by_server() {
    char c;
    boost::system::error_code ec;
    socket.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
  // Everything until the server closes the connection.
  std::string read_all() {
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    for (;;) {
      auto n = socket.read_some(asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }
};

struct Reply {
  int status = 0;  // 0: no HTTP answer at all
  std::string head, body;
};

Reply parse(const std::string& raw) {
  Reply r;
  if (raw.rfind("HTTP/1.1 ", 0) != 0) return r;
  r.status = std::stoi(raw.substr(9, 3));
  auto split = raw.find("\r\n\r\n");
  r.head = raw.substr(0, split);
  r.body = split == std::string::npos ? "" : raw.substr(split + 4);
  return r;
}

Reply send_raw(unsigned short port, const std::string& raw) {
  Client c(port);
  c.send(raw);
  return parse(c.read_all());
}

std::string request_text(const std::string& method, const std::string& path, const std::string& body = {}) {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kToken +
         "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

Reply request(unsigned short port, const std::string& method, const std::string& path,
              const std::string& body = {}) {
  return send_raw(port, request_text(method, path, body));
}

AdminAccess with_token() { return AdminAccess{.token = kToken}; }

// Hooks backed by one Pipeline, without a supervisor: ready while it runs and every probe is.
AdminHooks pipeline_hooks(Pipeline& pipeline, std::shared_ptr<const PipelineConfig> config) {
  AdminHooks hooks;
  hooks.stage_stats = [&pipeline] { return pipeline.stats(); };
  hooks.config = [config] { return config; };
  auto why = [&pipeline] { return unready_reason(pipeline.running(), pipeline.unready_components()); };
  hooks.ready = [why] { return why().empty(); };
  hooks.unready_reason = why;
  hooks.collect_metrics = [&pipeline](metrics::Exposition& out) { pipeline.metrics().collect(out); };
  return hooks;
}

}  // namespace

TEST_CASE("a running pipeline's endpoints: healthz, readyz through its lifecycle, metrics, pipeline JSON") {
  auto config = test::config_from(R"yaml(
pipeline: inproc
threads: 1
stages:
  gen: { type: generate, rate: 2000 }
  out: { type: "null", inputs: [gen], concurrency: 2 }
)yaml");
  Pipeline pipeline(config);
  AdminServer server(pipeline.executor(), pipeline_hooks(pipeline, config));
  server.start("127.0.0.1:0");
  auto port = server.local_endpoint().port();
  REQUIRE(port != 0);

  CHECK(request(port, "GET", "/healthz").body == "ok\n");
  auto before = request(port, "GET", "/readyz");
  CHECK(before.status == 503);
  CHECK(before.body == "not ready: the pipeline is not running (starting, draining or stopped)\n");

  pipeline.start();
  CHECK(request(port, "GET", "/readyz").status == 200);
  std::this_thread::sleep_for(200ms);
  auto metrics = request(port, "GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.head.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(metrics.body.find("# TYPE etld_stage_events_in_total counter\n") != std::string::npos);
  CHECK(metrics.body.find("etld_stage_events_out_total{pipeline=\"inproc\",stage=\"gen\",instance=\"0\"} ") !=
        std::string::npos);
  CHECK(metrics.body.find("etld_stage_events_in_total{pipeline=\"inproc\",stage=\"out\",instance=\"1\"} ") !=
        std::string::npos);
  CHECK(metrics.body.find("etld_pipeline_ready{pipeline=\"inproc\"} 1\n") != std::string::npos);

  auto graph = request(port, "GET", "/pipeline");
  CHECK(graph.head.find("Content-Type: application/json") != std::string::npos);
  auto json = parse_json(graph.body);
  REQUIRE(json.find("stages"));
  const auto& stages = json.find("stages")->as_array();
  REQUIRE(stages.size() == 2);
  CHECK(stages[1].find("name")->as_string() == "out");
  CHECK(stages[1].find("role")->as_string() == "sink");
  CHECK(stages[1].find("inputs")->as_array().at(0).as_string() == "gen");
  const auto& instances = stages[1].find("instances")->as_array();
  REQUIRE(instances.size() == 2);
  std::int64_t received = 0;
  for (const auto& i : instances) received += i.find("events_in")->as_int();
  CHECK(received > 0);
  CHECK(stages[0].find("instances")->as_array().at(0).find("events_out")->as_int() >= received);

  pipeline.stop();
  REQUIRE(pipeline.wait_for(30s));
  CHECK(request(port, "GET", "/readyz").status == 503);
  CHECK(request(port, "GET", "/healthz").status == 200);  // the process still serves
  server.stop();
}

TEST_CASE("readyz names what is not connected, until it is") {
  asio::thread_pool pool(1);
  AdminHooks hooks;
  Readiness readiness;
  hooks.ready = [&readiness] { return readiness.unready().empty(); };
  hooks.unready_reason = [&readiness] {
    std::string out;
    for (const auto& w : readiness.unready()) out += w;
    return out;
  };
  AdminServer server(pool.get_executor(), hooks);
  server.start("127.0.0.1:0");
  auto port = server.local_endpoint().port();
  {
    auto probe = readiness.probe("sink 'db': not connected to PostgreSQL at host=x");
    auto r = request(port, "GET", "/readyz");
    CHECK(r.status == 503);
    CHECK(r.body == "not ready: sink 'db': not connected to PostgreSQL at host=x\n");
    probe.set(true);
    CHECK(request(port, "GET", "/readyz").status == 200);
    probe.set(false);
    CHECK(request(port, "GET", "/readyz").status == 503);
  }
  CHECK(request(port, "GET", "/readyz").status == 200);  // the probe is gone
  server.stop();
  pool.join();
}

TEST_CASE("POST /reload runs the hook off the pool: one pool thread still serves while it blocks") {
  asio::thread_pool pool(1);
  std::promise<void> entered, release;
  auto release_future = release.get_future().share();
  std::atomic<int> calls{0};
  AdminHooks hooks;
  hooks.reload = [&] {
    if (++calls == 1) {
      entered.set_value();
      release_future.wait();
    } else {
      throw std::runtime_error("disk on fire");
    }
    ReloadOutcome o;
    o.generation = 2;
    o.config_hash = "abc";
    o.restarted_stages = {"out"};
    return o;
  };
  AdminServer server(pool.get_executor(), hooks, with_token());
  server.start("127.0.0.1:0");
  auto port = server.local_endpoint().port();

  auto first = std::async(std::launch::async, [&] { return request(port, "POST", "/reload"); });
  entered.get_future().wait();
  CHECK(request(port, "GET", "/healthz").status == 200);
  auto second = request(port, "POST", "/reload");
  CHECK(second.status == 409);
  CHECK(second.body == "a reload is already running\n");
  release.set_value();
  auto done = first.get();
  CHECK(done.status == 200);
  auto json = parse_json(done.body);
  CHECK(json.find("generation")->as_int() == 2);
  CHECK(json.find("ok")->as_bool());
  CHECK(json.find("restarted_stages")->as_array().at(0).as_string() == "out");
  auto failed = request(port, "POST", "/reload");
  CHECK(failed.status == 500);
  CHECK(failed.body == "reload failed (the log says why)\n");  // a library's message may hold a secret
  CHECK(request(port, "GET", "/reload").status == 404);        // no last_reload hook
  server.stop();
  pool.join();
}

TEST_CASE("limits: header and body sizes, connections, and the time a request may take") {
  asio::thread_pool pool(2);
  AdminHooks hooks;
  AdminLimits limits;
  limits.header_limit = 1024;
  limits.body_limit = 16;
  limits.request_timeout = 300ms;
  AdminServer server(pool.get_executor(), hooks, with_token(), limits);
  server.start("127.0.0.1:0");
  auto port = server.local_endpoint().port();

  auto big_header = send_raw(port, "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n");
  CHECK(big_header.status == 431);
  CHECK(request(port, "PUT", "/log_level", std::string(16, ' ') + "info").status == 413);
  CHECK(request(port, "PUT", "/log_level", "info").status == 200);
  CHECK(send_raw(port, "\x16\x03\x01\x02\x00 TLS hello?\r\n\r\n").status == 400);
  CHECK(send_raw(port, "GET /healthz\r\n\r\n").status == 400);
  CHECK(request(port, "GET", "/healthz?verbose=1").status == 200);  // the query is ignored
  CHECK(request(port, "HEAD", "/metrics").status == 405);
  CHECK(request(port, "GET", "/").status == 404);

  // A request that never completes is cut off after request_timeout, without an answer.
  Client slow(port);
  slow.send("GET /healthz HTTP/1.1\r\nHost:");
  auto t0 = std::chrono::steady_clock::now();
  auto got = slow.read_all();
  CHECK(got.empty());
  CHECK(std::chrono::steady_clock::now() - t0 < 9s);  // closed by the server, not the client's timeout
  server.stop();
  pool.join();
}

// Slow clients (slowloris): connections that send nothing, or a byte now and then, fill the
// limits; each new connection then closes the one that waited longest, so the newcomer, a
// health check included, is answered, and a client pushes out its own connections first.
TEST_CASE("connection limits: a new connection closes the longest-waiting one, its own client's first") {
  asio::thread_pool pool(2);
  AdminLimits limits;
  limits.max_connections = 4;
  limits.max_connections_per_peer = 2;
  limits.request_timeout = 20s;  // the slow clients are not cut off by time here
  AdminServer server(pool.get_executor(), AdminHooks{}, {}, limits);
  server.start("127.0.0.1:0");
  auto port = server.local_endpoint().port();
  auto settle = [] { std::this_thread::sleep_for(100ms); };  // the server registers each in turn

  SUBCASE("per client address") {
    Client a1(port), a2(port);
    a1.send("GET /healthz HTTP/1.1\r\nHo");  // dribbling
    settle();
    a2.send("G");
    settle();
    CHECK(request(port, "GET", "/healthz").status == 200);  // 127.0.0.1's third: a1 closed
    CHECK(a1.closed_by_server());
    Client b1(port, "127.0.0.2");
    settle();
    CHECK(send_raw(port, request_text("GET", "/healthz")).status == 200);  // a2 closed next
    CHECK(a2.closed_by_server());
    b1.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    CHECK(parse(b1.read_all()).status == 200);  // another address's connection untouched
  }
  SUBCASE("in all: the busiest address gives way") {
    Client a1(port), b1(port, "127.0.0.2"), b2(port, "127.0.0.2"), c1(port, "127.0.0.3");
    settle();
    Client d1(port, "127.0.0.4");  // the fifth: b1, the oldest of the address with most, goes
    settle();
    CHECK(b1.closed_by_server());
    for (auto* c : {&a1, &b2, &c1, &d1}) {
      c->send(request_text("GET", "/healthz"));
      CHECK(parse(c->read_all()).status == 200);
    }
  }
  server.stop();
  pool.join();
}
