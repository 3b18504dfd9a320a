// engine_bench: the engine scenarios of bench/run, in one process, against a single-threaded
// fused loop that does the same work with the same building blocks (Event, Expr, Value) but no
// stages, strands or credits. Each invocation runs ONE variant once and prints one JSON line;
// bench/run alternates the variants and repeats them, so that every ratio is measured in one run.
//
//   engine_bench --variant pipeline|fused [--events N] [--threads T]
//       generate (JSON template) -> map -> filter -> reduce (partition_by, 4 instances) -> null
//   engine_bench --variant hops --hops K [--events N] [--threads T] [--batch B]
//       generate (bare numbers) -> K pass-through transforms -> null: the per-hop cost
//   engine_bench --variant spin-pipeline|spin-fused --work-ns W [--events N] [--threads T]
//       generate -> spin (W ns of CPU per event, one instance per thread) -> null
//   engine_bench --variant calibrate --work-ns W: prints the spin iterations that take W ns here;
//       pass them to the spin variants with --iterations so that they all do the same work
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/engine/dispatcher.hpp"
#include "stages/engine/event.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/registry.hpp"
#include "stages/expr/expr.hpp"

namespace etld::bench {
namespace {

using Clock = std::chrono::steady_clock;

// CPU seconds of the whole process (every thread): on a shared machine the per-hop overhead is
// measured in CPU time, which other processes' load does not stretch the way it stretches wall time.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ---- the work of the spin stage: a fixed number of dependent multiply-adds -------------------

std::uint64_t spin(std::uint64_t x, std::int64_t iterations) {
  for (std::int64_t i = 0; i < iterations; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  return x;
}

// Iterations of spin() that take about `ns` nanoseconds on this machine, measured now.
std::int64_t calibrate_spin(std::int64_t ns) {
  const std::int64_t probe = 2'000'000;
  volatile std::uint64_t sink = 0;
  auto best = std::chrono::nanoseconds::max();
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    sink = sink + spin(static_cast<std::uint64_t>(i), probe);
    best = std::min(best, std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0));
  }
  return std::max<std::int64_t>(1, probe * ns / std::max<std::int64_t>(1, best.count()));
}

// ---- bench-only stages, registered into the same registry the YAML loader uses -----------------

class Pass : public Transform {
 public:
  void process(Batch& in, Batch& out) override {
    if (out.empty()) {
      out.swap(in);
      return;
    }
    for (auto& e : in) out.push_back(std::move(e));
    in.clear();
  }
};

class Spin : public Transform {
 public:
  explicit Spin(std::int64_t iterations) : iterations_(iterations) {}
  void process(Batch& in, Batch& out) override {
    for (auto& e : in) {
      sink_ ^= spin(static_cast<std::uint64_t>(e.offset), iterations_);
      out.push_back(std::move(e));
    }
    in.clear();
  }
  ~Spin() override { std::fprintf(stderr, "%s", sink_ == 42 ? " " : ""); }  // keeps the work alive

 private:
  std::int64_t iterations_;
  std::uint64_t sink_ = 0;
};

template <typename T, typename... Args>
class SimpleFactory : public StageFactory {
 public:
  explicit SimpleFactory(Args... args) : args_(args...) {}
  std::unique_ptr<Transform> make_transform(int) override {
    return std::apply([](auto... a) { return std::make_unique<T>(a...); }, args_);
  }

