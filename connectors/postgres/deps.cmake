# The postgres connector: libpq for COPY and errors (SQLSTATE), libpqxx linked for future use.
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx libpq)
target_link_libraries(etld_core PUBLIC PkgConfig::PQXX)
# librdkafka for the dead-letter topic (connectors/postgres/dead_letter_topic.cpp), also when the
# kafka connector is left out of the build.
if(NOT TARGET PkgConfig::RDKAFKA)
  pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka>=2.8)
endif()
target_link_libraries(etld_core PUBLIC PkgConfig::RDKAFKA)
