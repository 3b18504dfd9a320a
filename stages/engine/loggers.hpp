// Per-stage loggers that follow the process's log level when it changes at runtime (the admin
// endpoint's /log_level, SIGUSR1/SIGUSR2). Each shares the default logger's sinks.
//
// The list of live stage loggers stays process-wide, unlike metrics and readiness (which belong
// to a pipeline): the log level and the default logger's sinks are process-wide themselves, so
// a level change must reach every stage of every pipeline alive (a retired one still draining
// included), and nothing is looked up by name.
// Threading: thread-safe.
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace etld {

// A logger named `name` with the default logger's sinks and level.
std::shared_ptr<spdlog::logger> make_stage_logger(const std::string& name);
// Sets the level of the default logger and of every live stage logger.
void set_all_log_levels(spdlog::level::level_enum level);

}  // namespace etld
