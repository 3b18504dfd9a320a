// The external services of the "services" tests: a real Kafka broker and PostgreSQL. Taken from
// KAFKA_BROKERS and PG_DSN when both are set, else started once per process with
// `scripts/dev-env up` (from ETLD_SOURCE_DIR), whose export lines are parsed and also set in this
// process's environment, so that ${KAFKA_BROKERS} and ${PG_DSN} expand in pipeline files.
// Threading: services() is thread-safe (std::call_once); the first call may take ~10-60 s.
#pragma once

#include <string>

namespace etld::test {

struct Services {
  std::string kafka_brokers;  // e.g. 127.0.0.1:19092
  std::string pg_dsn;         // e.g. postgresql://etld:etld@127.0.0.1:15432/etld
};

// Throws std::runtime_error (with dev-env's output) when the services cannot be started.
const Services& services();

}  // namespace etld::test
