// Options, expand_vars and the scalar conversions.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"
#include "config/schema/secrets.hpp"

namespace {

using namespace etld;
using namespace std::chrono_literals;

YAML::Mark mark_at(int line, int column) {
  YAML::Mark m;
  m.line = line;
  m.column = column;
  return m;
}

// The ConfigError `fn` throws (fails the test when it throws none).
template <typename Fn>
ConfigError error_of(Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("no ConfigError thrown");
  return ConfigError("unreachable");
}

const std::vector<OptionSpec> specs = {
    {"s", OptionKind::string, "", false, "", {}},
    {"n", OptionKind::integer, "", false, "", {}},
};

}  // namespace

TEST_CASE("expand_vars: ${VAR}, ${VAR:-default}, $${ and errors") {
  ::setenv("ETLD_OPT_TEST_A", "alpha", 1);
  ::setenv("ETLD_OPT_TEST_EMPTY", "", 1);
  ::unsetenv("ETLD_OPT_TEST_UNSET");
  auto m = mark_at(4, 2);
  CHECK(expand_vars("plain", m) == "plain");
  CHECK(expand_vars("${ETLD_OPT_TEST_A}", m) == "alpha");
  CHECK(expand_vars("x-${ETLD_OPT_TEST_A}-y", m) == "x-alpha-y");
  CHECK(expand_vars("${ETLD_OPT_TEST_UNSET:-fallback}", m) == "fallback");
  CHECK(expand_vars("${ETLD_OPT_TEST_UNSET:-}", m) == "");
  CHECK(expand_vars("${ETLD_OPT_TEST_A:-fallback}", m) == "alpha");
  CHECK(expand_vars("${ETLD_OPT_TEST_EMPTY:-fallback}", m) == "fallback");
  CHECK(expand_vars("${ETLD_OPT_TEST_EMPTY}", m) == "");
  CHECK(expand_vars("$${ETLD_OPT_TEST_A}", m) == "${ETLD_OPT_TEST_A}");
  CHECK(expand_vars("cost: $5 and $$", m) == "cost: $5 and $$");

  auto unset = error_of([&] { expand_vars("a${ETLD_OPT_TEST_UNSET}", m); });
  CHECK(std::string(unset.what()) == "environment variable 'ETLD_OPT_TEST_UNSET' is not set");
  CHECK(unset.hint() == "set it, or give a default with ${ETLD_OPT_TEST_UNSET:-default}");
  CHECK(unset.mark().line == 4);
  CHECK(unset.mark().column == 2);

  auto unterminated = error_of([&] { expand_vars("${ETLD_OPT_TEST_A", m); });
  CHECK(std::string(unterminated.what()).find("unterminated '${'") != std::string::npos);
  auto bad_name = error_of([&] { expand_vars("${1abc}", m); });
  CHECK(std::string(bad_name.what()).find("invalid variable name '1abc'") != std::string::npos);
}

TEST_CASE("expand_vars: ${file:...} reads a secret and strips the trailing newline") {
  auto path =
      (std::filesystem::temp_directory_path() / ("etld_secret_" + std::to_string(::getpid()))).string();
  {
    std::ofstream out(path);
    out << "s3cret\n";
  }
  CHECK(expand_vars("pw=${file:" + path + "}", mark_at(0, 0)) == "pw=s3cret");
  std::filesystem::remove(path);
  auto e = error_of([&] { expand_vars("${file:" + path + "}", mark_at(1, 1)); });
  CHECK(std::string(e.what()) == "cannot read secret file '" + path + "': No such file or directory");
  CHECK(e.mark().line == 1);
}

