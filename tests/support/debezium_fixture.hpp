// Kafka records recorded from Debezium's connector (tests/fixtures/debezium/README.md): one a line,
// the key, a TAB, the value, as Kafka's console consumer prints them ("null" for none).
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace etld::test {

// The (key, value) texts of the records of tests/fixtures/debezium/`name`.
inline std::vector<std::pair<std::string, std::string>> debezium_fixture(const std::string& name) {
  const char* dir = std::getenv("ETLD_SOURCE_DIR");
  std::ifstream in(std::string(dir ? dir : ETLD_SOURCE_DIR) + "/tests/fixtures/debezium/" + name);
  REQUIRE_MESSAGE(in, "cannot read tests/fixtures/debezium/" << name);
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    REQUIRE_MESSAGE(tab != std::string::npos, name << ": a line without a TAB");
    out.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return out;
}

}  // namespace etld::test
