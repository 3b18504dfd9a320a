// A dedicated thread for a sink instance's blocking client calls (libpq's COPY and commit, a
// producer's flush), so that a slow destination never parks the pool threads every other stage
// needs. The hand-off is bounded: one job at a time; the sink accumulates the next batch on its
// strand meanwhile and submits it when the previous one's completion came back.
// Threading: construct, start(), submit() and busy() on the strand; jobs run on the thread;
// completions run on the strand, and not at all once the worker is destroyed.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "stages/sink/instance_scope.hpp"
#include "stages/sink/stop_signal.hpp"

namespace etld::sink {

class BlockingWorker {
 public:
  // `interrupt` (called from the destructor, on the strand, while a job may be running on the
  // thread) cuts short a blocking call: cancel the running statement, close a socket.
  // `stop` is requested there too, for waits that poll it.
  BlockingWorker(const boost::asio::any_io_executor& strand, StopSignal& stop,
                 std::function<void()> interrupt);
  // Stops and joins the thread: a job not started is dropped, a running one ends by Stopped.
  ~BlockingWorker();
  BlockingWorker(const BlockingWorker&) = delete;
  BlockingWorker& operator=(const BlockingWorker&) = delete;

  // Starts the thread; `first` (connecting, preparing tables) runs on it before any job.
  void start(std::function<void()> first = {});
  // Hands `job` to the thread; `then` runs on the strand after it. The slot must be free.
  void submit(std::function<void()> job, std::function<void()> then);
  bool busy() const { return busy_; }  // a job submitted whose completion has not run yet
  // From the thread (or anywhere): runs `f` on the strand unless the worker is gone by then.
  template <class F>
  void post(F&& f) const {
    scope_.post(std::forward<F>(f));
  }

 private:
  struct Job {
    std::function<void()> run, then;
  };
  void main(std::function<void()> first);

  InstanceScope scope_;
  StopSignal& stop_;
  std::function<void()> interrupt_;
  bool busy_ = false;  // strand
  std::mutex mu_;
  std::condition_variable cv_;
  Job slot_;
  bool has_job_ = false, quit_ = false;
  std::thread thread_;
};

}  // namespace etld::sink
