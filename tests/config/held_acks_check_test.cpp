// The held-acks check: a pipeline whose stateful stage could hold more unsettled events than a
// source feeding it allows (or holds until an end of input that never comes) is refused at
// validation, located at the stateful stage, with the numbers; bounded pipelines still load.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/engine/registry.hpp"

namespace etld {
namespace {

// A source whose bound comes from its options, and a transform that holds up to `max_held` acks:
// the check must go by what factories declare, not by type names.
class DeclaredSource : public StageFactory {
 public:
  explicit DeclaredSource(SourceBound b) : bound_(std::move(b)) {}
  SourceBound source_bound() const override { return bound_; }

 private:
  SourceBound bound_;
};

class DeclaredHolder : public StageFactory {
 public:
  explicit DeclaredHolder(std::size_t max_held) : max_held_(max_held) {}
  AckHolding ack_holding() const override { return {.max_held = max_held_}; }

 private:
  std::size_t max_held_;
};

StageType declared_source() {
  StageType t;
  t.name = "test_declared_source";
  t.role = Role::source;
  t.summary = "A source declaring its bound from its options (held-acks check tests).";
  t.options = {
      {"ends", OptionKind::boolean, "Its input ends.", false, "false", {}},
      {"max_unsettled", OptionKind::integer, "Unsettled events it allows; 0 = no limit.", false, "0", {}}};
  t.configure = [](const StageConfig& c, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
    SourceBound b{.ends = c.options.get_bool("ends"), .limit = "max_unsettled", .to_end = "set ends: true"};
    if (auto n = c.options.get_int("max_unsettled"); n > 0) b.max_unsettled = static_cast<std::size_t>(n);
    return std::make_unique<DeclaredSource>(b);
  };
  return t;
}

StageType declared_holder() {
  StageType t;
  t.name = "test_declared_holder";
  t.role = Role::transform;
  t.summary = "A transform holding up to max_held acks (held-acks check tests).";
  t.options = {{"max_held", OptionKind::integer, "Acks it may hold.", true, "", {}}};
  t.configure = [](const StageConfig& c, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
    return std::make_unique<DeclaredHolder>(static_cast<std::size_t>(c.options.get_int("max_held")));
  };
  return t;
}

const StageRegistration source_reg{declared_source()};
const StageRegistration holder_reg{declared_holder()};

// What loading `text` gives: whether it loaded, and the errors (with their formatted text).
struct Result {
  bool loads = false;
  std::vector<Diagnostic> errors;
  std::string text;
};

Result load(const std::string& text) {
  Diagnostics diags("p.yaml");
  bool loads = load_pipeline_text(text, "p.yaml", diags) != nullptr;
  return {loads, diags.items(), diags.format()};
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

const Diagnostic* only_error(const Result& r) {
  INFO(r.text);
  CHECK_FALSE(r.loads);
  REQUIRE(r.errors.size() == 1);
  return &r.errors[0];
}

TEST_CASE("reduce over an endless source is refused at the reduce, saying why and what to do") {
  auto l = load(R"(stages:
  numbers: {type: generate}
  double: {type: map, inputs: [numbers], set: {".": ". * 2"}}
  total:
    type: reduce
    inputs: [double]
    aggregates: {n: count}
  out: {type: "null", inputs: [total]}
)");
  const Diagnostic* d = only_error(l);
  CHECK(d->line == 4);  // the reduce's key, through the map
  CHECK(d->column == 3);
  INFO(d->message);
  CHECK(contains(d->message, "stage 'total' (reduce) holds every input's ack until end of input"));
  CHECK(contains(d->message, "source 'numbers' (generate) never ends"));
  CHECK(contains(d->hint, "on source 'numbers', set count"));
  CHECK(contains(d->hint, "window"));

  auto follow = load(R"(stages:
  lines: {type: file, path: /dev/null, follow: true}
  total: {type: reduce, inputs: [lines], aggregates: {n: count}}
  out: {type: "null", inputs: [total]}
)");
  d = only_error(follow);
  CHECK(d->line == 3);
  CHECK(contains(d->message, "source 'lines' (file) never ends"));
  CHECK(contains(d->hint, "drop follow: true"));
}

TEST_CASE("reduce over bounded inputs still loads: generate with a count, a file, stdin") {
  for (const char* source :
       {"{type: generate, count: 10}", "{type: file, path: /dev/null}", "{type: stdin}"}) {
    auto l = load(std::string("stages:\n  in: ") + source +
                  "\n  total: {type: reduce, inputs: [in], aggregates: {n: count}}\n"
                  "  out: {type: \"null\", inputs: [total]}\n");
    INFO(source << "\n" << l.text);
    CHECK(l.loads);
  }
}

TEST_CASE("a source that limits unsettled events: refused with the numbers, against each source") {
  auto l = load(R"(stages:
  capped: {type: test_declared_source, ends: true, max_unsettled: 500}
  endless: {type: test_declared_source, ends: false}
  free: {type: test_declared_source, ends: true}
  total: {type: reduce, inputs: [capped, endless, free], aggregates: {n: count}}
  out: {type: "null", inputs: [total]}
)");
  INFO(l.text);
  CHECK_FALSE(l.loads);
  REQUIRE(l.errors.size() == 2);  // one per stalling source; `free` is fine
  const auto& capped = l.errors[0];
  CHECK(capped.line == 5);
  CHECK(contains(capped.message,
                 "source 'capped' (test_declared_source) allows at most 500 unsettled events "
                 "(max_unsettled): an input longer than that would stall"));
  CHECK(contains(capped.hint, "without a limit on unsettled events"));
  const auto& endless = l.errors[1];
  CHECK(contains(endless.message, "source 'endless' (test_declared_source) never ends"));
  CHECK(contains(endless.hint, "on source 'endless', set ends: true"));
}

TEST_CASE("a stage holding a bounded number of acks: refused only above what the source allows") {
  auto over = load(R"(stages:
  in: {type: test_declared_source, max_unsettled: 100}
  hold: {type: test_declared_holder, inputs: [in], max_held: 101}
  out: {type: "null", inputs: [hold]}
)");
  const Diagnostic* d = only_error(over);
  CHECK(d->line == 3);
  CHECK(contains(d->message,
                 "stage 'hold' (test_declared_holder) holds up to 101 inputs' acks per instance, "
                 "but source 'in' (test_declared_source) allows at most 100 unsettled events"));

  // Within the limit, and endless: it settles as it goes, so it loads.
  auto within = load(R"(stages:
  in: {type: test_declared_source, max_unsettled: 100}
  hold: {type: test_declared_holder, inputs: [in], max_held: 100}
  out: {type: "null", inputs: [hold]}
)");
  INFO(within.text);
  CHECK(within.loads);

  // Stages that hold nothing (map, filter, flat_map) pass anything.
  auto stateless = load(R"(stages:
  in: {type: test_declared_source, max_unsettled: 1}
  m: {type: map, inputs: [in], set: {a: "1"}}
  f: {type: flat_map, inputs: [m], explode: items}
  out: {type: "null", inputs: [f]}
)");
  INFO(stateless.text);
  CHECK(stateless.loads);
}

}  // namespace
}  // namespace etld
