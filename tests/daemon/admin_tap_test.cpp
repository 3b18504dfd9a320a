// GET /tap: who may tap (the admin token even for a GET; off without one), the checks of its
// query, and the stream through the real server and client (daemon/admin_client.hpp): the
// sample of a running pipeline's stage, the bound on open taps, other requests served meanwhile,
// a tap whose client went away giving its place back.
#include "daemon/admin_tap.hpp"

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

#include "daemon/admin_client.hpp"
#include "daemon/admin_request.hpp"
#include "daemon/admin_server.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/value.hpp"
#include "tests/support/test_stages.hpp"

using namespace etld;
using namespace std::chrono_literals;

namespace {

const std::string kToken = "tap-t0ken-0123456789abcdef";
const std::string kLocal = "Host: 127.0.0.1:9187\r\n";
const std::string kBearer = "Authorization: Bearer " + kToken + "\r\n";

struct Answer {
  int status = 0;
  std::string head, body;
};

Answer answer(const std::string& raw, const AdminAccess& access, const AdminHooks& hooks) {
  AdminPeer peer{boost::asio::ip::make_address("192.0.2.9"), 40000};
  auto text = answer_admin_request(raw, peer, access, hooks);
  Answer a;
  if (text.rfind("HTTP/1.", 0) != 0) return a;
  a.status = std::stoi(text.substr(9, 3));
  auto split = text.find("\r\n\r\n");
  a.head = text.substr(0, split + 2);
  a.body = text.substr(split + 4);
  return a;
}

std::string get(const std::string& target, const std::string& headers = kLocal + kBearer) {
  return "GET " + target + " HTTP/1.1\r\n" + headers + "\r\n";
}

std::shared_ptr<const PipelineConfig> config() {
  return test::config_from(R"yaml(
pipeline: tap_routes
stages:
  gen: { type: generate, count: 10 }
  double: { type: map, inputs: [gen], set: { twice: "seq * 2" } }
  out: { type: "null", inputs: [double] }
)yaml");
}

std::vector<Value> lines(const std::string& ndjson) {
  std::vector<Value> out;
  std::size_t start = 0;
  for (auto nl = ndjson.find('\n'); nl != std::string::npos; nl = ndjson.find('\n', start)) {
    out.push_back(parse_json(ndjson.substr(start, nl - start)));
    start = nl + 1;
  }
  return out;
}

// Hooks of the pipeline of config() whose taps come from `hub`, and an access with the token.
struct Routes {
  TapHub hub{{"gen", "double", "out"}};
  AdminHooks hooks;
  AdminAccess with_token{.token = kToken};
  Routes() {
    hooks.config = [cfg = config()] { return cfg; };
    hooks.open_tap = [this](const std::string& stage, const TapLimits& limits) {
      return hub.open(stage, limits);
    };
  }
};

}  // namespace

TEST_CASE("GET /tap needs the admin token; without one configured tap is off") {
  Routes routes;
  auto& [hub, hooks, with_token] = routes;

  auto off = answer(get("/tap?stage=double"), {}, hooks);
  CHECK(off.status == 403);
  CHECK(off.body.find("tap is off until an admin token is configured: set admin.token_file") == 0);
  auto missing = answer(get("/tap?stage=double", kLocal), with_token, hooks);
  CHECK(missing.status == 401);
  CHECK(missing.body == "GET /tap needs 'Authorization: Bearer TOKEN' (the token in admin.token_file)\n");
  auto wrong = answer(get("/tap?stage=double", kLocal + "Authorization: Bearer " + kToken + "x\r\n"),
                      with_token, hooks);
  CHECK(wrong.status == 401);
  CHECK(wrong.body.find(kToken) == std::string::npos);
  auto cross = answer(get("/tap?stage=double", kLocal + kBearer + "Origin: http://evil.example\r\n"),
                      with_token, hooks);
  CHECK(cross.status == 403);
  CHECK(hub.open_taps() == 0);

  auto ok = answer(get("/tap?stage=double&limit=5"), with_token, hooks);
  CHECK(ok.status == 200);
  CHECK(ok.head.find("Content-Type: application/x-ndjson") != std::string::npos);
  auto got = lines(ok.body);
  REQUIRE(got.size() == 1);  // nothing ran: the end line only
  CHECK(got[0].find("end")->find("stage")->as_string() == "double");
  CHECK(got[0].find("end")->find("sampled")->as_int() == 0);
  CHECK(ok.body.find(kToken) == std::string::npos);
  CHECK(hub.open_taps() == 0);  // closed with its answer
}

