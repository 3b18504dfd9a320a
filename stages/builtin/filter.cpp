// filter: keeps the events whose `where` expression is truthy, unchanged (their payload's bytes,
// not a re-serialized record). Dropped events are settled done; events the expression fails on
// (or whose payload is not JSON) are dead-lettered.
// Threading: one instance per strand; the compiled expression is shared read-only.

#include <memory>
#include <string>
#include <utility>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/builtin/reject.hpp"
#include "stages/engine/registry.hpp"
#include "stages/expr/expr.hpp"

namespace etld {
namespace {

class Filter : public Transform {
 public:
  explicit Filter(std::shared_ptr<const Expr> where) : where_(std::move(where)) {}

  void start(StageContext& ctx) override { rejecter_.bind(ctx); }

  void process(Batch& in, Batch& out) override {
    AckBatch dropped;
    for (auto& event : in) {
      bool keep;
      const bool was_parsed = event.parsed();
      try {
        keep = where_->eval_bool(event);
        // A filter changes nothing: what it passes on is the payload as it came, byte for byte,
        // not the record written out again (and the sink can encode from the payload directly).
        if (!was_parsed && event.has_value) event.forget_record();
      } catch (const ExprError& e) {
        rejecter_.reject(out, event, std::string("filter: ") + e.what());
        continue;
      } catch (const JsonError& e) {
        rejecter_.reject(out, event, std::string("filter: ") + e.what());
        continue;
      }
      if (keep)
        out.push_back(std::move(event));
      else
        dropped.add(event.ack);
    }
    dropped.settle(AckStatus::done);
    in.clear();
  }

  void finish(Batch&) override { rejecter_.flush(); }

 private:
  std::shared_ptr<const Expr> where_;
  Rejecter rejecter_;
};

class FilterFactory : public StageFactory {
 public:
  explicit FilterFactory(std::shared_ptr<const Expr> where) : where_(std::move(where)) {}
  std::unique_ptr<Transform> make_transform(int) override { return std::make_unique<Filter>(where_); }

 private:
  std::shared_ptr<const Expr> where_;
};

std::unique_ptr<StageFactory> configure(const StageConfig& stage, const PipelineConfig&) {
  const Options& options = stage.options;
  if (!options.has("where")) throw ConfigError(options.mark("where"), "filter needs 'where': an expression");
  auto where = compile_expr_option(options.get_string("where"), "where", options.mark("where"));
  return std::make_unique<FilterFactory>(std::make_shared<const Expr>(std::move(where)));
}

const StageRegistration reg{StageType{
    "filter",
    Role::transform,
    "Keeps the events for which an expression is true",
    {
        {"where",
         OptionKind::string,
         "Expression; events for which it is truthy pass, the others are dropped (settled done).",
         true,
         "",
         {}},
    },
    configure,
    /*check_live=*/{},
    /*takes_rejected=*/false,
    /*default_max_demand=*/{},
    StageTraits{.one_to_one_in_order = true},
}};

}  // namespace
}  // namespace etld
