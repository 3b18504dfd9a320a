// Pipeline::reconfigure: a new configuration applied to the running graph, rebuilding only the
// stages whose settings changed, with no event lost or repeated.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "stages/engine/pipeline.hpp"
#include "tests/support/test_stages.hpp"

using namespace etld;
using namespace etld::test;
using namespace std::chrono_literals;

namespace {

// generate (endless, numbers as objects) -> scale (map) -> out (test_collect), with knobs.
std::string pipeline(const std::string& factor, const std::string& bucket, const std::string& extra = "") {
  return R"yaml(
threads: 2
stages:
  producer: { type: generate, template: '{"n": {{seq}}}', rate: 20000 }
  scale: { type: map, inputs: [producer], set: { v: "n * )yaml" +
         factor + R"yaml(" } }
  out: { type: test_collect, inputs: [scale], bucket: )yaml" +
         bucket + R"yaml(, concurrency: 2, partition_by: n, delay: 1ms }
)yaml" + extra;
}

void wait_count(const std::string& name, std::size_t at_least) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (bucket(name)->count() < at_least && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  REQUIRE(bucket(name)->count() >= at_least);
}

// The n of every event received, across buckets, sorted; and how many had each factor.
std::vector<std::int64_t> numbers(std::initializer_list<const char*> names,
                                  std::map<std::int64_t, int>* factors = nullptr) {
  std::vector<std::int64_t> ns;
  for (const auto* name : names)
    for (const auto& r : bucket(name)->snapshot()) {
      auto n = std::stoll(r.text.substr(r.text.find(':') + 1));
      auto v = std::stoll(r.text.substr(r.text.rfind(':') + 1));
      ns.push_back(n);
      if (factors && n != 0) ++(*factors)[v / n];
    }
  std::sort(ns.begin(), ns.end());
  return ns;
}

void check_gapless(const std::vector<std::int64_t>& ns) {
  REQUIRE_FALSE(ns.empty());
  for (std::size_t i = 0; i < ns.size(); ++i)
    if (ns[i] != static_cast<std::int64_t>(i)) {
      FAIL_CHECK("event " << i << " missing or repeated (found " << ns[i] << ")");
      return;
    }
}

}  // namespace

TEST_CASE("reconfigure: a changed sink option rebuilds that sink only; every event arrives once") {
  reset_bucket("rc_a");
  reset_bucket("rc_b");
  Pipeline p(config_from(pipeline("2", "rc_a")));
  p.start();
  wait_count("rc_a", 2000);
  auto r = p.reconfigure(config_from(pipeline("2", "rc_b")), 10s);
  CHECK(r.needs_rebuild.empty());
  CHECK(r.error.empty());
  CHECK(r.applied);
  CHECK(r.restarted == std::vector<std::string>{"out"});
  auto a_at_swap = bucket("rc_a")->count();
  wait_count("rc_b", 2000);
  CHECK(bucket("rc_a")->count() == a_at_swap);  // the old sink got nothing after the swap
  p.stop();
  REQUIRE(p.wait_for(30s));
  CHECK_FALSE(p.error());
  check_gapless(numbers({"rc_a", "rc_b"}));
  CHECK(p.config()->find("out")->options.get_string("bucket") == "rc_b");
}

TEST_CASE("reconfigure: a changed transform is rebuilt alone; the source keeps its place in the stream") {
  reset_bucket("rc_t");
  Pipeline p(config_from(pipeline("2", "rc_t")));
  p.start();
  wait_count("rc_t", 2000);
  auto r = p.reconfigure(config_from(pipeline("3", "rc_t")), 10s);
  CHECK(r.applied);
  CHECK(r.restarted == std::vector<std::string>{"scale"});
  auto at_swap = bucket("rc_t")->count();
  wait_count("rc_t", at_swap + 2000);
  p.stop();
  REQUIRE(p.wait_for(30s));
  std::map<std::int64_t, int> factors;
  auto ns = numbers({"rc_t"}, &factors);
  check_gapless(ns);  // a restarted generate source would have started again from 0
  CHECK(factors.size() == 2);
  CHECK(factors[2] > 0);
  CHECK(factors[3] > 0);
}

