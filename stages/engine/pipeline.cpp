#include "stages/engine/pipeline.hpp"

#include "stages/engine/pipeline_impl.hpp"

namespace etld {

Pipeline::Pipeline(std::shared_ptr<const PipelineConfig> config, std::shared_ptr<metrics::Registry> metrics)
    : impl_(std::make_unique<Impl>(std::move(config),
                                   metrics ? std::move(metrics) : std::make_shared<metrics::Registry>())) {}
Pipeline::~Pipeline() = default;
void Pipeline::start() { impl_->start(); }
void Pipeline::stop() { impl_->stop(); }
std::optional<std::string> Pipeline::wait() {
  std::unique_lock lock(impl_->mu_);
  impl_->cv_.wait(lock, [&] { return impl_->finished_; });
  return impl_->error_;
}
bool Pipeline::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu_);
  return impl_->cv_.wait_for(lock, timeout, [&] { return impl_->finished_; });
}
bool Pipeline::finished() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->finished_;
}
std::optional<std::string> Pipeline::error() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->error_;
}
std::vector<StageStats> Pipeline::stats() const {
  std::vector<StageStats> out;
  for (auto& g : impl_->groups_)
    for (auto& r : g->instances) out.push_back(r->stats());
  return out;
}
std::shared_ptr<const PipelineConfig> Pipeline::config() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->config_;
}
metrics::Registry& Pipeline::metrics() const { return *impl_->metrics_; }
std::vector<std::string> Pipeline::unready_components() const { return impl_->readiness_.unready(); }
Reconfiguration Pipeline::reconfigure(std::shared_ptr<const PipelineConfig> next,
                                      std::chrono::milliseconds timeout) {
  return impl_->reconfigure(std::move(next), timeout);
}
bool Pipeline::running() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->started_ && !impl_->stopping_ && !impl_->finished_;
}
std::shared_ptr<Tap> Pipeline::tap(const std::string& stage, const TapLimits& limits) {
  return impl_->taps_->open(stage, limits);
}
boost::asio::any_io_executor Pipeline::executor() { return impl_->pool_.get_executor(); }

}  // namespace etld
