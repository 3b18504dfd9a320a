// `etld replay FILE --from TIME [--to TIME] [--group NAME]`: runs a pipeline file with every
// kafka source bounded to a time range (start_at / stop_at, connectors/kafka/kafka_bounds.hpp)
// under a consumer group of its own, so that the live group's offsets stay as they are; exits 0
// once the range is loaded. docs/operations.md, "Replaying a time range".
#pragma once

namespace etld {

// What `etld replay --help` prints.
extern const char* const kReplayUsage;

// argv as main() got it, argv[1] being "replay". The exit status: 0 loaded, 1 invalid pipeline
// or a pipeline error, 2 usage error.
int replay_main(int argc, char** argv);

}  // namespace etld
