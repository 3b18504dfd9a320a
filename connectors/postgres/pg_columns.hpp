// The postgres sink's column mapping (`columns:` and `key:` of every mode but merge): each column's
// source, type, required flag and default, checked and located; and two helpers that pg_config.cpp
// shares with it.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/schema/options.hpp"
#include "connectors/postgres/pg_config.hpp"

namespace etld::pg {

// Fills c.columns and c.key from `columns` and `key`; throws ConfigError located at the culprit.
// `mode` is the mode as written, for the errors.
void parse_columns_and_key(PostgresSinkConfig& c, const Options& o, const std::string& mode);

std::string join(const std::vector<std::string>& v, const std::string& sep);
// Throws ConfigError at the first key of `node` not in `allowed`, with a did-you-mean.
void check_keys(const YAML::Node& node, const std::vector<std::string>& allowed, const std::string& where);

}  // namespace etld::pg
