// A client of a Confluent-compatible schema registry: schemas by id (GET {url}/schemas/ids/{id}),
// fetched on a thread of its own (a caller never waits on the network), compiled once and kept
// for the life of the client (an id's schema never changes).
//
// A failure the registry may get over (no connection, a timeout, HTTP 5xx, 401/403, an answer
// that is not a registry's) is retried with backoff, 100 ms doubling to 5 s, for as long as it
// lasts: each counted and reported (rate-limited) through the hooks. Only what cannot change is
// final: an id the registry says it does not have (404 with error_code 40403), a schema that is
// not Avro, uses references, or does not compile. Messages name the registry by its URL without
// credentials.
// Threading: lookup() and the accessors are thread-safe; the hooks run on the client's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/avro/registry_http.hpp"
#include "connectors/avro/registry_settings.hpp"

namespace etld::avro {

struct RegistryHooks {
  std::function<void()> settled;                         // a fetch ended: found, or failed for good
  std::function<void(const std::string& warning)> warn;  // a failure to be retried (rate-limited)
  std::function<void()> retried;                         // every failure to be retried (for a counter)
  std::function<void()> fetched;                         // every schema fetched
};

class SchemaRegistry {
 public:
  static constexpr std::chrono::milliseconds kFirstBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};
  static constexpr std::chrono::seconds kWarnEvery{10};
  static constexpr std::size_t kMaxAnswerBytes = kMaxRegistryAnswerBytes;
  static constexpr std::size_t kMaxRememberedFailures = 1024;  // ids not found, ...

  SchemaRegistry(RegistrySettings settings, RegistryHooks hooks);
  // Cancels a request in flight and joins the thread (within a few milliseconds).
  ~SchemaRegistry();
  SchemaRegistry(const SchemaRegistry&) = delete;
  SchemaRegistry& operator=(const SchemaRegistry&) = delete;

  struct Lookup {
    std::shared_ptr<const AvroSchema> schema;  // found
    std::string error;                         // failed for good: why (a dead letter's reason)
    bool pending() const { return !schema && error.empty(); }
  };
  // The schema of `id`, or its final failure; else pending, and a fetch is queued unless it is
  // already (hooks.settled runs when it ends). Never blocks on the network.
  Lookup lookup(std::uint32_t id);

  const std::string& url() const { return s_.url; }

 private:
  struct Answer;
  void run();
  // One request with the thread's libcurl handle `easy`.
  Answer fetch(void* easy, std::uint32_t id);
  void warn(const std::string& text);

  const RegistrySettings s_;
  const RegistryHooks hooks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint32_t, std::shared_ptr<const AvroSchema>> found_;
  std::map<std::uint32_t, std::string> failed_;
  std::deque<std::uint32_t> queue_;
  std::set<std::uint32_t> queued_;
  std::atomic<bool> stop_{false};  // set under mu_, read without it while a request runs
  void* multi_ = nullptr;          // CURLM*: woken by the destructor
  std::chrono::steady_clock::time_point last_warn_{};
  std::uint64_t suppressed_ = 0;
  std::thread thread_;  // last: started once everything above is ready
};

}  // namespace etld::avro