TEST_CASE("expand_vars: ${file:...} refuses what is not a regular file, and files over 1 MiB") {
  auto dir = std::filesystem::temp_directory_path() / ("etld_secret_dir_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto fifo = (dir / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto big = (dir / "big").string();
  {
    std::ofstream out(big);
    out << std::string(kMaxSecretFileBytes, 'x') << "TAIL-OF-THE-SECRET";
  }
  struct Case {
    std::string path, why;
  };
  for (const auto& [path, why] : {Case{"/dev/zero", "it is a character device, not a regular file"},
                                  Case{fifo, "it is a FIFO, not a regular file"},  // no writer: must not hang
                                  Case{dir.string(), "it is a directory, not a regular file"},
                                  Case{big, "it is larger than 1048576 bytes"}}) {
    INFO(path);
    auto e = error_of([&] { expand_vars("${file:" + path + "}", mark_at(3, 7)); });
    CHECK(std::string(e.what()) == "cannot read secret file '" + path + "': " + why);
    CHECK(e.mark().line == 3);
  }
  // At the limit it is read whole.
  std::filesystem::resize_file(big, kMaxSecretFileBytes);
  CHECK(expand_vars("${file:" + big + "}", mark_at(0, 0)).size() == kMaxSecretFileBytes);
  std::filesystem::remove_all(dir);
}

TEST_CASE("expand_vars: a ${file:...} secret is remembered and masked by redact_secrets") {
  auto path =
      (std::filesystem::temp_directory_path() / ("etld_secret_r_" + std::to_string(::getpid()))).string();
  {
    std::ofstream out(path);
    out << "file-secret-0451\n";
  }
  CHECK(redact_secrets("pw is file-secret-0451") == "pw is file-secret-0451");  // not read yet
  CHECK(expand_vars("${file:" + path + "}", mark_at(0, 0)) == "file-secret-0451");
  CHECK(redact_secrets("pw is file-secret-0451.") == "pw is ***.");
  std::filesystem::remove(path);
}

TEST_CASE("parse_duration") {
  CHECK(parse_duration(YAML::Load("100ms")) == 100ms);
  CHECK(parse_duration(YAML::Load("5s")) == 5s);
  CHECK(parse_duration(YAML::Load("2m")) == 2min);
  CHECK(parse_duration(YAML::Load("1h")) == 1h);
  CHECK(parse_duration(YAML::Load("250")) == 250ms);
  CHECK(parse_duration(YAML::Load("1.5s")) == 1500ms);
  CHECK(parse_duration(YAML::Load("0")) == 0ms);
  for (const char* bad : {"abc", "5x", "-1s", "s", "1 s", "5sec", "1.2.3s"}) {
    INFO(bad);
    auto e = error_of([&] { parse_duration(YAML::Load(std::string("key: '") + bad + "'")["key"]); });
    CHECK(std::string(e.what()) ==
          std::string("expected a duration such as 100ms, 5s, 2m; got '") + bad + "'");
    CHECK(e.mark().line == 0);
    CHECK(e.mark().column == 5);
  }
  auto list = error_of([] { parse_duration(YAML::Load("[1, 2]")); });
  CHECK(std::string(list.what()) == "expected a duration such as 100ms, 5s, 2m; got a list");
}

TEST_CASE("scalar_int and scalar_string") {
  ::setenv("ETLD_OPT_TEST_N", "42", 1);
  CHECK(scalar_int(YAML::Load("17")) == 17);
  CHECK(scalar_int(YAML::Load("-3")) == -3);
  CHECK(scalar_int(YAML::Load("${ETLD_OPT_TEST_N}")) == 42);
  CHECK(std::string(error_of([] { scalar_int(YAML::Load("12abc")); }).what()) ==
        "expected an integer; got '12abc'");
  CHECK(scalar_string(YAML::Load("v-${ETLD_OPT_TEST_N}")) == "v-42");
  // An expanded value is named by what was written, never shown (it may be a secret).
  ::setenv("ETLD_OPT_TEST_SECRET", "hunter2", 1);
  CHECK(std::string(error_of([] { scalar_int(YAML::Load("${ETLD_OPT_TEST_SECRET}")); }).what()) ==
        "expected an integer; got the expansion of '${ETLD_OPT_TEST_SECRET}'");
  CHECK(std::string(error_of([] { scalar_string(YAML::Load("{a: 1}")); }).what()) ==
        "expected a string; got a map");
}

TEST_CASE("Options accessors: conversions and located errors") {
  ::setenv("ETLD_OPT_TEST_A", "alpha", 1);
  YAML::Node node = YAML::Load(R"(s: ${ETLD_OPT_TEST_A}
n: 12
f: 2.5
b: yes
d: 3s
l: [x, "${ETLD_OPT_TEST_A}"]
one: single
m: {k1: v1, k2: "${ETLD_OPT_TEST_A}"}
bad: nope
empty:
)");
  Options o(node, &specs);
  CHECK(o.has("s"));
  CHECK_FALSE(o.has("absent"));
  CHECK_FALSE(o.has("empty"));
  CHECK(o.get_string("s") == "alpha");
  CHECK(o.get_int("n") == 12);
  CHECK(o.get_number("f") == doctest::Approx(2.5));
  CHECK(o.get_number("n") == doctest::Approx(12));
  CHECK(o.get_bool("b") == true);
  CHECK(o.get_duration("d") == 3s);
  CHECK(o.get_string_list("l") == std::vector<std::string>{"x", "alpha"});
  CHECK(o.get_string_list("one") == std::vector<std::string>{"single"});
  CHECK(o.get_string_list("absent").empty());
  CHECK(o.get_string_map("m") ==
        std::vector<std::pair<std::string, std::string>>{{"k1", "v1"}, {"k2", "alpha"}});
  CHECK(o.get_string_map("absent").empty());
  CHECK(o.node("absent").IsNull());
  CHECK(o.node("n").Scalar() == "12");
  CHECK(o.mark("n").line == 1);
  CHECK(o.mark("n").column == 3);
  CHECK(o.mark("absent").line == node.Mark().line);

  auto e = error_of([&] { o.get_int("bad"); });
  CHECK(std::string(e.what()) == "option 'bad': expected an integer; got 'nope'");
  CHECK(e.mark().line == 8);
  CHECK(e.mark().column == 5);
  CHECK(std::string(error_of([&] { o.get_bool("bad"); }).what()) ==
        "option 'bad': expected true or false; got 'nope'");
  CHECK(std::string(error_of([&] { o.get_duration("bad"); }).what()) ==
        "option 'bad': expected a duration such as 100ms, 5s, 2m; got 'nope'");
  CHECK(std::string(error_of([&] { o.get_number("bad"); }).what()) ==
        "option 'bad': expected a number; got 'nope'");
  CHECK(std::string(error_of([&] { o.get_string_map("l"); }).what()) ==
        "option 'l': expected a map of strings such as {key: value}; got a list");

  Options none;
  CHECK_FALSE(none.has("x"));
  CHECK(none.get_string_list("x").empty());
}

TEST_CASE("an absent option is its spec's default, read as if the user had written it") {
  ::setenv("ETLD_OPT_TEST_A", "alpha", 1);
  ::unsetenv("ETLD_OPT_TEST_UNSET");
  const std::vector<OptionSpec> with_defaults = {
      {"s", OptionKind::string, "", false, "${ETLD_OPT_TEST_A}", {}},
      {"n", OptionKind::integer, "", false, "${ETLD_OPT_TEST_UNSET:-7}", {}},
      {"f", OptionKind::number, "", false, "1.25", {}},
      {"b", OptionKind::boolean, "", false, "yes", {}},
      {"d", OptionKind::duration, "", false, "2m", {}},
      {"c", OptionKind::choice, "", false, "slow", {"fast", "slow"}},
      {"l", OptionKind::string_list, "", false, "[x, y]", {}},
      {"m", OptionKind::string_map, "", false, "{k: v}", {}},
      {"batch", OptionKind::mapping, "", false, "{rows: 10, wait: 5ms}", {}},
  };
  Options absent(YAML::Load("{}"), &with_defaults);
  CHECK(absent.get_string("s") == "alpha");
  CHECK(absent.get_int("n") == 7);
  CHECK(absent.get_number("f") == doctest::Approx(1.25));
  CHECK(absent.get_bool("b") == true);
  CHECK(absent.get_duration("d") == 2min);
  CHECK(absent.get_string("c") == "slow");
  CHECK(absent.get_string_list("l") == std::vector<std::string>{"x", "y"});
  CHECK(absent.get_string_map("m") == std::vector<std::pair<std::string, std::string>>{{"k", "v"}});
  CHECK(absent.default_node("batch")["wait"].Scalar() == "5ms");
  CHECK_FALSE(absent.has("n"));  // a default is not a value as written
  CHECK(absent.node("n").IsNull());

  Options written(YAML::Load("{n: 3, c: fast}"), &with_defaults);
  CHECK(written.get_int("n") == 3);
  CHECK(written.get_string("c") == "fast");
}

TEST_CASE("reading an absent option without a default is a programming error") {
  Options o(YAML::Load("{s: here}"), &specs);  // s and n declare no default
  CHECK(o.get_string("s") == "here");
  CHECK_THROWS_AS(o.get_int("n"), std::logic_error);
  CHECK_THROWS_AS(o.get_string("undeclared"), std::logic_error);
  CHECK_THROWS_AS(Options().get_bool("x"), std::logic_error);
  CHECK(o.get_string_list("n").empty());  // lists and maps are empty instead
  CHECK(o.default_node("n").IsNull());
}

TEST_CASE("a default that does not fit its own spec is a programming error") {
  CHECK_THROWS_AS(default_value({"n", OptionKind::integer, "", false, "ten", {}}), std::logic_error);
  CHECK_THROWS_AS(default_value({"c", OptionKind::choice, "", false, "medium", {"fast", "slow"}}),
                  std::logic_error);
  CHECK_THROWS_AS(default_value({"b", OptionKind::boolean, "", false, "true when key is set", {}}),
                  std::logic_error);
  CHECK_THROWS_AS(default_value({"m", OptionKind::mapping, "", false, "{a: [", {}}), std::logic_error);
  CHECK(default_value({"n", OptionKind::integer, "", false, "", {}}).IsNull());
  CHECK(default_value({"d", OptionKind::duration, "", false, "250ms", {}}).Scalar() == "250ms");
}

TEST_CASE("check_option validates kinds and choices") {
  OptionSpec choice{"mode", OptionKind::choice, "", false, "", {"fast", "slow"}};
  check_option(choice, YAML::Load("fast"));
  auto e = error_of([&] { check_option(choice, YAML::Load("sloww")); });
  CHECK(std::string(e.what()) == "option 'mode': expected one of fast, slow; got 'sloww'");
  CHECK(e.hint() == "did you mean 'slow'?");
  OptionSpec any{"x", OptionKind::any, "", false, "", {}};
  check_option(any, YAML::Load("{a: [1]}"));
  OptionSpec seq{"x", OptionKind::sequence, "", false, "", {}};
  check_option(seq, YAML::Load("[1, {a: b}]"));
}

TEST_CASE("option_kind_name") {
  CHECK(std::string(option_kind_name(OptionKind::duration)) == "duration");
  CHECK(std::string(option_kind_name(OptionKind::string_list)) == "list of strings");
  CHECK(std::string(option_kind_name(OptionKind::choice)) == "choice");
}

TEST_CASE("assigning an Options rebinds it: the Options it was copied from keeps its own node") {
  const std::vector<OptionSpec> specs{{"table", OptionKind::string, "A table.", false, "", {}}};
  Options stage(YAML::Load("{table: orders}"), &specs);
  Options entry = stage;  // shares the node, as a copied StageConfig does
  entry = Options(YAML::Load("{table: customers}"), &specs);
  CHECK(entry.get_string("table") == "customers");
  CHECK(stage.get_string("table") == "orders");
}
