// flat_map: turns one event into one event per element of the array its `explode` expression
// yields; each output is a copy of the record with field `as` set to its element. The input's
// ack is split among the outputs, so the input settles once every output has. An empty array (or
// null) settles the input done; a value that is not an array dead-letters it.
// Threading: one instance per strand; the compiled configuration is shared read-only.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/pipeline.hpp"
#include "stages/builtin/reject.hpp"
#include "stages/expr.hpp"
#include "stages/registry.hpp"

namespace etld {
namespace {

struct FlatMapSpec {
  Expr explode;
  std::string as;
};

class FlatMap : public Transform {
 public:
  explicit FlatMap(std::shared_ptr<const FlatMapSpec> spec) : spec_(std::move(spec)) {}

  void start(StageContext& ctx) override { rejecter_.bind(ctx); }

  void process(Batch& in, Batch& out) override {
    AckBatch empty;
    for (auto& event : in) {
      Value items;
      try {
        items = spec_->explode.eval(event);
      } catch (const ExprError& e) {
        rejecter_.reject(out, event, std::string("flat_map: ") + e.what());
        continue;
      } catch (const JsonError& e) {
        rejecter_.reject(out, event, std::string("flat_map: ") + e.what());
        continue;
      }
      if (items.is_null()) {
        empty.add(event.ack);
        continue;
      }
      if (items.kind() != Value::Kind::array) {
        rejecter_.reject(out, event,
                         std::string("flat_map: explode '") + spec_->explode.text() + "' gave " +
                             kind_name(items.kind()) + ", not an array");
        continue;
      }
      Array& elements = items.as_array();
      if (elements.empty()) {
        empty.add(event.ack);
        continue;
      }
      Value base;  // the record is copied once per output, not the event's
      try {
        base = std::move(event.record());  // explode may have read only metadata: parse now
      } catch (const JsonError& e) {
        rejecter_.reject(out, event, std::string("flat_map: ") + e.what());
        continue;
      }
      event.set_record(Value());
      std::size_t n = elements.size();
      std::vector<Ack> acks = event.ack.split(n);
      for (std::size_t i = 0; i < n; ++i) {
        Event child = event.clone();
        child.ack = std::move(acks[i]);
        Value record;
        if (i + 1 < n)
          record = base;
        else
          record = std::move(base);
        record.set_path(spec_->as, std::move(elements[i]));
        child.set_record(std::move(record));
        out.push_back(std::move(child));
      }
    }
    empty.settle(AckStatus::done);
    in.clear();
  }

  void finish(Batch&) override { rejecter_.flush(); }

 private:
  std::shared_ptr<const FlatMapSpec> spec_;
  Rejecter rejecter_;
};

class FlatMapFactory : public StageFactory {
 public:
  explicit FlatMapFactory(std::shared_ptr<const FlatMapSpec> spec) : spec_(std::move(spec)) {}
  std::unique_ptr<Transform> make_transform(int) override { return std::make_unique<FlatMap>(spec_); }

 private:
  std::shared_ptr<const FlatMapSpec> spec_;
};

std::unique_ptr<StageFactory> configure(const StageConfig& stage, const PipelineConfig&) {
  const Options& options = stage.options;
  if (!options.has("explode"))
    throw ConfigError(options.mark("explode"), "flat_map needs 'explode': an expression yielding an array");
  auto explode = compile_expr_option(options.get_string("explode"), "explode", options.mark("explode"));
  std::string as = options.get_string("as", "item");
  if (as.empty()) throw ConfigError(options.mark("as"), "as: must name a field");
  auto spec = std::make_shared<const FlatMapSpec>(FlatMapSpec{std::move(explode), std::move(as)});
  return std::make_unique<FlatMapFactory>(std::move(spec));
}

const StageRegistration reg{StageType{
    "flat_map",
    Role::transform,
    "Emits one event per element of an array in each record",
    {
        {"explode",
         OptionKind::string,
         "Expression yielding an array; one output event per element (null or [] -> none).",
         true,
         "",
         {}},
        {"as", OptionKind::string, "Field path that receives the element in each output.", false, "item", {}},
    },
    configure,
    {},
}};

}  // namespace
}  // namespace etld
