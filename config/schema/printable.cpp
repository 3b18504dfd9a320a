#include "config/schema/printable.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace etld {

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (1-4), or 0 when it is not one
// (a stray continuation byte, an overlong form, a surrogate, a truncated sequence).
std::size_t utf8_length(std::string_view s) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // beyond U+10FFFF
    return 4;
  }
  return 0;
}

// The escaped form of the character of `n` bytes at the start of `s`, or "" when it goes as is.
std::string escape_of(std::string_view s, std::size_t n, Escaping escaping) {
  const bool json = escaping == Escaping::json;
  if (n == 0) {
    auto hex = fmt::format("\\x{:02x}", static_cast<unsigned char>(s[0]));
    return json ? "\\" + hex : hex;  // in JSON, the backslash itself is escaped
  }
  if (n == 1) {
    unsigned char c = static_cast<unsigned char>(s[0]);
    switch (c) {
      case '\n': return "\\n";
      case '\r': return "\\r";
      case '\t': return "\\t";
      case '"': return json ? "\\\"" : "";
      case '\\': return json ? "\\\\" : "";
      default: break;
    }
    if (c < 0x20 || c == 0x7F) return json ? fmt::format("\\u{:04x}", c) : fmt::format("\\x{:02x}", c);
    return "";
  }
  if (n == 2) {  // C1 controls, U+0080..U+009F (CSI among them)
    unsigned cp =
        ((static_cast<unsigned char>(s[0]) & 0x1Fu) << 6) | (static_cast<unsigned char>(s[1]) & 0x3Fu);
    if (cp < 0xA0) return fmt::format("\\u{:04x}", cp);
  }
  if (n == 3 && s.substr(0, 2) == "\xE2\x80" && (s[2] == '\xA8' || s[2] == '\xA9'))  // line separators
    return s[2] == '\xA8' ? "\\u2028" : "\\u2029";
  return "";
}

}  // namespace

void append_printable(std::string& out, std::string_view text, Escaping escaping, std::size_t max_bytes) {
  std::size_t written = 0;
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F && ((c != '"' && c != '\\') || escaping == Escaping::text)) {
      if (written + 1 > max_bytes) {  // npos never is
        out += fmt::format("...({} more bytes)", text.size() - i);
        return;
      }
      out += static_cast<char>(c);
      ++written;
      ++i;
      continue;
    }
    std::size_t n = utf8_length(text.substr(i));
    std::string escaped = escape_of(text.substr(i), n, escaping);
    std::size_t step = n == 0 ? 1 : n;
    std::size_t size = escaped.empty() ? step : escaped.size();
    if (written + size > max_bytes) {
      out += fmt::format("...({} more bytes)", text.size() - i);
      return;
    }
    if (escaped.empty())
      out.append(text.substr(i, step));
    else
      out += escaped;
    written += size;
    i += step;
  }
}

std::string printable(std::string_view text, std::size_t max_bytes, Escaping escaping) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 16);
  append_printable(out, text, escaping, max_bytes);
  return out;
}

}  // namespace etld
