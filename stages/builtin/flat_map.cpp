// flat_map: turns one event into one event per element of the array its `explode` expression
// yields, each the record with field `as` set to its element. The input's ack is split among the
// outputs, so the input settles once every output has. An empty array (or null) settles the input
// done; a value that is not an array dead-letters it.
//
// Memory stays linear in the input whatever the array holds: when `explode` names a field, the
// array is moved out of the record (the outputs do not carry it), and each output is built only
// when downstream asks for it (Transform::held/resume), from the record without the array plus
// one element. An input yields at most `max_outputs` events; the elements beyond are not emitted
// and the input itself goes to the dead-letter destination once, with the reason (one row that
// holds the whole payload, not one per element, which would copy the payload per element again).
// Threading: one instance per strand; the compiled configuration is shared read-only.

#include <algorithm>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/builtin/reject.hpp"
#include "stages/engine/record_path.hpp"
#include "stages/engine/registry.hpp"
#include "stages/expr/expr.hpp"

namespace etld {
namespace {

struct FlatMapSpec {
  Expr explode;
  std::string as;
  std::string field;  // the field `explode` names, when it is just a field path
  std::size_t max_outputs;
};

// A field path written alone ("items", "order.lines"): its array can be moved out of the record.
std::string plain_field(const Expr& e) {
  const auto& text = e.text();
  auto first = text.find_first_not_of(" \t");
  auto last = text.find_last_not_of(" \t");
  if (first == std::string::npos || e.fields().size() != 1) return {};
  auto trimmed = text.substr(first, last - first + 1);
  return trimmed == e.fields()[0] && trimmed != "." ? trimmed : std::string();
}

// An input whose outputs are not all handed on yet.
struct Exploding {
  Event input;  // metadata and raw payload; its record is in `base`
  Value base;   // the record without the exploded array
  Array elements;
  std::size_t emit = 0;  // how many elements become outputs (at most max_outputs)
  std::size_t next = 0;
  std::vector<Ack> acks;  // split when its first output goes out, so only one input holds them
};

// An output's metadata is its input's; its raw payload is its own record, so that a stage that
// rejects it dead-letters what it was given, not a copy of the whole input per element.
Event output_of(const Event& input, Value record) {
  Event e;
  e.key = input.key;
  e.has_key = input.has_key;
  e.headers = input.headers;
  e.timestamp_ms = input.timestamp_ms;
  e.topic = input.topic;
  e.partition = input.partition;
  e.offset = input.offset;
  e.value = record.to_json();
  e.set_record(std::move(record));
  return e;
}

class FlatMap : public Transform {
 public:
  explicit FlatMap(std::shared_ptr<const FlatMapSpec> spec) : spec_(std::move(spec)) {}

  void start(StageContext& ctx) override { rejecter_.bind(ctx); }

  void process(Batch& in, Batch& out) override {
    AckBatch empty;
    for (auto& event : in) {
      std::optional<Value> items;
      Value base;
      try {
        if (spec_->field.empty()) {
          items = spec_->explode.eval(event);
        } else {
          items = take_path(event.record(), spec_->field);
        }
        if (items && items->kind() == Value::Kind::array && !items->as_array().empty())
          base = std::move(event.record());  // explode may have read only metadata: parse now
      } catch (const ExprError& e) {
        rejecter_.reject(out, event, std::string("flat_map: ") + e.what());
        continue;
      } catch (const JsonError& e) {
        rejecter_.reject(out, event, std::string("flat_map: ") + e.what());
        continue;
      }
      if (!items || items->is_null()) {
        empty.add(event.ack);
        continue;
      }
      if (items->kind() != Value::Kind::array) {
        rejecter_.reject(out, event,
                         std::string("flat_map: explode '") + spec_->explode.text() + "' gave " +
                             kind_name(items->kind()) + ", not an array");
        continue;
      }
      if (items->as_array().empty()) {
        empty.add(event.ack);
        continue;
      }
      event.set_record(Value());
      Exploding x{std::move(event), std::move(base), std::move(items->as_array())};
      x.emit = std::min(x.elements.size(), spec_->max_outputs);
      if (x.emit == x.elements.size()) std::string().swap(x.input.value);  // no dead letter needs it
      held_ += x.emit + (x.emit < x.elements.size() ? 1 : 0);
      queue_.push_back(std::move(x));
    }
    empty.settle(AckStatus::done);
    in.clear();
  }

  std::size_t held() const override { return held_; }

  void resume(Batch& out, std::size_t room) override {
    while (room > 0 && !queue_.empty()) {
      auto& x = queue_.front();
      bool overflow = x.emit < x.elements.size();
      if (x.next == 0 && x.acks.empty()) x.acks = x.input.ack.split(x.emit + (overflow ? 1 : 0));
      for (; room > 0 && x.next < x.emit; --room, --held_, ++x.next) {
        bool last = x.next + 1 == x.emit && !overflow;
        Value record = last ? std::move(x.base) : x.base;
        record.set_path(spec_->as, std::move(x.elements[x.next]));
        out.push_back(output_of(x.input, std::move(record)));
        out.back().ack = std::move(x.acks[x.next]);
      }
      if (x.next < x.emit) return;
      if (overflow) {
        if (room == 0) return;
        x.input.ack = std::move(x.acks.back());
        rejecter_.reject(out, x.input,
                         "flat_map: explode '" + spec_->explode.text() + "' gave " +
                             std::to_string(x.elements.size()) + " elements, more than max_outputs (" +
                             std::to_string(spec_->max_outputs) + "): elements " + std::to_string(x.emit) +
                             " to " + std::to_string(x.elements.size() - 1) + " were not emitted");
        --room;
        --held_;
      }
      queue_.pop_front();
    }
  }

  void finish(Batch&) override { rejecter_.flush(); }

 private:
  std::shared_ptr<const FlatMapSpec> spec_;
  Rejecter rejecter_;
  std::deque<Exploding> queue_;
  std::size_t held_ = 0;  // outputs (and overflow dead letters) not handed on yet
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
  std::string as = options.get_string("as");
  if (as.empty()) throw ConfigError(options.mark("as"), "as: must name a field");
  auto max_outputs = options.get_int("max_outputs");
  if (max_outputs < 1)
    throw ConfigError(options.mark("max_outputs"),
                      "max_outputs: must be at least 1, not " + std::to_string(max_outputs));
  auto field = plain_field(explode);
  auto spec = std::make_shared<const FlatMapSpec>(FlatMapSpec{
      std::move(explode), std::move(as), std::move(field), static_cast<std::size_t>(max_outputs)});
  return std::make_unique<FlatMapFactory>(std::move(spec));
}

const StageRegistration reg{StageType{
    "flat_map",
    Role::transform,
    "Emits one event per element of an array in each record",
    {
        {"explode",
         OptionKind::string,
         "Expression yielding an array; one output event per element (null or [] -> none). When it "
         "is a field path, that field is left out of the outputs.",
         true,
         "",
         {}},
        {"as", OptionKind::string, "Field path that receives the element in each output.", false, "item", {}},
        {"max_outputs",
         OptionKind::integer,
         "Most outputs from one input; the elements beyond are not emitted and the input is "
         "dead-lettered with the reason.",
         false,
         "10000",
         {}},
    },
    configure,
    {},
}};

}  // namespace
}  // namespace etld
