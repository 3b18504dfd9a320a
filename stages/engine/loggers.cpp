#include "stages/engine/loggers.hpp"

#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

namespace etld {

namespace {
std::mutex& loggers_mutex() {
  static std::mutex mu;
  return mu;
}
std::vector<std::weak_ptr<spdlog::logger>>& live_loggers() {
  static std::vector<std::weak_ptr<spdlog::logger>> all;
  return all;
}
}  // namespace

std::shared_ptr<spdlog::logger> make_stage_logger(const std::string& name) {
  std::lock_guard lock(loggers_mutex());  // held so that a level change cannot slip in between
  auto base = spdlog::default_logger();
  auto log = std::make_shared<spdlog::logger>(name, base->sinks().begin(), base->sinks().end());
  log->set_level(base->level());
  auto& all = live_loggers();
  std::erase_if(all, [](const auto& w) { return w.expired(); });  // bounded by the live stages
  all.push_back(log);
  return log;
}

void set_all_log_levels(spdlog::level::level_enum level) {
  std::lock_guard lock(loggers_mutex());
  spdlog::default_logger()->set_level(level);
  for (auto& w : live_loggers())
    if (auto log = w.lock()) log->set_level(level);
}

}  // namespace etld
