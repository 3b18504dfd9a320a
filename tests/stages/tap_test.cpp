// Taps (stages/engine/tap.hpp): the rate and size limits, the bounded buffer that drops rather
// than waits, the bound on open taps, that sampling leaves events and acks as they were, and a
// tap on a running pipeline's transform seeing the transform's output while the sink gets all.
#include "stages/engine/tap.hpp"

#include <doctest/doctest.h>

#include <thread>

#include "stages/engine/pipeline.hpp"
#include "stages/engine/value.hpp"
#include "tests/support/test_stages.hpp"

using namespace etld;
using namespace std::chrono_literals;

namespace {

Batch numbered(std::size_t n, std::int64_t first_offset = 0, std::shared_ptr<AckTarget> acks = nullptr) {
  Batch b;
  for (std::size_t i = 0; i < n; ++i) {
    Event e;
    e.offset = first_offset + static_cast<std::int64_t>(i);
    e.partition = 2;
    e.topic = "tap_topic";
    e.value = "{\"n\":" + std::to_string(e.offset) + "}";
    if (acks) e.ack = Ack(acks, static_cast<std::uint64_t>(e.offset));
    b.push_back(std::move(e));
  }
  return b;
}

}  // namespace

TEST_CASE("a tap takes at most `rate` events a second, spread over the batches, and `limit` in all") {
  TapHub hub({"s"});
  auto point = hub.point("s");
  auto tap = hub.open("s", TapLimits{.limit = 1000, .rate = 5, .max_bytes = 4096});
  CHECK(point->active());
  for (int i = 0; i < 10; ++i) point->offer(0, numbered(100, i * 100));
  auto first = tap->take();
  // The bucket starts with one second's worth: 5, from the first batch, spread over it.
  REQUIRE(first.events.size() == 5);
  CHECK(first.events[0].offset == 0);
  CHECK(first.events[1].offset == 20);
  CHECK(first.events[4].offset == 80);
  CHECK(first.dropped == 0);
  CHECK(tap->seen() == 1000);
  std::this_thread::sleep_for(420ms);  // 2.1 tokens
  point->offer(0, numbered(100, 1000));
  auto second = tap->take();
  CHECK(second.events.size() >= 2);
  CHECK(second.events.size() <= 5);  // however slow the machine, never more than a second's worth

  auto limited = hub.open("s", TapLimits{.limit = 3, .rate = 1000, .max_bytes = 4096});
  point->offer(0, numbered(100));
  point->offer(0, numbered(100));
  CHECK(limited->take().events.size() == 3);
  CHECK(limited->complete());
  CHECK(limited->sampled() == 3);
}

TEST_CASE("key, value and headers are cut to max_bytes and say so; text stays UTF-8, bytes become base64") {
  Event e;
  e.has_key = true;
  e.key = std::string(100, 'k');
  e.value = "h\xc3\xa9\xc3\xa9";  // héé: cut at 4 bytes the second é would be split
  e.headers = {{"trace", std::string(30, 't')}, {"next", "v"}, {"last", "w"}};
  e.rejection = "stage 'm': map: no field x";
  auto s = sample_event(e, "m", 1, 4);
  REQUIRE(s.key);
  CHECK(s.key->text == "kkkk");
  CHECK(s.key->truncated);
  REQUIRE(s.value);
  CHECK(s.value->text == "h\xc3\xa9");  // 3 bytes: the split character is left out whole
  CHECK(s.value->truncated);
  CHECK_FALSE(s.value->base64);
  // The headers share the 4 bytes: the first header's name takes 4 of them, the rest is left out.
  REQUIRE(s.headers.size() == 1);
  CHECK(s.headers[0].first.text == "trac");
  CHECK(s.headers[0].second.text.empty());
  CHECK(s.headers_omitted == 2);
  CHECK(s.rejection == "stag");
  CHECK(s.stage == "m");
  CHECK(s.instance == 1);

  Event binary;
  binary.value = std::string("\xff\x00\x01", 3);
  auto b = sample_event(binary, "m", 0, 4096);
  CHECK_FALSE(b.key);
  REQUIRE(b.value);
  CHECK(b.value->base64);
  CHECK(b.value->text == "/wAB");
  CHECK_FALSE(b.value->truncated);

  Event tombstone;
  tombstone.has_value = false;
  CHECK_FALSE(sample_event(tombstone, "m", 0, 4096).value);

  Event whole;
  whole.value = "{\"a\": 1}";
  auto w = sample_event(whole, "m", 0, 4096);
  CHECK(w.value->text == "{\"a\": 1}");  // unparsed: the payload as it arrived
  CHECK_FALSE(w.value->truncated);
  whole.set_record(parse_json("{\"a\": 1, \"b\": \"x\"}"));
  CHECK(sample_event(whole, "m", 0, 4096).value->text == "{\"a\":1,\"b\":\"x\"}");  // parsed: the record
}

