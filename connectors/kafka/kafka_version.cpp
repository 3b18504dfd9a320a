#include "connectors/kafka/kafka_version.hpp"

#include <librdkafka/rdkafka.h>

namespace etld {

const char* librdkafka_version() { return rd_kafka_version_str(); }

}  // namespace etld