TEST_CASE("GET /tap: an unknown stage is 404 naming the stages; bad parameters are 400 saying which") {
  Routes routes;
  auto& [hub, hooks, with_token] = routes;

  auto unknown = answer(get("/tap?stage=nope"), with_token, hooks);
  CHECK(unknown.status == 404);
  CHECK(unknown.body == "tap: no stage 'nope' in the pipeline (its stages: gen, double, out)\n");
  CHECK(answer(get("/tap"), with_token, hooks).body == "tap: which stage? give stage=NAME\n");
  CHECK(answer(get("/tap?stage=double&limit=0"), with_token, hooks).body ==
        "tap: limit='0' is not a number from 1 to 10000\n");
  CHECK(answer(get("/tap?stage=double&rate=5000"), with_token, hooks).body ==
        "tap: rate='5000' is not a number from 0.1 to 1000\n");
  CHECK(answer(get("/tap?stage=double&max_bytes=1e9"), with_token, hooks).status == 400);
  CHECK(answer(get("/tap?stage=double&seconds=3601"), with_token, hooks).status == 400);
  CHECK(answer(get("/tap?stage=double&colour=red"), with_token, hooks).body ==
        "tap: unknown parameter 'colour' (stage, limit, rate, max_bytes, seconds)\n");
  CHECK(answer("GET /tap?stage=double HTTP/1.0\r\n" + kLocal + kBearer + "\r\n", with_token, hooks).status ==
        400);
  CHECK(answer("POST /tap?stage=double HTTP/1.1\r\n" + kLocal + kBearer + "Content-Length: 0\r\n\r\n",
               with_token, hooks)
            .status == 405);

  auto r = parse_tap_query("stage=a%20b&limit=7&rate=0.5&max_bytes=16&seconds=3");
  CHECK(r.stage == "a b");
  CHECK(r.limits.limit == 7);
  CHECK(r.limits.rate == 0.5);
  CHECK(r.limits.max_bytes == 16);
  CHECK(r.seconds == 3s);
  auto d = parse_tap_query("stage=x");
  CHECK(d.limits.limit == 100);
  CHECK(d.limits.rate == 10);
  CHECK(d.limits.max_bytes == 4096);
  CHECK(d.seconds == 60s);
}