TEST_CASE("a reader that does not take: the buffer stays bounded, what does not fit is dropped and counted") {
  TapHub hub({"s"});
  auto point = hub.point("s");
  auto tap = hub.open("s", TapLimits{.limit = 100000, .rate = 1000, .max_bytes = 4096});
  for (int i = 0; i < 3; ++i) point->offer(0, numbered(100, i * 100));  // 300 sampled, 256 fit
  auto got = tap->take();
  CHECK(got.events.size() == kTapBufferEvents);
  CHECK(got.dropped == 300 - kTapBufferEvents);
  CHECK(got.events.back().offset < 300);
  auto again = tap->take();
  CHECK(again.events.empty());
  CHECK(again.dropped == 0);  // counted once, per take
  CHECK(tap->dropped() == 300 - kTapBufferEvents);

  // Bounded in bytes too: large values fill kTapBufferBytes first.
  auto big = hub.open("s", TapLimits{.limit = 100000, .rate = 1000, .max_bytes = 64 * 1024});
  Batch large;
  for (int i = 0; i < 100; ++i) {
    Event e;
    e.value = std::string(64 * 1024, 'x');
    large.push_back(std::move(e));
  }
  point->offer(0, large);
  auto held = big->take();
  std::size_t bytes = 0;
  for (const auto& e : held.events) bytes += e.bytes();
  CHECK(bytes <= kTapBufferBytes);
  CHECK(held.events.size() + held.dropped == 100);
  CHECK(held.dropped > 0);
}

TEST_CASE("sampling leaves events and acks as they were: nothing parsed, moved or settled") {
  auto acks = std::make_shared<SequenceAcks>();
  TapHub hub({"s"});
  auto point = hub.point("s");
  auto tap = hub.open("s", TapLimits{.limit = 100, .rate = 100, .max_bytes = 8});
  auto batch = numbered(10, 0, acks);
  point->offer(0, batch);
  CHECK(tap->take().events.size() == 10);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    CHECK(batch[i].ack.pending());
    CHECK_FALSE(batch[i].parsed());
    CHECK(batch[i].value == "{\"n\":" + std::to_string(i) + "}");
  }
  CHECK(acks->settled() == 0);
  settle_all(batch, AckStatus::done);
  CHECK(acks->done_prefix() == 10);
}

TEST_CASE(
    "at most kMaxTaps open; an unknown stage is refused naming the stages; a closed tap copies nothing") {
  TapHub hub({"in", "parse", "out"});
  try {
    hub.open("nope", {});
    FAIL("an unknown stage was tapped");
  } catch (const TapRefused& e) {
    CHECK(e.why == TapRefused::Why::unknown_stage);
    CHECK(std::string(e.what()) == "no stage 'nope' in the pipeline (its stages: in, parse, out)");
  }
  std::vector<std::shared_ptr<Tap>> taps;
  for (std::size_t i = 0; i < kMaxTaps; ++i) taps.push_back(hub.open(i % 2 ? "in" : "parse", {}));
  CHECK(hub.open_taps() == kMaxTaps);
  try {
    hub.open("out", {});
    FAIL("a tap past the limit was opened");
  } catch (const TapRefused& e) {
    CHECK(e.why == TapRefused::Why::too_many);
    CHECK(std::string(e.what()) == "4 taps are open (at most 4); try again once one has ended");
  }
  auto point = hub.point("parse");
  CHECK(point->active());
  taps.clear();
  CHECK(hub.open_taps() == 0);
  CHECK_FALSE(point->active());    // the one relaxed load per batch, and nothing else
  auto out = hub.open("out", {});  // room again
  point->offer(0, numbered(5));
  CHECK(out->seen() == 0);  // another stage's batches are not its
}

TEST_CASE("a tap on a running pipeline's map sees the map's output; the sink still gets every event") {
  test::reset_bucket("tapped");
  auto config = test::config_from(R"yaml(
threads: 2
stages:
  gen: { type: generate, count: 20000, rate: 20000, template: '{"n": {{seq}}}' }
  double: { type: map, inputs: [gen], set: { twice: "n * 2" } }
  out: { type: test_collect, inputs: [double], bucket: tapped }
)yaml");
  Pipeline pipeline(config);
  auto tap = pipeline.tap("double", TapLimits{.limit = 30, .rate = 1000, .max_bytes = 4096});
  pipeline.start();
  std::vector<TapEvent> sampled;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (sampled.size() < 30 && std::chrono::steady_clock::now() < deadline) {
    for (auto& e : tap->take().events) sampled.push_back(std::move(e));
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(pipeline.wait_for(60s));
  CHECK_FALSE(pipeline.error());
  for (auto& e : tap->take().events) sampled.push_back(std::move(e));
  REQUIRE(sampled.size() == 30);
  CHECK(tap->complete());
  for (const auto& e : sampled) {
    auto record = parse_json(e.value->text);
    CHECK(record.find("twice")->as_int() == 2 * record.find("n")->as_int());
    CHECK(e.stage == "double");
  }
  auto got = test::bucket("tapped")->snapshot();
  REQUIRE(got.size() == 20000);
  std::size_t unlike = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    unlike += got[i].text != "{\"n\":" + std::to_string(i) + ",\"twice\":" + std::to_string(2 * i) + "}";
  CHECK(unlike == 0);
  CHECK_THROWS_AS(pipeline.tap("missing", {}), TapRefused);
}
