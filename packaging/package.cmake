# The Debian package (cmake --build build --target package -> etld_<version>_amd64.deb).
# The install rules lay out the package: /usr/bin/etld, a private librdkafka under
# /usr/lib/etld (Debian 12's 2.0.2 cannot join consumer groups on Kafka 4.x), the systemd units,
# /etc/etld with a default pipeline and the examples (conffiles), the docs, and the Grafana
# dashboard and Prometheus alert rules (with their unit tests) under /usr/share/etld.
include(GNUInstallDirs)

# The librdkafka that scripts/build-librdkafka cached travels inside the package; the binary
# finds it relative to itself, so an unpacked tree (dpkg -x) runs as the installed one does.
if(EXISTS "${ETLD_RDKAFKA_PREFIX}/lib/librdkafka.so.1")
  set(ETLD_PRIVATE_LIBDIR "${CMAKE_INSTALL_LIBDIR}/etld")
  install(FILES "${ETLD_RDKAFKA_PREFIX}/lib/librdkafka.so.1" DESTINATION "${ETLD_PRIVATE_LIBDIR}")
  set_target_properties(etld PROPERTIES INSTALL_RPATH "$ORIGIN/../${ETLD_PRIVATE_LIBDIR}")
endif()

file(GLOB ETLD_UNIT_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/packaging/*.service)
install(FILES ${ETLD_UNIT_FILES} DESTINATION /lib/systemd/system)

file(GLOB ETLD_EXAMPLES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/*.yaml)
# 0640: a pipeline file may hold secrets; postinst gives it to the group etld.
install(FILES ${CMAKE_SOURCE_DIR}/packaging/pipeline.yaml DESTINATION /etc/etld
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${ETLD_EXAMPLES} DESTINATION /etc/etld/examples)
# Every file under /etc/etld is a conffile: dpkg keeps the operator's edits on upgrade.
set(ETLD_CONFFILES "/etc/etld/pipeline.yaml\n")
foreach(example ${ETLD_EXAMPLES})
  get_filename_component(name ${example} NAME)
  string(APPEND ETLD_CONFFILES "/etc/etld/examples/${name}\n")
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/packaging/conffiles "${ETLD_CONFFILES}")

install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${CMAKE_SOURCE_DIR}/packaging/grafana/etld.json DESTINATION ${CMAKE_INSTALL_DATADIR}/etld/grafana)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/prometheus/etld-alerts.yml
  ${CMAKE_SOURCE_DIR}/packaging/prometheus/etld-alerts.test.yml DESTINATION ${CMAKE_INSTALL_DATADIR}/etld/prometheus)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
  FILES_MATCHING PATTERN "*.md")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME etld)
set(CPACK_PACKAGE_VENDOR "etld")
set(CPACK_PACKAGE_CONTACT "etld maintainers <maintainers@users.noreply.r-seed-d53d6e61.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Kafka to PostgreSQL ETL daemon driven by a YAML pipeline")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "\
etld streams Kafka topics into PostgreSQL tables, at least once, from a YAML
pipeline of stages (sources, transforms, sinks) under credit-based backpressure.
It runs as a systemd service: etld.service for /etc/etld/pipeline.yaml, or
etld@NAME.service for /etc/etld/NAME.yaml.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps (the bundled librdkafka's included); adduser
# for the postinst that creates the etld system user.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/packaging/deb/postinst
  ${CMAKE_SOURCE_DIR}/packaging/deb/prerm
  ${CMAKE_SOURCE_DIR}/packaging/deb/postrm
  ${CMAKE_BINARY_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
