#include "tests/support/test_stages.hpp"
#include "config/loader.hpp"

#include <boost/asio/steady_timer.hpp>
#include <map>
#include <stdexcept>

#include "stages/engine/registry.hpp"

namespace etld::test {

namespace {
std::mutex registry_mu;
std::map<std::string, std::shared_ptr<Bucket>> buckets;
std::map<std::string, int> throw_counts;
std::map<std::string, std::shared_ptr<Gate>> gates;
}  // namespace

std::shared_ptr<Gate> gate(const std::string& name) {
  std::lock_guard lock(registry_mu);
  auto& g = gates[name];
  if (!g) g = std::make_shared<Gate>();
  return g;
}

std::shared_ptr<Bucket> bucket(const std::string& name) {
  std::lock_guard lock(registry_mu);
  auto& b = buckets[name];
  if (!b) b = std::make_shared<Bucket>();
  return b;
}

void reset_bucket(const std::string& name) {
  std::lock_guard lock(registry_mu);
  buckets[name] = std::make_shared<Bucket>();
}

int throws_seen(const std::string& stage) {
  std::lock_guard lock(registry_mu);
  return throw_counts[stage];
}

std::shared_ptr<const PipelineConfig> config_from(const std::string& yaml) {
  Diagnostics diags("test.yaml");
  auto config = load_pipeline_text(yaml, "test.yaml", diags);
  if (!config) throw std::runtime_error("invalid test pipeline:\n" + diags.format());
  return config;
}

namespace {

class CollectSink : public Sink {
 public:
  CollectSink(std::shared_ptr<Bucket> b, std::chrono::milliseconds delay, AckStatus status)
      : bucket_(std::move(b)), delay_(delay), status_(status) {}
  void start(SinkContext& ctx) override {
    ctx_ = &ctx;
    timer_ = std::make_unique<boost::asio::steady_timer>(ctx.executor());
  }
  void consume(Batch&& batch) override {
    {
      std::lock_guard lock(bucket_->mu);
      for (auto& e : batch) bucket_->events.push_back({e.record().to_json(), e.key, ctx_->instance()});
      bucket_->held += batch.size();
      bucket_->max_held = std::max(bucket_->max_held, bucket_->held);
      ++bucket_->batches;
      bucket_->batch_sizes.push_back(batch.size());
    }
    pending_.push_back(std::move(batch));
    if (delay_.count() == 0) {
      complete_front();
    } else if (pending_.size() == 1) {
      arm();
    }
  }
  void drain() override {
    draining_ = true;
    if (pending_.empty()) ctx_->drained();
  }

 private:
  void arm() {
    timer_->expires_after(delay_);
    timer_->async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      complete_front();
      if (!pending_.empty()) arm();
    });
  }
  void complete_front() {
    auto batch = std::move(pending_.front());
    pending_.erase(pending_.begin());
    {
      std::lock_guard lock(bucket_->mu);
      bucket_->held -= batch.size();
    }
    settle_all(batch, status_);
    ctx_->done(batch.size());
    if (draining_ && pending_.empty()) ctx_->drained();
  }

  std::shared_ptr<Bucket> bucket_;
  std::chrono::milliseconds delay_;
  AckStatus status_;
  SinkContext* ctx_ = nullptr;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::vector<Batch> pending_;
  bool draining_ = false;
};

class ThrowingTransform : public Transform {
 public:
  ThrowingTransform(std::string stage, std::int64_t at, int times, bool fatal)
      : stage_(std::move(stage)), at_(at), times_(times), fatal_(fatal) {}
  void process(Batch& in, Batch& out) override {
    for (auto& e : in) {
      auto& r = e.record();
      if (r.kind() == Value::Kind::integer && r.as_int() >= at_) {
        std::lock_guard lock(registry_mu);
        if (throw_counts[stage_] < times_) {
          ++throw_counts[stage_];
          if (fatal_) throw FatalStageError("test_throw: fatal boom at " + std::to_string(at_));
          throw std::runtime_error("test_throw: boom at " + std::to_string(at_));
        }
      }
    }
    for (auto& e : in) out.push_back(std::move(e));
  }