TEST_CASE("reconfigure: the same settings written differently restart nothing") {
  reset_bucket("rc_same");
  Pipeline p(config_from(pipeline("2", "rc_same")));
  p.start();
  wait_count("rc_same", 500);
  auto r = p.reconfigure(config_from(R"yaml(
threads: 2
# the same pipeline, in block style, keys in another order
stages:
  producer:
    rate: 20000
    template: '{"n": {{seq}}}'
    type: generate
  scale:
    type: map
    inputs: [producer]
    set:
      v: "n * 2"
  out:
    partition_by: n
    concurrency: 2
    type: test_collect
    inputs: [scale]
    bucket: rc_same
    delay: 1ms
)yaml"),
                         10s);
  CHECK(r.applied);
  CHECK(r.restarted.empty());
  p.stop();
  REQUIRE(p.wait_for(30s));
  check_gapless(numbers({"rc_same"}));
}

TEST_CASE("reconfigure: wiring or thread changes are left to a rebuild, and the running graph is untouched") {
  reset_bucket("rc_w");
  Pipeline p(config_from(pipeline("2", "rc_w")));
  p.start();
  wait_count("rc_w", 500);
  auto added = p.reconfigure(
      config_from(pipeline("2", "rc_w", "  more: { type: test_collect, inputs: [scale], bucket: rc_w2 }\n")),
      10s);
  CHECK(added.needs_rebuild == "stage 'more' was added");
  CHECK_FALSE(added.applied);
  auto yaml = pipeline("2", "rc_w");
  auto more_instances = yaml;
  more_instances.replace(more_instances.find("concurrency: 2"), 14, "concurrency: 3");
  CHECK(p.reconfigure(config_from(more_instances), 10s).needs_rebuild ==
        "stage 'out': its concurrency changed");
  auto threads = yaml;
  threads.replace(threads.find("threads: 2"), 10, "threads: 4");
  CHECK(p.reconfigure(config_from(threads), 10s).needs_rebuild == "threads changed from 2 to 4");
  auto n = bucket("rc_w")->count();
  wait_count("rc_w", n + 500);  // still flowing
  p.stop();
  REQUIRE(p.wait_for(30s));
  check_gapless(numbers({"rc_w"}));
}

TEST_CASE(
    "reconfigure: events that do not settle in time leave the old configuration running, losing nothing") {
  reset_bucket("rc_slow");
  reset_bucket("rc_slow2");
  auto slow = [](const std::string& b) {
    return R"yaml(
threads: 2
stages:
  producer: { type: generate, count: 100, batch: 10 }
  out: { type: test_collect, inputs: [producer], bucket: )yaml" +
           b + R"yaml(, delay: 200ms, max_demand: 20, min_demand: 10 }
)yaml";
  };
  Pipeline p(config_from(slow("rc_slow")));
  p.start();
  wait_count("rc_slow", 10);
  auto r = p.reconfigure(config_from(slow("rc_slow2")), 50ms);
  CHECK_FALSE(r.applied);
  CHECK(r.restarted.empty());
  CHECK(r.error.find("did not settle within 50ms") != std::string::npos);
  REQUIRE(p.wait_for(30s));  // the old pipeline resumes and finishes its 100 events
  CHECK_FALSE(p.error());
  CHECK(bucket("rc_slow")->count() == 100);
  CHECK(bucket("rc_slow2")->count() == 0);
}

TEST_CASE("reconfigure: a rotated ${file:...} secret counts as a change of its stage") {
  reset_bucket("rc_secret_a");
  reset_bucket("rc_secret_b");
  auto secret = std::filesystem::temp_directory_path() / ("etld_rc_secret_" + std::to_string(::getpid()));
  auto write = [&](const char* value) { std::ofstream(secret) << value; };
  write("rc_secret_a");
  auto yaml = R"yaml(
threads: 2
stages:
  producer: { type: generate, template: '{"n": {{seq}}}', rate: 20000 }
  out: { type: test_collect, inputs: [producer], bucket: "${file:)yaml" +
              secret.string() + R"yaml(}" }
)yaml";
  Pipeline p(config_from(yaml));
  p.start();
  wait_count("rc_secret_a", 500);
  CHECK(p.reconfigure(config_from(yaml), 10s).restarted.empty());  // same file, same secret
  write("rc_secret_b");
  auto r = p.reconfigure(config_from(yaml), 10s);  // same text, rotated secret
  CHECK(r.restarted == std::vector<std::string>{"out"});
  wait_count("rc_secret_b", 500);
  p.stop();
  REQUIRE(p.wait_for(30s));
  std::filesystem::remove(secret);
  auto ns = numbers({"rc_secret_a", "rc_secret_b"});
  check_gapless(ns);
}
