#include "connectors/avro/schema_registry.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <simdjson.h>

namespace etld::avro {

namespace {

// The registry's own words about an error ({"error_code": 40403, "message": "..."}), if any.
struct RegistryError {
  std::int64_t code = 0;
  std::string message;
};

RegistryError registry_error(simdjson::dom::parser& parser, const std::string& body) {
  RegistryError out;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc)) return out;
  std::int64_t code = 0;
  if (!doc["error_code"].get(code)) out.code = code;
  std::string_view message;
  if (!doc["message"].get(message)) out.message = std::string(message.substr(0, 200));
  return out;
}

}  // namespace

struct SchemaRegistry::Answer {
  std::shared_ptr<const AvroSchema> schema;
  std::string error;  // when there is no schema
  bool permanent = false;
};

SchemaRegistry::SchemaRegistry(RegistrySettings settings, RegistryHooks hooks)
    : s_(std::move(settings)), hooks_(std::move(hooks)) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  multi_ = curl_multi_init();
  if (!multi_) throw std::runtime_error("schema registry: cannot create a libcurl handle");
  thread_ = std::thread([this] { run(); });
}

SchemaRegistry::~SchemaRegistry() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  thread_.join();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

SchemaRegistry::Lookup SchemaRegistry::lookup(std::uint32_t id) {
  std::lock_guard lock(mu_);
  if (auto it = found_.find(id); it != found_.end()) return {it->second, {}};
  if (auto it = failed_.find(id); it != failed_.end()) return {nullptr, it->second};
  if (queued_.insert(id).second) {
    queue_.push_back(id);
    cv_.notify_one();
  }
  return {};
}

void SchemaRegistry::run() {
  CURL* easy = curl_easy_init();  // one handle for every request: it keeps the connection
  for (;;) {
    std::uint32_t id = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      id = queue_.front();
    }
    auto backoff = kFirstBackoff;
    for (;;) {
      Answer a = easy ? fetch(easy, id) : Answer{nullptr, "cannot create a libcurl handle", false};
      if (stop_) break;
      if (a.schema || a.permanent) {
        {
          std::lock_guard lock(mu_);
          if (a.schema) {
            found_[id] = a.schema;
          } else {
            if (failed_.size() >= kMaxRememberedFailures) failed_.clear();
            failed_[id] = a.error;
          }
          queue_.pop_front();
          queued_.erase(id);
        }
        if (a.schema && hooks_.fetched) hooks_.fetched();
        if (hooks_.settled) hooks_.settled();
        break;
      }
      if (hooks_.retried) hooks_.retried();
      warn(fmt::format("{} (retrying in {} ms)", a.error, backoff.count()));
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, backoff, [&] { return stop_.load(); })) break;
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }
  if (easy) curl_easy_cleanup(easy);
}

SchemaRegistry::Answer SchemaRegistry::fetch(void* handle, std::uint32_t id) {
  CURL* easy = static_cast<CURL*>(handle);
  CURLM* multi = static_cast<CURLM*>(multi_);
  const std::string where = fmt::format("schema id {} from the registry at {}", id, s_.url);
  const std::string url = fmt::format("{}/schemas/ids/{}", s_.url, id);
  RegistryBody body;
  char curl_error[CURL_ERROR_SIZE] = "";
  prepare_registry_get(easy, s_, url, body, curl_error);

  // Through the multi interface so that the destructor can interrupt a slow request.
  curl_multi_add_handle(multi, easy);
  CURLcode rc = CURLE_ABORTED_BY_CALLBACK;
  for (int running = 1; running && !stop_;) {
    if (curl_multi_perform(multi, &running) != CURLM_OK) break;
    if (running) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi, &left))
    if (m->msg == CURLMSG_DONE && m->easy_handle == easy) rc = m->data.result;
  curl_multi_remove_handle(multi, easy);
  if (stop_) return {nullptr, "stopped", false};

  if (body.too_large)
    return {nullptr, fmt::format("{}: the answer is larger than {} MiB", where, kMaxAnswerBytes >> 20), true};
  if (rc != CURLE_OK)
    return {nullptr,
            fmt::format("cannot fetch {}: {}{}{}", where, curl_easy_strerror(rc), *curl_error ? ": " : "",
                        curl_error),
            false};
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  thread_local simdjson::dom::parser parser;
  if (status == 404) {
    const RegistryError e = registry_error(parser, body.text);
    if (e.code == 40403)
      return {nullptr, fmt::format("schema id {} not found in the registry at {}", id, s_.url), true};
    return {
        nullptr,
        fmt::format("cannot fetch {}: HTTP 404 without the registry's error_code 40403: is {} the registry's "
                    "API root?",
                    where, s_.url),
        false};
  }
  if (status == 401 || status == 403)
    return {
        nullptr,
        fmt::format("cannot fetch {}: HTTP {}: check schema_registry's username and password", where, status),
        false};
  if (status != 200) {
    const RegistryError e = registry_error(parser, body.text);
    return {
        nullptr,
        fmt::format("cannot fetch {}: HTTP {}{}{}", where, status, e.message.empty() ? "" : ": ", e.message),
        false};
  }

  simdjson::dom::element doc;
  std::string_view schema_text;
  if (parser.parse(body.text).get(doc) || doc["schema"].get(schema_text))
    return {
        nullptr,
        fmt::format("cannot fetch {}: the answer is not a schema registry's (no \"schema\" text): is {} the "
                    "registry's API root?",
                    where, s_.url),
        false};
  std::string_view type;
  if (!doc["schemaType"].get(type) && type != "AVRO")
    return {nullptr, fmt::format("{} is a {} schema; etld decodes Avro only", where, type), true};
  simdjson::dom::array references;
  if (!doc["references"].get(references) && references.size() > 0)
    return {nullptr,
            fmt::format("{} refers to other schemas (references), which etld does not support", where), true};
  try {
    return {AvroSchema::parse(schema_text), {}, false};
  } catch (const AvroSchemaError& e) {
    return {nullptr, fmt::format("{} is not a valid Avro schema: {}", where, e.what()), true};
  }
}

void SchemaRegistry::warn(const std::string& text) {
  if (!hooks_.warn) return;
  const auto now = std::chrono::steady_clock::now();
  if (last_warn_ != std::chrono::steady_clock::time_point{} && now - last_warn_ < kWarnEvery) {
    ++suppressed_;
    return;
  }
  hooks_.warn(suppressed_ > 0 ? fmt::format("{} ({} more like this suppressed)", text, suppressed_) : text);
  last_warn_ = now;
  suppressed_ = 0;
}

}  // namespace etld::avro
