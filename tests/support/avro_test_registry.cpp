#include "tests/support/avro_test_registry.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <string>

#include "stages/engine/value.hpp"

namespace etld::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct TestRegistry::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
};

namespace {

std::string error_body(int code, const std::string& message) {
  return R"({"error_code":)" + std::to_string(code) + R"(,"message":)" + Value(message).to_json() + "}";
}

}  // namespace

TestRegistry::TestRegistry() : impl_(std::make_unique<Impl>()) {
  port_ = impl_->acceptor.local_endpoint().port();
  thread_ = std::thread([this] { serve(); });
}

TestRegistry::~TestRegistry() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  // Unblocks the accept: the server sees stop_ and ends.
  boost::system::error_code ec;
  tcp::socket poke(impl_->io);
  poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  thread_.join();
}

std::string TestRegistry::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void TestRegistry::add(std::uint32_t id, const std::string& schema, const std::string& schema_type) {
  std::lock_guard lock(mu_);
  schemas_[id] = {schema, schema_type};
}

void TestRegistry::add_subject(const std::string& subject, int version, std::uint32_t id,
                               const std::string& schema, const std::string& schema_type) {
  std::lock_guard lock(mu_);
  subjects_[subject] = {version, id, schema, schema_type};
}

void TestRegistry::fail_with(std::optional<int> status) {
  std::lock_guard lock(mu_);
  fail_ = status;
}

void TestRegistry::fail_id(std::uint32_t id, std::optional<int> status) {
  std::lock_guard lock(mu_);
  if (status)
    fail_ids_[id] = *status;
  else
    fail_ids_.erase(id);
}

void TestRegistry::delay(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  delay_ = d;
}

void TestRegistry::require_auth(const std::string& user_password) {
  std::string encoded(boost::beast::detail::base64::encoded_size(user_password.size()), '\0');
  encoded.resize(
      boost::beast::detail::base64::encode(encoded.data(), user_password.data(), user_password.size()));
  std::lock_guard lock(mu_);
  auth_ = "Basic " + encoded;
}

std::vector<TestRegistry::Request> TestRegistry::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void TestRegistry::serve() {
  for (;;) {
    tcp::socket socket(impl_->io);
    boost::system::error_code ec;
    impl_->acceptor.accept(socket, ec);
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    if (ec) continue;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) continue;

    Request seen{std::string(req.target()), std::string(req[http::field::authorization]), 0};
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(false);
    res.set(http::field::content_type, "application/vnd.schemaregistry.v1+json");
    std::chrono::milliseconds wait{0};
    {
      std::lock_guard lock(mu_);
      wait = delay_;
      const std::string prefix = "/schemas/ids/";
      if (!auth_.empty() && seen.authorization != auth_) {
        res.result(http::status::unauthorized);
        res.body() = error_body(401, "Unauthorized");
      } else if (fail_) {
        res.result(static_cast<unsigned>(*fail_));
        res.body() = error_body(*fail_ * 100, "failing on purpose");
      } else if (const std::string latest = "/versions/latest";
                 seen.target.rfind("/subjects/", 0) == 0 && seen.target.size() > 10 + latest.size() &&
                 seen.target.compare(seen.target.size() - latest.size(), latest.size(), latest) == 0) {
        const std::string subject = seen.target.substr(10, seen.target.size() - 10 - latest.size());
        if (auto it = subjects_.find(subject); it == subjects_.end()) {
          res.result(http::status::not_found);
          res.body() = error_body(40401, "Subject '" + subject + "' not found.");
        } else {
          Object answer{{"subject", Value(subject)},
                        {"version", Value(static_cast<std::int64_t>(it->second.version))},
                        {"id", Value(static_cast<std::int64_t>(it->second.id))},
                        {"schema", Value(it->second.schema)}};
          if (!it->second.schema_type.empty())
            answer.emplace_back("schemaType", Value(it->second.schema_type));
          res.result(http::status::ok);
          res.body() = Value(std::move(answer)).to_json();
        }
      } else if (seen.target.rfind(prefix, 0) != 0) {
        res.result(http::status::not_found);
        res.body() = error_body(404, "HTTP 404 Not Found");
      } else {
        const std::string rest = seen.target.substr(prefix.size());
        std::uint32_t id = 0;
        const auto [end, err] = std::from_chars(rest.data(), rest.data() + rest.size(), id);
        if (err != std::errc() || end != rest.data() + rest.size()) {
          res.result(http::status::not_found);
          res.body() = error_body(404, "HTTP 404 Not Found");
        } else if (auto f = fail_ids_.find(id); f != fail_ids_.end()) {
          res.result(static_cast<unsigned>(f->second));
          res.body() = error_body(f->second * 100, "failing on purpose");
        } else if (auto it = schemas_.find(id); it == schemas_.end()) {
          res.result(http::status::not_found);
          res.body() = error_body(40403, "Schema " + std::to_string(id) + " not found");
        } else {
          Object answer{{"schema", Value(it->second.first)}};
          if (!it->second.second.empty()) answer.emplace_back("schemaType", Value(it->second.second));
          res.result(http::status::ok);
          res.body() = Value(std::move(answer)).to_json();
        }
      }
      seen.status = static_cast<int>(res.result_int());
      requests_.push_back(seen);
    }
    if (wait.count() > 0) std::this_thread::sleep_for(wait);
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }
}

}  // namespace etld::test
