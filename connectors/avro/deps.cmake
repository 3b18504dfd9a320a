# avro-c (Debian 12's libavro-dev, 1.11) parses and checks Avro schemas; libcurl (librdkafka's
# dependency already) fetches them from the schema registry.
pkg_check_modules(AVRO_C REQUIRED IMPORTED_TARGET avro-c>=1.11)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl>=7.85)
target_link_libraries(etld_core PUBLIC PkgConfig::AVRO_C PkgConfig::CURL)
