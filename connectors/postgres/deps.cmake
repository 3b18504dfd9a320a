# The postgres connector: libpq for COPY and errors (SQLSTATE), libpqxx linked for future use.
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx libpq)
target_link_libraries(etld_core PUBLIC PkgConfig::PQXX)
