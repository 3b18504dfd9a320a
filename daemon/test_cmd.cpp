#include "daemon/test_cmd.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/test_spec.hpp"
#include "daemon/test_diff.hpp"
#include "daemon/test_run.hpp"
#include "stages/engine/registry.hpp"

namespace etld {

const char* const kTestUsage = R"(Usage: etld test FILE...

Runs the test cases of each FILE against the real transforms of a pipeline, without Kafka or
PostgreSQL. FILE is a test file (pipeline: PATH, optional env: {VAR: value} set while the
pipeline loads, and tests:) or a pipeline file with a tests: section of its own.

Each case names a transform (stage: NAME) or a path of them (stages: [a, b]), its inputs
(value: a record, raw: the payload's bytes, or tombstone: true; optional key, topic, partition,
offset, timestamp, headers) and what must come out: outputs (value: the exact record, fields:
{path: value}, check: an expression) and dead_letters (reason or reason_contains, and the same
keys). The inputs go in as one batch; then every stage reaches end of input, as when a pipeline
drains, so reduce and window stages emit what they hold. Sources and sinks are not run.

A failure prints FILE:LINE of the case, its name and the expected (-) and actual (+) events.
Exit status: 0 every case passed, 1 a case failed, 2 a test file or its pipeline is invalid
(errors as file:line:column, like etld validate). docs/testing.md explains the format.
)";

namespace {

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return ss.str();
}

// Sets the test file's `env:` while it lives, and puts back what was there.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::vector<std::pair<std::string, std::string>>& env) {
    for (const auto& [name, value] : env) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second)
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      else
        ::unsetenv(it->first.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// The case's stages in the pipeline: transforms, each an input of the next. Problems in `diags`.
std::vector<const StageConfig*> resolve_path(const TestCase& c, const PipelineConfig& pipeline,
                                             Diagnostics& diags) {
  std::vector<const StageConfig*> path;
  for (std::size_t i = 0; i < c.stages.size(); ++i) {
    const StageConfig* stage = pipeline.find(c.stages[i]);
    if (!stage) {
      std::vector<std::string> names;
      for (const auto& s : pipeline.stages) names.push_back(s.name);
      std::string hint = did_you_mean(c.stages[i], names);
      diags.error(c.stage_marks[i], "test '" + c.name + "': the pipeline has no stage '" + c.stages[i] + "'",
                  hint);
      continue;
    }
    const StageType* type = find_stage_type(stage->type);
    if (type && type->role != Role::transform) {
      diags.error(
          c.stage_marks[i],
          "test '" + c.name + "': stage '" + stage->name + "' is a " + role_name(type->role) + " (" +
              stage->type + "); etld test runs transforms only",
          "name the transforms between the source and the sink; sources and sinks need their systems");
      continue;
    }
    if (!path.empty() &&
        std::find(stage->inputs.begin(), stage->inputs.end(), path.back()->name) == stage->inputs.end())
      diags.error(c.stage_marks[i],
                  "test '" + c.name + "': stage '" + stage->name + "' does not take its input from '" +
                      path.back()->name + "'",
                  "a path lists stages in the order events flow through them");
    path.push_back(stage);
  }
  return path;
}

struct Tally {
  int passed = 0, failed = 0, invalid = 0;
};

void run_file(const std::string& file, Tally& tally) {
  Diagnostics diags(file);
  auto text = read_text(file);
  if (!text) {
    diags.error(YAML::Mark::null_mark(), "cannot read test file '" + file + "'");
    std::cerr << diags.format();
    ++tally.invalid;
    return;
  }
  auto suite = parse_test_suite(*text, file, diags);
  if (!suite) {
    std::cerr << diags.format();
    ++tally.invalid;
    return;
  }
  std::unique_ptr<PipelineConfig> pipeline;
  {
    ScopedEnv env(suite->env);
    Diagnostics pipeline_diags(suite->pipeline_file);
    pipeline = load_pipeline(suite->pipeline_file, pipeline_diags);
    if (!pipeline) {
      if (suite->pipeline_file != file)
        std::cerr << file << ":" << suite->pipeline_mark.line + 1 << ":" << suite->pipeline_mark.column + 1
                  << ": error: the pipeline '" << suite->pipeline_file << "' is invalid:\n";
      std::cerr << pipeline_diags.format();
      ++tally.invalid;
      return;
    }
  }
  std::vector<std::vector<const StageConfig*>> paths;
  for (const auto& c : suite->cases) paths.push_back(resolve_path(c, *pipeline, diags));
  if (!diags.ok()) {
    std::cerr << diags.format();
    ++tally.invalid;
    return;
  }
  for (std::size_t i = 0; i < suite->cases.size(); ++i) {
    const TestCase& c = suite->cases[i];
    CaseRun run = run_case(c, paths[i]);
    std::string report;
    for (const auto& e : run.errors) report += "  error: " + e + "\n";
    if (run.errors.empty()) {
      if (auto d = expectation_diff("outputs", c.outputs, run.outputs, c.ordered, false)) report += *d;
      if (auto d = expectation_diff("dead letters", c.dead_letters, run.dead_letters, c.ordered, true))
        report += *d;
    }
    const std::string where = file + ":" + std::to_string(c.mark.line + 1) + ": " + c.name;
    if (report.empty()) {
      ++tally.passed;
      std::cout << "ok   " << where << "\n";
    } else {
      ++tally.failed;
      std::cout << "FAIL " << where << "\n" << report;
    }
  }
}

}  // namespace

int run_test_files(const std::vector<std::string>& files) {
  Tally tally;
  for (const auto& file : files) run_file(file, tally);
  std::cout << tally.passed << " passed, " << tally.failed << " failed";
  if (tally.invalid > 0)
    std::cout << ", " << tally.invalid << " invalid file" << (tally.invalid > 1 ? "s" : "");
  std::cout << "\n";
  return tally.invalid > 0 ? 2 : tally.failed > 0 ? 1 : 0;
}

}  // namespace etld
