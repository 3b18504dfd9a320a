# The postgres connector: libpq for COPY and errors (SQLSTATE), libpqxx linked for future use.
# Its dead-letter topic is the kafka connector's (connectors/kafka/dead_letter_topic.hpp): without
# that connector, dead_letter.topic is refused when the configuration is loaded.
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx libpq)
target_link_libraries(etld_core PUBLIC PkgConfig::PQXX)
