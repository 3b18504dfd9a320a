#include "daemon/cli.hpp"
#include "daemon/signals.hpp"

#ifdef ETLD_JEMALLOC
// One jemalloc arena instead of one per thread and core. Events and librdkafka's messages are
// allocated on one thread and freed on another; with per-thread arenas each thread's arena kept
// its own share of that traffic's memory, so peak RSS doubled and fresh pages were faulted in all
// the time (narrow insert, 1M rows: 12k instead of 40k page faults, 65 instead of 120 MB peak,
// ~10 % less CPU). MALLOC_CONF in the environment still overrides it.
extern "C" {
const char* malloc_conf = "narenas:1";  // NOLINT: the name jemalloc reads
}
#endif

int main(int argc, char** argv) {
  etld::ignore_control_signals();  // before anything that takes time: loading, building the pipeline
  return etld::cli_main(argc, argv);
}
