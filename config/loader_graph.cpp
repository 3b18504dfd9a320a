// The loader's checks of the graph's wiring: inputs, cycles, and the topological order.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include "config/admin_token.hpp"
#include "config/delivery_check.hpp"
#include "config/held_acks_check.hpp"
#include "config/loader.hpp"
#include "config/loader_parts.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"
#include "config/schema/pipeline.hpp"
#include "config/yaml_errors.hpp"
#include "stages/engine/dispatcher.hpp"
#include "stages/engine/registry.hpp"
#include "stages/expr/expr.hpp"

namespace etld::loader_detail {

// Checks inputs: sources take none, others need one; each names an existing non-sink stage.
void check_inputs(std::vector<StageDraft>& drafts, Reporter& r) {
  std::map<std::string, const StageDraft*> by_name;
  std::vector<std::string> names;
  for (const auto& d : drafts) {
    by_name.emplace(d.config.name, &d);
    names.push_back(d.config.name);
  }
  for (auto& d : drafts) {
    if (d.type == nullptr) continue;
    const StageConfig& c = d.config;
    const int before = r.count;
    const char* role = role_name(d.type->role);
    if (d.type->role == Role::source) {
      if (!c.inputs.empty())
        r.error(c.options.mark("inputs"),
                "source stage '" + c.name + "' (type " + c.type + ") cannot have inputs",
                "remove 'inputs'; sources read from outside the pipeline");
    } else if (c.inputs.empty()) {
      r.error(c.mark,
              std::string(role) + " stage '" + c.name + "' (type " + c.type + ") needs at least one input",
              "add 'inputs: [<stage>]'");
    } else {
      std::set<std::string> seen;
      for (std::size_t i = 0; i < c.inputs.size(); ++i) {
        const std::string& in = c.inputs[i];
        const YAML::Mark mark = d.input_nodes[i].Mark();
        if (!seen.insert(in).second) {
          r.error(mark, "stage '" + c.name + "' lists input '" + in + "' twice", "please delete one");
          continue;
        }
        if (in == c.name) {
          r.error(mark, "stage '" + c.name + "' lists itself as an input",
                  "a stage cannot consume its own events");
          continue;
        }
        auto it = by_name.find(in);
        if (it == by_name.end()) {
          std::vector<std::string> others;
          for (const auto& n : names)
            if (n != c.name) others.push_back(n);
          r.error(mark,
                  "input " + shown(d.input_nodes[i], in) + " of stage '" + c.name +
                      "' is not a stage in this pipeline",
                  did_you_mean(in, others));
          continue;
        }
        const StageDraft& source = *it->second;
        if (source.type != nullptr && source.type->role == Role::sink)
          r.error(mark,
                  "input '" + in + "' of stage '" + c.name + "' is a sink (type " + source.type->name + ")",
                  "sinks produce no events; use a source or transform as input");
      }
    }
    if (r.count != before) d.ok = false;
  }
}

// Finds cycles among valid input edges; reports each once, at its first stage in file order.
// Returns false when there is a cycle.
bool check_cycles(std::vector<StageDraft>& drafts, Reporter& r) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < drafts.size(); ++i) index.emplace(drafts[i].config.name, i);
  // consumers[i]: stages that take stage i as input (data flows i -> consumer).
  std::vector<std::vector<std::size_t>> consumers(drafts.size());
  for (std::size_t i = 0; i < drafts.size(); ++i)
    for (const auto& in : drafts[i].config.inputs) {
      auto it = index.find(in);
      if (it != index.end() && it->second != i) consumers[it->second].push_back(i);
    }
  for (auto& list : consumers) std::sort(list.begin(), list.end());

  // Tarjan's strongly connected components.
  const std::size_t n = drafts.size();
  std::vector<int> idx(n, -1), low(n, 0), comp(n, -1);
  std::vector<bool> on_stack(n, false);
  std::vector<std::size_t> stack;
  int counter = 0, ncomp = 0;
  std::function<void(std::size_t)> strong = [&](std::size_t v) {
    idx[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = true;
    for (auto w : consumers[v]) {
      if (idx[w] < 0) {
        strong(w);
        low[v] = std::min(low[v], low[w]);
      } else if (on_stack[w]) {
        low[v] = std::min(low[v], idx[w]);
      }
    }
    if (low[v] == idx[v]) {
      std::size_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        comp[w] = ncomp;
      } while (w != v);
      ++ncomp;
    }
  };
  for (std::size_t v = 0; v < n; ++v)
    if (idx[v] < 0) strong(v);

  std::vector<std::vector<std::size_t>> members(ncomp);
  for (std::size_t v = 0; v < n; ++v) members[comp[v]].push_back(v);  // ascending file order
  bool acyclic = true;
  for (const auto& m : members) {
    if (m.size() < 2) continue;
    acyclic = false;
    // Shortest cycle through the first stage, by breadth-first search inside the component.
    const std::size_t start = m.front();
    std::vector<long> parent(n, -2);
    std::vector<std::size_t> queue{start};
    parent[start] = -1;
    std::size_t last = start;
    bool closed = false;
    for (std::size_t q = 0; q < queue.size() && !closed; ++q) {
      std::size_t v = queue[q];
      for (auto w : consumers[v]) {
        if (comp[w] != comp[start]) continue;
        if (w == start) {
          last = v;
          closed = true;
          break;
        }
        if (parent[w] == -2) {
          parent[w] = static_cast<long>(v);
          queue.push_back(w);
        }
      }
    }
    std::vector<std::string> path;
    for (long v = static_cast<long>(last); v >= 0; v = parent[v]) path.push_back(drafts[v].config.name);
    std::reverse(path.begin(), path.end());
    path.push_back(drafts[start].config.name);
    r.error(drafts[start].config.mark, "stages form a cycle: " + join(path, " -> "),
            "a pipeline must be acyclic; remove one of these inputs");
    for (auto v : m) drafts[v].ok = false;
  }
  return acyclic;
}

// Inputs before consumers; otherwise file order.
std::vector<std::size_t> topological_order(const std::vector<StageDraft>& drafts) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < drafts.size(); ++i) index.emplace(drafts[i].config.name, i);
  std::vector<bool> placed(drafts.size(), false);
  std::vector<std::size_t> order;
  while (order.size() < drafts.size()) {
    bool progress = false;
    for (std::size_t i = 0; i < drafts.size(); ++i) {
      if (placed[i]) continue;
      bool ready = true;
      for (const auto& in : drafts[i].config.inputs) {
        auto it = index.find(in);
        if (it != index.end() && it->second != i && !placed[it->second]) ready = false;
      }
      if (ready) {
        placed[i] = true;
        order.push_back(i);
        progress = true;
        break;  // restart from the top: the earliest ready stage in file order goes next
      }
    }
    if (!progress) {  // a cycle (already reported): keep the rest in file order
      for (std::size_t i = 0; i < drafts.size(); ++i)
        if (!placed[i]) order.push_back(i), placed[i] = true;
    }
  }
  return order;
}

}  // namespace etld::loader_detail
