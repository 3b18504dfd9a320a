#include "connectors/avro/registry_settings.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>

#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"

namespace etld::avro {

namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlText {
  char* p = nullptr;
  ~CurlText() { curl_free(p); }
};

// The part of `url`, "" when it has none.
std::string url_part(CURLU* url, CURLUPart part) {
  CurlText t;
  if (curl_url_get(url, part, &t.p, 0) != CURLUE_OK || !t.p) return {};
  return t.p;
}

YAML::Mark key_mark(const YAML::Node& map, const std::string& key, const YAML::Mark& fallback) {
  for (const auto& kv : map)
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second.Mark();
  return fallback;
}

}  // namespace

const std::vector<std::string>& registry_option_keys() {
  static const std::vector<std::string> keys{"url", "username", "password", "ca_file", "timeout"};
  return keys;
}

RegistrySettings read_registry_settings(const YAML::Node& node, const YAML::Mark& mark) {
  if (!node.IsMap())
    throw ConfigError(mark, "schema_registry must be a mapping",
                      "e.g. schema_registry: {url: http://127.0.0.1:8081}");
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>("");
    const auto& keys = registry_option_keys();
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    std::string hint = did_you_mean(key, keys);
    throw ConfigError(kv.first.Mark(), "unknown key '" + key + "' in schema_registry",
                      hint.empty() ? "known keys: url, username, password, ca_file, timeout" : hint);
  }
  RegistrySettings s;
  if (!node["url"]) throw ConfigError(mark, "schema_registry needs a url", "e.g. url: http://127.0.0.1:8081");
  const YAML::Mark url_at = key_mark(node, "url", mark);
  const std::string text = scalar_string(node["url"]);
  if (node["username"]) s.username = scalar_string(node["username"]);
  if (node["password"]) s.password = scalar_string(node["password"]);

  UrlHandle url(curl_url());
  if (!url) throw std::bad_alloc();
  // The URL itself may carry credentials: no message quotes it, only libcurl's reason.
  if (auto rc = curl_url_set(url.get(), CURLUPART_URL, text.c_str(), 0); rc != CURLUE_OK)
    throw ConfigError(url_at, std::string("schema_registry.url is not a valid URL: ") + curl_url_strerror(rc),
                      "e.g. url: http://127.0.0.1:8081");
  const std::string scheme = url_part(url.get(), CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https")
    throw ConfigError(url_at, "schema_registry.url must be an http or https URL, not " + scheme + "://",
                      "e.g. url: https://registry.example.com:8081");
  if (!url_part(url.get(), CURLUPART_QUERY).empty() || !url_part(url.get(), CURLUPART_FRAGMENT).empty())
    throw ConfigError(url_at,
                      "schema_registry.url must be the registry's API root, without a query or fragment",
                      "requests go to <url>/schemas/ids/<id>");
  const std::string user = url_part(url.get(), CURLUPART_USER);
  const std::string password = url_part(url.get(), CURLUPART_PASSWORD);
  if (!user.empty() || !password.empty()) {
    if (node["username"] || node["password"])
      throw ConfigError(url_at,
                        "schema_registry.url carries credentials, and username or password is set too",
                        "keep them in username and password only");
    // The URL's userinfo is percent-encoded; curl sends credentials as given.
    CurlText u, p;
    curl_url_get(url.get(), CURLUPART_USER, &u.p, CURLU_URLDECODE);
    curl_url_get(url.get(), CURLUPART_PASSWORD, &p.p, CURLU_URLDECODE);
    s.username = u.p ? u.p : "";
    s.password = p.p ? p.p : "";
    s.secrets.push_back(password);
    curl_url_set(url.get(), CURLUPART_USER, nullptr, 0);
    curl_url_set(url.get(), CURLUPART_PASSWORD, nullptr, 0);
  }
  if (!s.password.empty() && s.username.empty())
    throw ConfigError(key_mark(node, "password", mark), "schema_registry has a password but no username",
                      "basic authentication needs both");
  if (!s.password.empty()) s.secrets.push_back(s.password);
  s.url = url_part(url.get(), CURLUPART_URL);
  while (!s.url.empty() && s.url.back() == '/') s.url.pop_back();

  if (node["ca_file"]) {
    const YAML::Mark at = key_mark(node, "ca_file", mark);
    s.ca_file = scalar_string(node["ca_file"]);
    if (scheme != "https")
      throw ConfigError(at, "schema_registry.ca_file is for https URLs; the url is " + scheme + "://");
    if (s.ca_file.empty() || ::access(s.ca_file.c_str(), R_OK) != 0)
      throw ConfigError(at, "schema_registry.ca_file '" + s.ca_file + "' cannot be read",
                        "name a PEM file of the CA certificates to trust");
  }
  if (node["timeout"]) {
    s.timeout = parse_duration(node["timeout"]);
    if (s.timeout.count() <= 0)
      throw ConfigError(key_mark(node, "timeout", mark), "schema_registry.timeout must be positive");
  }
  return s;
}

}  // namespace etld::avro
