// stdout: a sink that writes each event as one line on standard output (for demos and tests).
// Threading: one instance per strand; it writes with fwrite + fflush once per batch, which is
// acceptable for a demo sink (stdio locks each call, so concurrent instances never mix lines).

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/builtin/line_format.hpp"
#include "stages/engine/registry.hpp"

namespace etld {
namespace {

class StdoutSink : public Sink {
 public:
  explicit StdoutSink(OutFormat format) : format_(format) {}

  void start(SinkContext& ctx) override { ctx_ = &ctx; }

  void consume(Batch&& batch) override {
    if (failed_) return settle_all(batch, AckStatus::failed);
    out_.clear();
    for (auto& e : batch) append_line(e, format_, out_);
    if (std::fwrite(out_.data(), 1, out_.size(), stdout) != out_.size() || std::fflush(stdout) != 0) {
      int err = errno;
      failed_ = true;
      settle_all(batch, AckStatus::failed);
      ctx_->fail(std::make_exception_ptr(std::runtime_error(
          "stage '" + ctx_->stage_name() + "': cannot write to stdout: " + std::strerror(err))));
      return;
    }
    settle_all(batch, AckStatus::done);
    ctx_->done(batch.size());
  }

  void drain() override {
    std::fflush(stdout);
    ctx_->drained();
  }

 private:
  OutFormat format_;
  SinkContext* ctx_ = nullptr;
  std::string out_;
  bool failed_ = false;
};

class StdoutFactory : public StageFactory {
 public:
  explicit StdoutFactory(OutFormat format) : format_(format) {}
  std::unique_ptr<Sink> make_sink(int) override { return std::make_unique<StdoutSink>(format_); }

 private:
  OutFormat format_;
};

std::unique_ptr<StageFactory> configure(const StageConfig& cfg, const PipelineConfig&) {
  return std::make_unique<StdoutFactory>(out_format(cfg.options));
}

const StageRegistration reg{StageType{
    "stdout",
    Role::sink,
    "Writes each event as one line on standard output",
    {
        out_format_option(),
    },
    configure,
    nullptr,  // check_live: nothing external to check
}};

}  // namespace
}  // namespace etld
