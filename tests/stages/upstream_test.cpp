// The graph walk the delivery checks and the offset-store binding share: every stage upstream of
// a stage once, depth first in input order, and which of them are sources.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "stages/engine/upstream.hpp"
#include "tests/support/test_stages.hpp"

using namespace etld;

namespace {

std::vector<std::string> names(const std::vector<const StageConfig*>& stages) {
  std::vector<std::string> out;
  for (const auto* s : stages) out.push_back(s->name);
  return out;
}

// Two sources; m1 feeds both j and m2 (a diamond), and `a` reaches `out` directly and through j.
const char* const kDiamond = R"(
stages:
  a: { type: generate, count: 1 }
  b: { type: generate, count: 1 }
  m1: { type: map, inputs: [a], set: { x: '1' } }
  m2: { type: map, inputs: [m1, b], set: { y: '2' } }
  j: { type: map, inputs: [m1, m2], set: { z: '3' } }
  out: { type: test_collect, inputs: [j, a], bucket: upstream }
)";

}  // namespace

TEST_CASE("upstream_of: every stage feeding a stage once, an input then what feeds it, in input order") {
  auto config = test::config_from(kDiamond);
  CHECK(names(upstream_of(*config->find("out"), *config)) ==
        std::vector<std::string>{"j", "m1", "a", "m2", "b"});
  CHECK(names(upstream_of(*config->find("m2"), *config)) == std::vector<std::string>{"m1", "a", "b"});
  CHECK(upstream_of(*config->find("a"), *config).empty());
}

TEST_CASE("sources_upstream_of: only the sources, in the walk's order") {
  auto config = test::config_from(kDiamond);
  CHECK(names(sources_upstream_of(*config->find("out"), *config)) == std::vector<std::string>{"a", "b"});
  CHECK(names(sources_upstream_of(*config->find("j"), *config)) == std::vector<std::string>{"a", "b"});
  CHECK(names(sources_upstream_of(*config->find("m1"), *config)) == std::vector<std::string>{"a"});
}

TEST_CASE("upstream_of: an input that names no stage is skipped") {
  auto config = test::config_from(kDiamond);
  StageConfig loose;
  loose.name = "loose";
  loose.inputs = {"nowhere", "m1"};
  CHECK(names(upstream_of(loose, *config)) == std::vector<std::string>{"m1", "a"});
}
