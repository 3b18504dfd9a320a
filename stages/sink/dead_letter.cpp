#include "stages/sink/dead_letter.hpp"

namespace etld::sink {

void write_dead_letters(const std::vector<DeadLetterDestination*>& destinations,
                        const std::vector<DeadLetter>& letters, Backoff& backoff, const StopSignal& stop,
                        const std::function<void(const DeadLetterDestination&, const std::string&,
                                                 std::chrono::milliseconds)>& on_transient) {
  for (DeadLetterDestination* d : destinations) {
    if (!d) continue;
    for (;;) {
      stop.throw_if_stopping();
      const std::string error = d->write(letters, stop);
      if (error.empty()) {
        backoff.reset();
        break;
      }
      on_transient(*d, error, backoff.next());
      backoff.wait(stop);
    }
  }
}

}  // namespace etld::sink
