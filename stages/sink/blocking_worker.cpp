#include "stages/sink/blocking_worker.hpp"

#include <stdexcept>
#include <utility>

namespace etld::sink {

BlockingWorker::BlockingWorker(const boost::asio::any_io_executor& strand, StopSignal& stop,
                               std::function<void()> interrupt)
    : scope_(strand), stop_(stop), interrupt_(std::move(interrupt)) {}

BlockingWorker::~BlockingWorker() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  stop_.request();
  cv_.notify_all();
  if (interrupt_) interrupt_();
  if (thread_.joinable()) thread_.join();
}

void BlockingWorker::start(std::function<void()> first) {
  thread_ = std::thread([this, first = std::move(first)]() mutable { main(std::move(first)); });
}

void BlockingWorker::submit(std::function<void()> job, std::function<void()> then) {
  if (busy_) throw std::logic_error("BlockingWorker::submit: a job is already in hand");
  busy_ = true;
  {
    std::lock_guard lock(mu_);
    slot_ = Job{std::move(job), std::move(then)};
    has_job_ = true;
  }
  cv_.notify_one();
}

void BlockingWorker::main(std::function<void()> first) {
  try {
    if (first) first();
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return quit_ || has_job_; });
        if (quit_) return;
        job = std::move(slot_);
        has_job_ = false;
      }
      job.run();
      post([this, then = std::move(job.then)] {
        busy_ = false;
        then();
      });
    }
  } catch (const Stopped&) {
    // Shutting down: the job in hand is dropped unsettled (its acks fail when destroyed).
  }
}

}  // namespace etld::sink
