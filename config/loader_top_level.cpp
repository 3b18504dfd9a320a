// The loader's top-level keys: pipeline, threads, logging, shutdown, on_poison and admin.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include "config/admin_token.hpp"
#include "config/delivery_check.hpp"
#include "config/held_acks_check.hpp"
#include "config/loader.hpp"
#include "config/loader_parts.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"
#include "config/schema/pipeline.hpp"
#include "config/yaml_errors.hpp"
#include "stages/engine/dispatcher.hpp"
#include "stages/engine/registry.hpp"
#include "stages/expr/expr.hpp"

namespace etld::loader_detail {

namespace {
// `admin: {address: HOST:PORT, token_file: PATH, allowed_hosts: [NAME...]}`: HOST a name or IP
// ([::1] for IPv6), PORT 0-65535 (0 = any free); the token file is checked as `run` will read it.
void read_admin(const YAML::Node& node, PipelineConfig& p, Reporter& r) {
  static const std::vector<std::string> keys{"address", "token_file", "allowed_hosts"};
  if (!node.IsMap()) {
    r.error(node.Mark(), "option 'admin' must be a map", "e.g. admin: {address: 127.0.0.1:9187}");
    return;
  }
  for (const auto& e : map_entries(node, r, "'admin'")) {
    if (std::find(keys.begin(), keys.end(), e.key) == keys.end()) {
      std::string hint = did_you_mean(e.key, keys);
      r.error(e.key_node.Mark(), "unknown key '" + e.key + "' in 'admin'",
              hint.empty() ? "the keys are " + join(keys) : hint);
      continue;
    }
    try {
      if (e.key == "token_file") {
        if (!e.value.IsScalar()) throw ConfigError(e.value.Mark(), "admin token_file must be a path");
        p.admin_token_file = scalar_string(e.value);
        try {
          (void)read_admin_token(p.admin_token_file);
        } catch (const ConfigError& bad) {
          throw ConfigError(e.value.Mark(), bad.what(), bad.hint());
        }
        continue;
      }
      if (e.key == "allowed_hosts") {
        if (!e.value.IsSequence() && !e.value.IsScalar())
          throw ConfigError(e.value.Mark(), "admin allowed_hosts must be a list of host names",
                            "e.g. allowed_hosts: [etld.internal]");
        std::vector<YAML::Node> items;  // a single name is a list of one
        if (e.value.IsSequence())
          for (const auto& h : e.value) items.push_back(h);
        else
          items.push_back(e.value);
        p.admin_allowed_hosts.clear();
        for (const auto& h : items) {
          std::string host = scalar_string(h);
          if (host.empty() || host.find_first_of(" :/[]") != std::string::npos)
            throw ConfigError(
                h.Mark(), "admin allowed_hosts: '" + host + "' is not a host name",
                "write the name alone, without scheme or port; IP addresses are always accepted");
          p.admin_allowed_hosts.push_back(host);
        }
        continue;
      }
      if (!e.value.IsScalar()) throw ConfigError(e.value.Mark(), "admin address must be HOST:PORT");
      std::string address = scalar_string(e.value);
      auto colon = address.rfind(':');
      std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
      std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
      bool digits = !port.empty() && port.size() <= 5 &&
                    std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (host.empty() || !digits || std::stoul(port) > 65535)
        throw ConfigError(e.value.Mark(),
                          "admin address '" + address + "' is not HOST:PORT with a port 0-65535",
                          "e.g. 127.0.0.1:9187 (loopback only) or [::1]:9187");
      if (host.find(':') != std::string::npos && !(host.front() == '[' && host.back() == ']'))
        throw ConfigError(e.value.Mark(), "admin address '" + address + "': write an IPv6 host in brackets",
                          "e.g. [::1]:9187");
      p.admin_address = address;
      p.admin_mark = e.value.Mark();
    } catch (const ConfigError& err) {
      r.error(err, e.key_node.Mark());
    }
  }
  if (p.admin_address.empty() && node.IsMap() && !node["address"])
    r.error(node.Mark(), "'admin' needs an address", "e.g. admin: {address: 127.0.0.1:9187}");
}
}  // namespace

std::string duration_text(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s" : std::to_string(d.count()) + "ms";
}

const std::vector<OptionSpec>& top_level_options() {
  static const PipelineConfig d;  // the defaults (see duration_text in loader_parts.hpp)
  static const std::vector<OptionSpec> specs = {
      {"pipeline", OptionKind::string, "Name of the pipeline, used in logs and metrics.", false, d.name, {}},
      {"threads",
       OptionKind::integer,
       "Worker threads; 0 = hardware concurrency.",
       false,
       std::to_string(d.threads),
       {}},
      {"log_level",
       OptionKind::choice,
       "Minimum level logged.",
       false,
       d.log_level,
       {"trace", "debug", "info", "warn", "error", "critical", "off"}},
      {"log_format", OptionKind::choice, "Log line format.", false, d.log_format, {"text", "json"}},
      {"shutdown_timeout",
       OptionKind::duration,
       "How long a drain may take before the rest is abandoned; also how long a reload waits for events in "
       "flight to settle.",
       false,
       duration_text(d.shutdown_timeout),
       {}},
      {"on_poison", OptionKind::choice,
       "What a sink does with a record it cannot write: dead-letter it and go on, pause its partition, or "
       "stop "
       "the pipeline.",
       false, name_of(d.on_poison, kPoisonPolicyNames), kPoisonPolicyNames},
      {"admin",
       OptionKind::mapping,
       "The admin HTTP endpoint (/metrics, /healthz, /readyz, /pipeline, /reload, /log_level): "
       "address: HOST:PORT; token_file: a file (mode 0600) whose bearer token POST /reload and PUT "
       "/log_level need, off without it; allowed_hosts: Host names accepted besides IP addresses and "
       "localhost. Off when absent.",
       false,
       "",
       {}},
      {"stages", OptionKind::mapping, "The stages, by name.", true, "", {}},
      {"tests",
       OptionKind::sequence,
       "Test cases of the pipeline's transforms, which `etld test FILE` runs (docs/testing.md); run and "
       "validate leave them alone.",
       false,
       "",
       {}},
  };
  return specs;
}

void read_top_level(const Entry& e, PipelineConfig& p, Reporter& r) {
  const OptionSpec* spec = find_spec(top_level_options(), e.key);
  try {
    check_option(*spec, e.value);
    if (e.key == "pipeline") {
      p.name = scalar_string(e.value);
      if (p.name.empty()) throw ConfigError(e.value.Mark(), "option 'pipeline' must not be empty");
    } else if (e.key == "threads") {
      auto v = scalar_int(e.value);
      if (v < 0 || v > 4096)
        throw ConfigError(e.value.Mark(),
                          "option 'threads' must be between 0 and 4096; got " + std::to_string(v),
                          "0 uses one thread per CPU");
      p.threads = static_cast<int>(v);
    } else if (e.key == "log_level") {
      p.log_level = scalar_string(e.value);
    } else if (e.key == "log_format") {
      p.log_format = scalar_string(e.value);
    } else if (e.key == "shutdown_timeout") {
      p.shutdown_timeout = parse_duration(e.value);
    } else if (e.key == "admin") {
      read_admin(e.value, p, r);
    } else if (e.key == "on_poison") {
      p.on_poison = value_named<PoisonPolicy>(scalar_string(e.value), kPoisonPolicyNames);
    }
  } catch (const ConfigError& err) {
    if (e.value.IsNull()) {
      r.error(e.key_node.Mark(), err.what(), err.hint());
    } else {
      r.error(err, e.key_node.Mark());
    }
  }
}

}  // namespace etld::loader_detail
