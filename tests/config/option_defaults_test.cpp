// Each option's default is declared once, in its OptionSpec: the reference shows that text and an
// absent option reads it by the rules of a written one. These tests hold every registered stage
// type to it, and show for the built-in sources that leaving an option out and writing its
// default text make the same stage.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "config/loader.hpp"
#include "config/loader_parts.hpp"
#include "config/schema/options.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/fake_contexts.hpp"

using namespace etld;
using namespace etld::test;

namespace {

// Every spec's default text reads under its own kind (check_option: choices included).
void check_defaults(const std::string& owner, const std::vector<OptionSpec>& specs) {
  for (const auto& spec : specs) {
    if (spec.default_text.empty()) continue;
    INFO(owner << ": option '" << spec.name << "' with default '" << spec.default_text << "'");
    CHECK_FALSE(spec.required);  // a required option's default could never apply
    CHECK_NOTHROW(default_value(spec));
    if (spec.kind == OptionKind::choice) {
      bool listed = false;
      for (const auto& c : spec.choices) listed = listed || c == spec.default_text;
      CHECK(listed);
    }
  }
}

// What a source emits for `demand` events: values and batch sizes.
struct Emitted {
  std::vector<std::string> values;
  std::vector<std::size_t> batch_sizes;
  bool finished = false;
};

Emitted run_source(const std::string& type, const std::string& options, std::size_t demand) {
  boost::asio::io_context io;
  FakeSourceContext ctx(io);
  auto factory = configure_stage(type, options, "src");
  auto source = factory->make_source(0);
  ctx.start(*source);
  ctx.grant(*source, demand);
  run_until(io, [&] { return ctx.events.size() >= demand || ctx.finished() || ctx.error; });
  run_idle(io);
  Emitted out;
  for (auto& e : ctx.events) out.values.push_back(e.value);
  out.batch_sizes = ctx.batch_sizes;
  out.finished = ctx.finished();
  ctx.stop(*source);
  run_idle(io);
  return out;
}

}  // namespace

TEST_CASE("every declared default reads under its option's kind, for every stage type") {
  const auto types = all_stage_types();
  REQUIRE(types.size() >= 10);
  for (const auto* type : types) check_defaults("stage type " + type->name, type->options);
  check_defaults("common stage options", common_stage_options());
  check_defaults("top-level keys", loader_detail::top_level_options());
}

TEST_CASE("an absent option of a real stage type reads its spec's default") {
  // The value is the spec's text parsed, so the reference shows the value the code uses.
  const StageType* kafka = find_stage_type("kafka");
  REQUIRE(kafka != nullptr);
  Options o(YAML::Load("{brokers: 'h:1', group: g, topics: [a]}"), &kafka->options);
  CHECK(o.get_duration("commit_interval") == std::chrono::seconds(1));
  CHECK(o.get_string("start_from") == "earliest");
  CHECK_THROWS_AS(o.get_string("topic_pattern"), std::logic_error);  // no default: ask has()
}

TEST_CASE("generate: options left out behave as their default text written out") {
  const std::string defaults = "start: 0, batch: 500";
  auto omitted = run_source("generate", "{count: 1200}", 1200);
  auto written = run_source("generate", "{count: 1200, " + defaults + "}", 1200);
  REQUIRE(omitted.values.size() == 1200);
  CHECK(omitted.values == written.values);
  CHECK(omitted.batch_sizes == written.batch_sizes);
  CHECK(omitted.values.front() == "0");
  CHECK(omitted.batch_sizes.front() == 500);
}

TEST_CASE("file: options left out behave as their default text written out") {
  char tmpl[] = "/tmp/etld_option_defaults_XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::filesystem::path dir = tmpl;
  const std::string path = (dir / "in.jsonl").string();
  {
    std::ofstream f(path);
    for (int i = 0; i < 2500; ++i) f << "{\"n\": " << i << "}\n";
  }
  const std::string defaults =
      "format: json, follow: false, poll_interval: 250ms, batch: 1000, max_line_bytes: 1048576";
  auto omitted = run_source("file", "{path: '" + path + "'}", 3000);
  auto written = run_source("file", "{path: '" + path + "', " + defaults + "}", 3000);
  CHECK(omitted.values.size() == 2500);
  CHECK(omitted.values == written.values);
  CHECK(omitted.batch_sizes == written.batch_sizes);
  CHECK(omitted.finished == written.finished);
  CHECK(omitted.finished);  // follow: false ends at the end of the file
  CHECK(omitted.batch_sizes.front() == 1000);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