 private:
  std::tuple<Args...> args_;
};

const StageRegistration pass_reg{StageType{
    "bench_pass",
    Role::transform,
    "engine_bench only: moves its input batch to its output untouched",
    {},
    [](const StageConfig&, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
      return std::make_unique<SimpleFactory<Pass>>();
    },
    nullptr,
}};

const StageRegistration spin_reg{StageType{
    "bench_spin",
    Role::transform,
    "engine_bench only: burns a fixed amount of CPU per event",
    {{"iterations", OptionKind::integer, "Multiply-adds per event.", true, "", {}}},
    [](const StageConfig& sc, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
      return std::make_unique<SimpleFactory<Spin, std::int64_t>>(sc.options.get_int("iterations"));
    },
    nullptr,
}};

// ---- the pipelines -----------------------------------------------------------------------------

constexpr const char* kTemplate = R"({"id":{{seq}},"k":{{seq % 64}},"v":{{seq % 1000}}})";
constexpr const char* kMapSet = "v * 2";
constexpr const char* kFilterWhere = "w % 3 != 0";
constexpr int kReduceInstances = 4;

struct Options {
  std::string variant;
  std::int64_t events = 1'000'000;
  int threads = 1;
  int hops = 1;
  int batch = 256;
  std::int64_t work_ns = 1000;
  std::int64_t iterations = 0;  // of spin(); 0 = calibrate to work_ns now
};

double run_pipeline(const std::string& yaml) {
  Diagnostics diags("engine_bench.yaml");
  auto config = load_pipeline_text(yaml, "engine_bench.yaml", diags);
  if (!config) throw std::runtime_error("engine_bench: invalid pipeline:\n" + diags.format() + "\n" + yaml);
  std::shared_ptr<const PipelineConfig> shared = std::move(config);
  auto t0 = Clock::now();
  {
    Pipeline pipeline(shared);
    pipeline.start();
    if (auto error = pipeline.wait()) throw std::runtime_error("engine_bench: pipeline failed: " + *error);
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string header(const Options& o) {
  return "pipeline: engine_bench\nthreads: " + std::to_string(o.threads) + "\nlog_level: warn\nstages:\n";
}

std::string flow_yaml(const Options& o) {
  return header(o) + "  gen: {type: generate, count: " + std::to_string(o.events) +
         ", batch: " + std::to_string(o.batch) + ", template: '" + kTemplate + "'}\n" +
         "  map: {type: map, inputs: [gen], set: {w: \"" + kMapSet + "\"}}\n" +
         "  keep: {type: filter, inputs: [map], where: \"" + kFilterWhere + "\"}\n" +
         "  sum: {type: reduce, inputs: [keep], concurrency: " + std::to_string(kReduceInstances) +
         ", partition_by: k, group_by: [k], aggregates: {n: count, s: \"sum(w)\"}}\n" +
         "  out: {type: 'null', inputs: [sum]}\n";
}

std::string hops_yaml(const Options& o) {
  std::string y = header(o) + "  gen: {type: generate, count: " + std::to_string(o.events) +
                  ", batch: " + std::to_string(o.batch) + "}\n";
  std::string prev = "gen";
  for (int i = 0; i < o.hops; ++i) {
    std::string name = "pass" + std::to_string(i);
    y += "  " + name + ": {type: bench_pass, inputs: [" + prev +
         "], max_demand: " + std::to_string(4 * o.batch) + "}\n";
    prev = name;
  }
  return y + "  out: {type: 'null', inputs: [" + prev + "], max_demand: " + std::to_string(4 * o.batch) +
         "}\n";
}

std::string spin_yaml(const Options& o, std::int64_t iterations) {
  return header(o) + "  gen: {type: generate, count: " + std::to_string(o.events) +
         ", batch: " + std::to_string(o.batch) + "}\n" +
         "  work: {type: bench_spin, inputs: [gen], concurrency: " + std::to_string(o.threads) +
         ", iterations: " + std::to_string(iterations) + "}\n" + "  out: {type: 'null', inputs: [work]}\n";
}

// The flow pipeline's work in one loop: build the same JSON, parse it, evaluate the same
// expressions, hash the partition key the way the partition dispatcher does, aggregate per key.
double run_fused_flow(const Options& o) {
  Expr set_w = Expr::compile(kMapSet);
  Expr where = Expr::compile(kFilterWhere);
  Expr key = Expr::compile("k");
  struct Agg {
    std::int64_t n = 0, s = 0;
  };
  std::unordered_map<std::int64_t, Agg> groups[kReduceInstances];
  auto t0 = Clock::now();
  char buf[128];
  for (std::int64_t seq = 0; seq < o.events; ++seq) {
    Event e;
    int len = std::snprintf(buf, sizeof buf, R"({"id":%lld,"k":%lld,"v":%lld})", static_cast<long long>(seq),
                            static_cast<long long>(seq % 64), static_cast<long long>(seq % 1000));
    e.value.assign(buf, static_cast<std::size_t>(len));
    Value w = set_w.eval(e);
    e.record().set_path("w", std::move(w));
    if (!where.eval_bool(e)) continue;
    Value k = key.eval(e);
    auto h = hash_bytes(k.kind() == Value::Kind::string ? k.as_string() : k.to_json());
    Agg& agg = groups[h % kReduceInstances][e.record().find("k")->as_int()];
    agg.n += 1;
    agg.s += e.record().find("w")->as_int();
  }
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::int64_t total = 0;
  for (auto& g : groups)
    for (auto& [k, a] : g) total += a.n;
  if (total == 0) throw std::runtime_error("fused loop kept nothing");
  return seconds;
}

double run_fused_spin(const Options& o, std::int64_t iterations) {
  auto t0 = Clock::now();
  std::uint64_t sink = 0;
  Batch batch;
  batch.reserve(static_cast<std::size_t>(o.batch));
  for (std::int64_t seq = 0; seq < o.events;) {
    for (int i = 0; i < o.batch && seq < o.events; ++i, ++seq) {
      Event e;
      e.offset = seq;
      e.set_record(Value(seq));
      batch.push_back(std::move(e));
    }
    for (auto& e : batch) sink ^= spin(static_cast<std::uint64_t>(e.offset), iterations);
    batch.clear();
  }
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (sink == 42) std::fprintf(stderr, " ");
  return seconds;
}

std::int64_t arg_int(int& i, int argc, char** argv) {
  if (i + 1 >= argc) throw std::runtime_error(std::string("missing value for ") + argv[i]);
  return std::stoll(argv[++i]);
}

int main_impl(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--variant" && i + 1 < argc)
      o.variant = argv[++i];
    else if (a == "--events")
      o.events = arg_int(i, argc, argv);
    else if (a == "--threads")
      o.threads = static_cast<int>(arg_int(i, argc, argv));
    else if (a == "--hops")
      o.hops = static_cast<int>(arg_int(i, argc, argv));
    else if (a == "--batch")
      o.batch = static_cast<int>(arg_int(i, argc, argv));
    else if (a == "--work-ns")
      o.work_ns = arg_int(i, argc, argv);
    else if (a == "--iterations")
      o.iterations = arg_int(i, argc, argv);
    else
      throw std::runtime_error("unknown argument " + std::string(a) +
                               " (see the comment at the top of " __FILE__ ")");
  }
  double seconds = 0;
  // Variants compared with each other must burn the same work: bench/run calibrates once
  // (--variant calibrate) and passes --iterations to all of them.
  std::int64_t iterations = o.iterations > 0 ? o.iterations : calibrate_spin(o.work_ns);
  const double cpu0 = process_cpu_seconds();
  if (o.variant == "calibrate")
    seconds = 1;
  else if (o.variant == "pipeline")
    seconds = run_pipeline(flow_yaml(o));
  else if (o.variant == "fused")
    seconds = run_fused_flow(o);
  else if (o.variant == "hops")
    seconds = run_pipeline(hops_yaml(o));
  else if (o.variant == "spin-pipeline")
    seconds = run_pipeline(spin_yaml(o, iterations));
  else if (o.variant == "spin-fused")
    seconds = run_fused_spin(o, iterations);
  else
    throw std::runtime_error(
        "--variant must be pipeline, fused, hops, spin-pipeline, spin-fused or calibrate");
  std::printf(
      "{\"variant\":\"%s\",\"events\":%lld,\"threads\":%d,\"hops\":%d,\"batch\":%d,\"spin_iterations\":%lld,"
      "\"seconds\":%.6f,\"cpu_seconds\":%.6f,\"events_per_s\":%.1f}\n",
      o.variant.c_str(), static_cast<long long>(o.events), o.threads, o.hops, o.batch,
      static_cast<long long>(iterations), seconds, process_cpu_seconds() - cpu0,
      static_cast<double>(o.events) / seconds);
  return 0;
}

}  // namespace
}  // namespace etld::bench

int main(int argc, char** argv) {
  try {
    return etld::bench::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