TEST_CASE("a tap streams a running stage's events; at most 4 at once; other requests are served meanwhile") {
  test::reset_bucket("tap_stream");
  auto cfg = test::config_from(R"yaml(
pipeline: tap_stream
threads: 1
stages:
  gen: { type: generate, rate: 2000, template: '{"n": {{seq}}}' }
  double: { type: map, inputs: [gen], set: { twice: "n * 2" } }
  out: { type: test_collect, inputs: [double], bucket: tap_stream }
)yaml");
  Pipeline pipeline(cfg);
  AdminHooks hooks;
  hooks.config = [cfg] { return cfg; };
  hooks.open_tap = [&pipeline](const std::string& stage, const TapLimits& limits) {
    return pipeline.tap(stage, limits);
  };
  AdminServer server(pipeline.executor(), hooks, AdminAccess{.token = kToken});
  server.start("127.0.0.1:0");
  AdminEndpoint at{"127.0.0.1", std::to_string(server.local_endpoint().port())};
  pipeline.start();

  // 8 events at 5 a second: a burst of a second's worth (5), then 3 more over 0.6 s, as chunks.
  std::string streamed;
  int chunks = 0;
  AdminGet tap{.target = "/tap?stage=double&limit=8&rate=5&max_bytes=64",
               .timeout = 20s,
               .bearer_token = kToken,
               .on_chunk = [&](std::string_view c) {
                 streamed += c;
                 ++chunks;
               }};
  auto t0 = std::chrono::steady_clock::now();
  CHECK(admin_get(at, tap).empty());
  auto took = std::chrono::steady_clock::now() - t0;
  auto got = lines(streamed);
  REQUIRE(got.size() == 9);
  CHECK(chunks >= 2);
  CHECK(took >= 500ms);  // the rate held
  std::int64_t previous = -1;
  for (std::size_t i = 0; i < 8; ++i) {
    auto record = parse_json(got[i].find("value")->as_string());
    CHECK(record.find("twice")->as_int() == 2 * record.find("n")->as_int());
    CHECK(record.find("n")->as_int() > previous);  // one instance: in order
    previous = record.find("n")->as_int();
    CHECK(got[i].find("stage")->as_string() == "double");
    CHECK(got[i].find("topic")->is_null());
  }
  const auto* end = got[8].find("end");
  REQUIRE(end);
  CHECK(end->find("reason")->as_string() == "limit reached");
  CHECK(end->find("sampled")->as_int() == 8);
  CHECK(end->find("seen")->as_int() > 8);

  // Four long taps hold every place; the fifth is refused; /metrics still answers.
  std::vector<std::future<std::string>> held;
  for (int i = 0; i < 4; ++i)
    held.push_back(std::async(std::launch::async, [&at] {
      std::string body;
      admin_get(at, {.target = "/tap?stage=gen&limit=10000&rate=1&seconds=2",
                     .timeout = 20s,
                     .bearer_token = kToken,
                     .on_chunk = [&](std::string_view c) { body += c; }});
      return body;
    }));
  std::this_thread::sleep_for(500ms);
  try {
    admin_get(at, {.target = "/tap?stage=out", .bearer_token = kToken, .on_chunk = [](std::string_view) {}});
    FAIL("a fifth tap was opened");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(
              "answered GET /tap?stage=out with 429: tap: 4 taps are open (at most 4)") != std::string::npos);
    CHECK(std::string(e.what()).find(kToken) == std::string::npos);
  }
  auto metrics_at = std::chrono::steady_clock::now();
  CHECK(admin_get(at, {.target = "/metrics"}).find("etld_stage_events_out_total") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - metrics_at < 1s);
  for (auto& f : held) {
    auto body = lines(f.get());
    REQUIRE(!body.empty());
    CHECK(body.back().find("end")->find("reason")->as_string() == "time is up");
    CHECK(body.size() <= 4);  // rate 1: one a second, a burst of one, over 2 s, and the end line
  }

  // A client that goes away: its tap gives its place back at once, not after its 60 s.
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), server.local_endpoint().port()});
    std::string raw = get("/tap?stage=gen&limit=10000&rate=1", "Host: 127.0.0.1\r\n" + kBearer);
    boost::asio::write(s, boost::asio::buffer(raw));
    char buf[256];
    s.read_some(boost::asio::buffer(buf));  // the head: the tap is open
  }
  bool freed = false;
  for (int i = 0; i < 50 && !freed; ++i) {
    std::vector<std::shared_ptr<Tap>> taps;
    try {
      for (std::size_t k = 0; k < kMaxTaps; ++k) taps.push_back(pipeline.tap("gen", {}));
      freed = true;
    } catch (const TapRefused&) {
      std::this_thread::sleep_for(100ms);
    }
  }
  CHECK(freed);

  pipeline.stop();
  REQUIRE(pipeline.wait_for(30s));
  server.stop();
  CHECK_FALSE(pipeline.error());
}
