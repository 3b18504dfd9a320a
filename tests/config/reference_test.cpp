// The generated stage reference.
#include <doctest/doctest.h>

#include "config/reference.hpp"

TEST_CASE("stage_reference_markdown documents common options and each stage type's options") {
  std::string md = etld::stage_reference_markdown();
  CHECK(md == etld::stage_reference_markdown());  // deterministic
  CHECK(md.find("## Common stage options") != std::string::npos);
  CHECK(md.find("| `restart` | choice | no | `transient` | `permanent`, `transient`, `temporary` |") !=
        std::string::npos);
  // The test-only types registered in loader_test.cpp.
  auto transform = md.find("### test_config_transform");
  REQUIRE(transform != std::string::npos);
  CHECK(md.find("Role: transform. A transform for the config tests", transform) != std::string::npos);
  CHECK(md.find("| `name` | string | yes |  |  | A required string. |", transform) != std::string::npos);
  CHECK(md.find("| `mode` | choice | no | `fast` | `fast`, `slow`, `careful` | A choice. |", transform) !=
        std::string::npos);
  CHECK(md.find("| `interval` | duration | no | `1s` |", transform) != std::string::npos);
  CHECK(md.find("## Sources") < md.find("## Transforms"));
  CHECK(md.find("## Transforms") < md.find("## Sinks"));
}
