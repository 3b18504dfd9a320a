// A small schema registry for tests: a real HTTP server (Boost.Beast) on 127.0.0.1 that answers
// GET /schemas/ids/{id} as Confluent's does ({"schema": "..."}; 404 with error_code 40403 for an
// unknown id), and can be made to fail (any status), to be slow, or to require basic auth. It
// records what it was asked. One request per connection, served in turn on its own thread.
// Threading: every method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace etld::test {

class TestRegistry {
 public:
  TestRegistry();  // listening on an ephemeral port
  ~TestRegistry();
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;

  std::string url() const;  // http://127.0.0.1:<port>
  unsigned short port() const { return port_; }

  // Answers `id` with this schema text (and schemaType, when given).
  void add(std::uint32_t id, const std::string& schema, const std::string& schema_type = "");
  // Answers GET /subjects/{subject}/versions/latest with this version of the subject (404 with
  // error_code 40401 for a subject it was not given).
  void add_subject(const std::string& subject, int version, std::uint32_t id, const std::string& schema,
                   const std::string& schema_type = "");
  // Answers every request with this status (and a Confluent error body) until cleared.
  void fail_with(std::optional<int> status);
  // Answers requests for `id` with this status (and a Confluent error body) until cleared.
  void fail_id(std::uint32_t id, std::optional<int> status);
  // Waits this long before answering each request.
  void delay(std::chrono::milliseconds d);
  // Requires this basic auth ("user:password"), answering 401 otherwise.
  void require_auth(const std::string& user_password);

  struct Request {
    std::string target;         // "/schemas/ids/7"
    std::string authorization;  // the Authorization header as sent, "" when none
    int status = 0;             // what it was answered
  };
  std::vector<Request> requests() const;

 private:
  void serve();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  unsigned short port_ = 0;
  mutable std::mutex mu_;
  std::map<std::uint32_t, std::pair<std::string, std::string>> schemas_;
  struct Subject {
    int version = 0;
    std::uint32_t id = 0;
    std::string schema, schema_type;
  };
  std::map<std::string, Subject> subjects_;
  std::optional<int> fail_;
  std::map<std::uint32_t, int> fail_ids_;
  std::chrono::milliseconds delay_{0};
  std::string auth_;  // expected Authorization header, "" none
  std::vector<Request> requests_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace etld::test
