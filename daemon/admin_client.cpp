#include "daemon/admin_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <stdexcept>

namespace etld {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string AdminEndpoint::text() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

AdminEndpoint parse_admin_endpoint(std::string text) {
  if (text.rfind("http://", 0) == 0) text = text.substr(7);
  while (!text.empty() && text.back() == '/') text.pop_back();
  AdminEndpoint e;
  auto colon = text.rfind(':');
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 != colon)
      throw std::invalid_argument("--admin '" + text + "' is not HOST:PORT");
    e.host = text.substr(1, close - 1);
  } else {
    if (colon == std::string::npos || text.find(':') != colon)
      throw std::invalid_argument("--admin '" + text + "' is not HOST:PORT");
    e.host = text.substr(0, colon);
  }
  e.port = text.substr(colon + 1);
  if (e.host.empty() || e.port.empty() || e.port.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("--admin '" + text + "' is not HOST:PORT");
  if (e.host == "0.0.0.0") e.host = "127.0.0.1";  // where etld listens on every address
  if (e.host == "::") e.host = "::1";
  return e;
}

std::string admin_get(const AdminEndpoint& at, const AdminGet& get) {
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::empty_body> req{http::verb::get, get.target, 11};
  req.set(http::field::host, at.text());
  req.set(http::field::user_agent, get.user_agent);
  req.set(http::field::connection, "close");
  if (!get.bearer_token.empty()) req.set(http::field::authorization, "Bearer " + get.bearer_token);
  http::response_parser<http::string_body> parser;
  std::string streamed_error;                        // a chunked answer that is not 200
  if (get.on_chunk) parser.body_limit(boost::none);  // a stream's chunks are handed on, not kept
  // Beast keeps a reference to the callback: it lives as long as the parser.
  auto on_chunk = [&](std::uint64_t, beast::string_view body, beast::error_code&) -> std::size_t {
    if (parser.get().result() == http::status::ok)
      get.on_chunk({body.data(), body.size()});
    else
      streamed_error.append(body.data(), body.size());
    return body.size();
  };
  if (get.on_chunk) parser.on_chunk_body(on_chunk);
  beast::error_code failure;
  const char* step = "resolve";
  auto fail = [&](beast::error_code ec, const char* what) {
    failure = ec;
    step = what;
  };
  resolver.async_resolve(
      at.host, at.port, [&](beast::error_code ec, asio::ip::tcp::resolver::results_type r) {
        if (ec) return fail(ec, "resolve");
        stream.expires_after(get.timeout);
        stream.async_connect(r, [&](beast::error_code ec, const asio::ip::tcp::endpoint&) {
          if (ec) return fail(ec, "connect to");
          http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
            if (ec) return fail(ec, "send to");
            http::async_read(stream, buffer, parser, [&](beast::error_code ec, std::size_t) {
              if (ec) return fail(ec, "read from");
              beast::error_code ignored;
              stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
            });
          });
        });
      });
  io.run();
  if (failure)
    throw std::runtime_error(std::string("cannot ") + step + " the admin endpoint at " + at.text() +
                             " (GET " + get.target + "): " + failure.message());
  auto& res = parser.get();
  if (res.result() != http::status::ok) {
    auto body = (streamed_error.empty() ? res.body() : streamed_error).substr(0, 300);
    while (!body.empty() && body.back() == '\n') body.pop_back();
    throw std::runtime_error("the admin endpoint at " + at.text() + " answered GET " + get.target + " with " +
                             std::to_string(res.result_int()) + ": " + body);
  }
  return std::move(res.body());
}

}  // namespace etld
