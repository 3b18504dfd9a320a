// map: reshapes each record. `set` computes fields from expressions (in order, each seeing the
// results of the previous ones), then `rename` moves fields, then `remove` drops fields. An event
// whose expressions fail on its data (or whose payload is not JSON) is dead-lettered.
// Threading: one instance per strand; the compiled configuration is shared read-only.

#include <memory>
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

struct MapSpec {
  std::vector<std::pair<std::string, Expr>> set;
  std::vector<std::pair<std::string, std::string>> rename;
  std::vector<std::string> remove;
};

class Map : public Transform {
 public:
  explicit Map(std::shared_ptr<const MapSpec> spec) : spec_(std::move(spec)) {}

  void start(StageContext& ctx) override { rejecter_.bind(ctx); }

  void process(Batch& in, Batch& out) override {
    // Each event is changed where it is, and the batch passes on whole when `out` is still empty
    // (no rejected events ahead of it): no event is moved.
    for (auto& event : in) {
      // What was being done when it failed, for the reason.
      const std::string* setting = nullptr;
      const std::pair<std::string, std::string>* renaming = nullptr;
      try {
        for (const auto& [path, expr] : spec_->set) {
          setting = &path;
          Value v = expr.eval(event);
          assign_path(event.record(), path, std::move(v));
        }
        setting = nullptr;
        if (!spec_->rename.empty() || !spec_->remove.empty()) {
          Value& record = event.record();
          for (const auto& r : spec_->rename) {
            renaming = &r;
            if (auto v = take_path(record, r.first)) assign_path(record, r.second, std::move(*v));
          }
          renaming = nullptr;
          for (const auto& path : spec_->remove) take_path(record, path);
        }
        event.schema.reset();  // it described the record before this map changed it
      } catch (const ExprError& e) {
        reject(event, setting, renaming, e.what());
      } catch (const PathError& e) {
        reject(event, setting, renaming, e.what());
      } catch (const JsonError& e) {  // the payload, whatever step first read it
        reject(event, nullptr, nullptr, e.what());
      }
    }
    if (out.empty()) {
      out.swap(in);
    } else {
      out.reserve(out.size() + in.size());
      for (auto& event : in) out.push_back(std::move(event));
    }
    in.clear();
  }

  void finish(Batch&) override { rejecter_.flush(); }

 private:
  void reject(Event& event, const std::string* setting, const std::pair<std::string, std::string>* renaming,
              const char* what) {
    std::string reason = "map: ";
    if (setting)
      reason += "set '" + *setting + "': ";
    else if (renaming)
      reason += "rename '" + renaming->first + "' -> '" + renaming->second + "': ";
    rejecter_.mark(event, reason + what);
  }

  std::shared_ptr<const MapSpec> spec_;
  Rejecter rejecter_;
};

class MapFactory : public StageFactory {
 public:
  explicit MapFactory(std::shared_ptr<const MapSpec> spec) : spec_(std::move(spec)) {}
  std::unique_ptr<Transform> make_transform(int) override { return std::make_unique<Map>(spec_); }

 private:
  std::shared_ptr<const MapSpec> spec_;
};

std::unique_ptr<StageFactory> configure(const StageConfig& stage, const PipelineConfig&) {
  const Options& options = stage.options;
  auto spec = std::make_shared<MapSpec>();
  YAML::Node set_node = options.node("set");
  std::vector<ConfigError> errors;  // every bad entry is reported, not only the first
  for (auto& [path, text] : options.get_string_map("set")) {
    auto mark = option_entry_mark(set_node, path, options.mark("set"));
    try {
      if (path.empty()) throw ConfigError(mark, "set: empty field path");
      spec->set.emplace_back(path, compile_expr_option(text, "set '" + path + "'", mark));
    } catch (const ConfigError& e) {
      errors.push_back(e);
    }
  }
  ConfigErrors::throw_if_any(std::move(errors));
  spec->rename = options.get_string_map("rename");
  for (const auto& [from, to] : spec->rename)
    if (from.empty() || to.empty() || from == "." || to == ".")
      throw ConfigError(
          options.mark("rename"),
          "rename: '" + from + "' -> '" + to + "': both sides must name a field ('.' is the whole record)");
  spec->remove = options.get_string_list("remove");
  for (const auto& path : spec->remove)
    if (path.empty() || path == ".")
      throw ConfigError(options.mark("remove"), "remove: '" + path + "' does not name a field");
  if (spec->set.empty() && spec->rename.empty() && spec->remove.empty())
    throw ConfigError(stage.mark, "map needs at least one of 'set', 'rename' or 'remove'");
  return std::make_unique<MapFactory>(std::move(spec));
}

const StageRegistration reg{StageType{
    "map",
    Role::transform,
    "Computes, renames and removes record fields with expressions",
    {
        {"set",
         OptionKind::string_map,
         "Field path -> expression, evaluated in order; later ones see the results of earlier ones.",
         false,
         "",
         {}},
        {"rename",
         OptionKind::string_map,
         "Old field path -> new field path, applied after set.",
         false,
         "",
         {}},
        {"remove", OptionKind::string_list, "Field paths to drop, applied last.", false, "", {}},
    },
    configure,
    /*check_live=*/{},
    /*takes_rejected=*/false,
    /*default_max_demand=*/{},
    StageTraits{.one_to_one_in_order = true},
}};

}  // namespace
}  // namespace etld
