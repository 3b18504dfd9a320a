// Diagnostic formatting, ordering and did-you-mean.
#include <doctest/doctest.h>

#include "config/schema/diagnostics.hpp"
#include "config/schema/secrets.hpp"

using namespace etld;

namespace {
YAML::Mark mark_at(int line, int column) {
  YAML::Mark m;
  m.line = line;
  m.column = column;
  return m;
}
}  // namespace

TEST_CASE("Diagnostic::format is file:line:col: error: message (hint), 1-based") {
  Diagnostics diags("pipe.yaml");
  diags.error(mark_at(2, 4), "unknown option 'tpoics'", "did you mean 'topics'?");
  REQUIRE(diags.items().size() == 1);
  CHECK(diags.items()[0].line == 3);
  CHECK(diags.items()[0].column == 5);
  CHECK(diags.items()[0].format() ==
        "pipe.yaml:3:5: error: unknown option 'tpoics' (did you mean 'topics'?)");
  diags.error(mark_at(0, 0), "no hint");
  CHECK(diags.items()[0].format() == "pipe.yaml:1:1: error: no hint");
  CHECK_FALSE(diags.ok());
}

TEST_CASE("a problem without a position has no line and column") {
  Diagnostics diags("missing.yaml");
  diags.error(YAML::Mark::null_mark(), "cannot read pipeline file");
  CHECK(diags.items()[0].line == 0);
  CHECK(diags.format() == "missing.yaml: error: cannot read pipeline file\n");
}

TEST_CASE("Diagnostics keeps problems in file order and formats one per line") {
  Diagnostics diags("f.yaml");
  CHECK(diags.ok());
  diags.error(mark_at(9, 0), "third");
  diags.error(mark_at(1, 7), "second");
  diags.error(ConfigError(mark_at(1, 2), "first", "fix it"));
  diags.error(mark_at(9, 0), "fourth");
  CHECK(diags.format() ==
        "f.yaml:2:3: error: first (fix it)\n"
        "f.yaml:2:8: error: second\n"
        "f.yaml:10:1: error: third\n"
        "f.yaml:10:1: error: fourth\n");
  CHECK(diags.file() == "f.yaml");
}

TEST_CASE("ConfigError carries a mark only when given one") {
  ConfigError with(mark_at(3, 1), "msg", "hint");
  CHECK(with.has_mark());
  CHECK(std::string(with.what()) == "msg");
  CHECK(with.hint() == "hint");
  ConfigError without("msg");
  CHECK_FALSE(without.has_mark());
  CHECK(without.hint().empty());
}

TEST_CASE("did_you_mean") {
  std::vector<std::string> keys = {"topics", "brokers", "group_id", "concurrency", "inputs"};
  CHECK(did_you_mean("tpoics", keys) == "did you mean 'topics'?");  // transposition
  CHECK(did_you_mean("broker", keys) == "did you mean 'brokers'?");
  CHECK(did_you_mean("concurency", keys) == "did you mean 'concurrency'?");
  CHECK(did_you_mean("GROUP_ID", keys) == "did you mean 'group_id'?");
  CHECK(did_you_mean("input", keys) == "did you mean 'inputs'?");
  CHECK(did_you_mean("zzzzzz", keys).empty());
  CHECK(did_you_mean("x", {"y"}).empty());
  CHECK(did_you_mean("anything", {}).empty());
}

TEST_CASE("Diagnostic::format masks remembered secrets, e.g. in a library's message it passes on") {
  remember_secret("diag-secret-3141");
  Diagnostics diags("pipe.yaml");
  diags.error(mark_at(0, 0), "cannot connect: server said diag-secret-3141 is wrong", "not diag-secret-3141");
  CHECK(diags.format() == "pipe.yaml:1:1: error: cannot connect: server said *** is wrong (not ***)\n");
}
