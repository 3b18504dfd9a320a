// The librdkafka version etld runs with, for `etld --version`.
#pragma once

namespace etld {

// rd_kafka_version_str() of the librdkafka linked at run time, e.g. "2.12.0".
const char* librdkafka_version();

}  // namespace etld
