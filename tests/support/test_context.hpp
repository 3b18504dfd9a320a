// A minimal StageContext for unit tests of transforms: a fixed name and instance, an executor of
// its own io_context (never run unless the test does), a logger that keeps every message so a
// test can assert what was logged, and fail() recorded instead of tearing anything down.
// Threading: single-threaded test use only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include "stages/engine/stage.hpp"

namespace etld::test {

// Keeps each formatted log message (payload only).
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> messages;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    messages.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}
};

class TestStageContext : public StageContext {
 public:
  explicit TestStageContext(std::string name = "stage", int instance = 0)
      : name_(std::move(name)),
        instance_(instance),
        sink_(std::make_shared<CaptureSink>()),
        logger_(std::make_shared<spdlog::logger>(name_, sink_)) {
    logger_->set_level(spdlog::level::trace);
  }

  const std::string& stage_name() const override { return name_; }
  int instance() const override { return instance_; }
  boost::asio::any_io_executor executor() const override { return io_.get_executor(); }
  spdlog::logger& log() const override { return *logger_; }
  const metrics::MetricsScope& metrics() const override { return scope_; }
  ReadinessProbe readiness(std::string what) override { return readiness_probes.probe(std::move(what)); }
  void fail(std::exception_ptr error) override { errors.push_back(std::move(error)); }
  void wake() override { ++wakes; }
  // The context of executor(), for a test that runs the stage's timers.
  boost::asio::io_context& io() const { return io_; }
  int wakes = 0;  // wake() calls

  const std::vector<std::string>& logged() const { return sink_->messages; }
  std::vector<std::exception_ptr> errors;
  metrics::Registry registry;  // what the stage registered through metrics()
  Readiness readiness_probes;  // the probes it asked for

 private:
  std::string name_;
  int instance_;
  mutable boost::asio::io_context io_;
  std::shared_ptr<CaptureSink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  metrics::MetricsScope scope_{registry, "test", name_, instance_};
};

}  // namespace etld::test