 private:
  std::string stage_;
  std::int64_t at_;
  int times_;
  bool fatal_;
};

class BlockingTransform : public Transform {
 public:
  BlockingTransform(std::shared_ptr<Gate> gate, std::int64_t at) : gate_(std::move(gate)), at_(at) {}
  void process(Batch& in, Batch& out) override {
    for (auto& e : in) {
      auto& r = e.record();
      if (r.kind() == Value::Kind::integer && r.as_int() >= at_) {
        std::unique_lock lock(gate_->mu);
        gate_->reached = true;
        gate_->cv.wait(lock, [&] { return gate_->opened; });  // blocks the strand on purpose
        break;
      }
    }
    for (auto& e : in) out.push_back(std::move(e));
  }

 private:
  std::shared_ptr<Gate> gate_;
  std::int64_t at_;
};

struct BlockFactory : StageFactory {
  std::string gate;
  std::int64_t at;
  std::unique_ptr<Transform> make_transform(int) override {
    return std::make_unique<BlockingTransform>(test::gate(gate), at);
  }
};

struct CollectFactory : StageFactory {
  std::string name;
  std::chrono::milliseconds delay;
  AckStatus status;
  std::unique_ptr<Sink> make_sink(int) override {
    return std::make_unique<CollectSink>(bucket(name), delay, status);
  }
};

struct ThrowFactory : StageFactory {
  std::string stage;
  std::int64_t at;
  int times;
  bool fatal;
  std::unique_ptr<Transform> make_transform(int) override {
    return std::make_unique<ThrowingTransform>(stage, at, times, fatal);
  }
};

const StageRegistration collect_reg{StageType{
    .name = "test_collect",
    .role = Role::sink,
    .summary = "test sink recording into a bucket",
    .options =
        {{.name = "bucket", .kind = OptionKind::string, .doc = "bucket name", .required = true},
         {.name = "delay", .kind = OptionKind::duration, .doc = "per-batch delay", .default_text = "0"},
         {.name = "status",
          .kind = OptionKind::choice,
          .doc = "settle status",
          .default_text = "done",
          .choices = {"done", "dead_lettered", "failed"}}},
    .configure = [](const StageConfig& sc, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
      auto f = std::make_unique<CollectFactory>();
      f->name = sc.options.get_string("bucket");
      f->delay = sc.options.get_duration("delay");
      auto s = sc.options.get_string("status");
      f->status = s == "failed"          ? AckStatus::failed
                  : s == "dead_lettered" ? AckStatus::dead_lettered
                                         : AckStatus::done;
      return f;
    }}};

const StageRegistration throw_reg{
    StageType{.name = "test_throw",
              .role = Role::transform,
              .summary = "test transform that throws",
              .options = {{.name = "at",
                           .kind = OptionKind::integer,
                           .doc = "throw at records >= this value",
                           .required = true},
                          {.name = "times",
                           .kind = OptionKind::integer,
                           .doc = "how many times to throw",
                           .default_text = "1"},
                          {.name = "fatal",
                           .kind = OptionKind::boolean,
                           .doc = "throw FatalStageError",
                           .default_text = "false"}},
              .configure = [](const StageConfig& sc, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
                auto f = std::make_unique<ThrowFactory>();
                f->stage = sc.name;
                f->at = sc.options.get_int("at");
                f->times = static_cast<int>(sc.options.get_int("times"));
                f->fatal = sc.options.get_bool("fatal");
                return f;
              }}};

const StageRegistration block_reg{
    StageType{.name = "test_block",
              .role = Role::transform,
              .summary = "test transform that blocks its strand until a gate opens",
              .options = {{.name = "gate", .kind = OptionKind::string, .doc = "gate name", .required = true},
                          {.name = "at",
                           .kind = OptionKind::integer,
                           .doc = "block on records >= this value",
                           .required = true}},
              .configure = [](const StageConfig& sc, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
                auto f = std::make_unique<BlockFactory>();
                f->gate = sc.options.get_string("gate");
                f->at = sc.options.get_int("at");
                return f;
              }}};

}  // namespace
}  // namespace etld::test
