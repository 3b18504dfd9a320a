# librdkafka >= 2.8 (Kafka 4.x brokers removed the old protocol versions older clients use for
# consumer groups; see docs/connectors/kafka.md). The top-level CMakeLists.txt puts the copy built
# by scripts/build-librdkafka on PKG_CONFIG_PATH and the RPATH.
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka>=2.8)
target_link_libraries(etld_core PUBLIC PkgConfig::RDKAFKA)
