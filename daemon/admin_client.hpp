// The client side of the admin endpoint, for the commands that talk to a running etld (`etld top`,
// `etld tap`): where it is (HOST:PORT) and one GET over a fresh connection (Boost.Beast), with a
// bearer token when asked for, the body streamed to a callback when the answer is chunked.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace etld {

struct AdminEndpoint {
  std::string host, port;
  std::string text() const;  // "127.0.0.1:9100", "[::1]:9100"
};

// "HOST:PORT", "[V6]:PORT" or "http://HOST:PORT/"; 0.0.0.0 and :: (where etld listens on every
// address) mean this host. Throws std::invalid_argument naming --admin.
AdminEndpoint parse_admin_endpoint(std::string text);

struct AdminGet {
  std::string target;                       // "/metrics", "/tap?stage=x"
  std::chrono::milliseconds timeout{2000};  // for the whole exchange
  std::string bearer_token;                 // "" = none; sent, never shown in an error
  const char* user_agent = "etld";
  // When set, a 200 answer's chunks go here as they arrive (a streamed answer) instead of into
  // the returned body.
  std::function<void(std::string_view)> on_chunk;
};

// The body of a 200 answer. Throws std::runtime_error saying what failed and where (the address,
// the method and target, the status and the answer's first line).
std::string admin_get(const AdminEndpoint& at, const AdminGet& get);

}  // namespace etld
