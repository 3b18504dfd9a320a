// The lexer: one pass over the text, with JSON-style string escapes, `backquoted` path segments
// and the column of every token for the parser's messages.
#include "stages/expr/lexer.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

namespace etld::expr_detail {

namespace {

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    for (;;) {
      skip_space();
      Token t = next();
      bool done = t.kind == Tok::end;
      out.push_back(std::move(t));
      if (done) return out;
    }
  }

 private:
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  Token next() {
    Token t;
    t.column = i_;
    if (i_ >= s_.size()) return t;
    char c = s_[i_];
    if (is_digit(c)) return number();
    if (c == '\'' || c == '"') return string_literal(c);
    if (is_ident_start(c) || c == '`') return path(false);
    if (c == '.') {
      if (i_ + 1 < s_.size() && (is_ident_start(s_[i_ + 1]) || s_[i_ + 1] == '`')) {
        ++i_;
        Token p = path(true);
        p.column = t.column;
        return p;
      }
      if (i_ + 1 < s_.size() && is_digit(s_[i_ + 1])) syntax_error("a number needs a digit before '.'", i_);
      ++i_;
      t.kind = Tok::root;
      t.text = ".";
      return t;
    }
    auto single = [&](Tok kind) {
      t.kind = kind;
      t.text = std::string(1, c);
      ++i_;
      return t;
    };
    switch (c) {
      case '(': return single(Tok::lparen);
      case ')': return single(Tok::rparen);
      case '[': return single(Tok::lbracket);
      case ']': return single(Tok::rbracket);
      case ',': return single(Tok::comma);
      case '+':
      case '-':
      case '*':
      case '/':
      case '%': return single(Tok::op);
      default: break;
    }
    auto two = [&](std::string_view op) { return s_.substr(i_, 2) == op; };
    for (std::string_view op : {"==", "!=", "<=", ">=", "&&", "||"}) {
      if (two(op)) {
        t.kind = Tok::op;
        t.text = std::string(op);
        i_ += 2;
        return t;
      }
    }
    if (c == '<' || c == '>' || c == '!') return single(Tok::op);
    if (c == '=') syntax_error("unexpected '=': use '==' to compare", i_);
    if (c == '&') syntax_error("unexpected '&': use '&&' or 'and'", i_);
    if (c == '|') syntax_error("unexpected '|': use '||' or 'or'", i_);
    syntax_error(std::string("unexpected character '") + c + "'", i_);
  }

  Token number() {
    Token t;
    t.column = i_;
    std::size_t start = i_;
    bool real = false;
    while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    if (i_ + 1 < s_.size() && s_[i_] == '.' && is_digit(s_[i_ + 1])) {
      real = true;
      ++i_;
      while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      std::size_t j = i_ + 1;
      if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) ++j;
      if (j < s_.size() && is_digit(s_[j])) {
        real = true;
        i_ = j;
        while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
      }
    }
    if (i_ < s_.size() && is_ident_start(s_[i_])) syntax_error("unexpected letter in number", i_);
    std::string_view text = s_.substr(start, i_ - start);
    t.text = std::string(text);
    if (real) {
      t.kind = Tok::real;
      t.real_value = std::strtod(t.text.c_str(), nullptr);
      if (!std::isfinite(t.real_value)) syntax_error("number literal out of range", start);
    } else {
      t.kind = Tok::integer;
      auto res = std::from_chars(text.data(), text.data() + text.size(), t.int_value);
      if (res.ec != std::errc()) syntax_error("integer literal out of range", start);
    }
    return t;
  }

  unsigned hex4(std::size_t at) {
    if (at + 4 > s_.size()) syntax_error("expected 4 hex digits after \\u", at);
    unsigned v = 0;
    for (std::size_t k = at; k < at + 4; ++k) {
      char h = s_[k];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<unsigned>(h - 'A' + 10);
      else
        syntax_error("expected 4 hex digits after \\u", at);
    }
    return v;
  }

  Token string_literal(char quote) {
    Token t;
    t.kind = Tok::string;
    t.column = i_;
    ++i_;
    for (;;) {
      if (i_ >= s_.size())
        syntax_error(std::string("unterminated string: expected closing ") + quote, t.column);
      char c = s_[i_];
      if (c == quote) {
        ++i_;
        return t;
      }
      if (c != '\\') {
        t.text.push_back(c);
        ++i_;
        continue;
      }
      std::size_t esc = i_;
      if (i_ + 1 >= s_.size())
        syntax_error(std::string("unterminated string: expected closing ") + quote, t.column);
      char e = s_[i_ + 1];
      i_ += 2;
      switch (e) {
        case 'n': t.text.push_back('\n'); break;
        case 't': t.text.push_back('\t'); break;
        case 'r': t.text.push_back('\r'); break;
        case 'b': t.text.push_back('\b'); break;
        case 'f': t.text.push_back('\f'); break;
        case '0': t.text.push_back('\0'); break;
        case '\\': t.text.push_back('\\'); break;
        case '\'': t.text.push_back('\''); break;
        case '"': t.text.push_back('"'); break;
        case '/': t.text.push_back('/'); break;
        case 'u': {
          unsigned cp = hex4(i_);
          i_ += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF && i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
            unsigned lo = hex4(i_ + 2);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              i_ += 6;
            }
          }
          append_utf8(t.text, cp);
          break;
        }
        default: syntax_error(std::string("unknown escape '\\") + e + "' in string", esc);
      }
    }
  }

  // One or more segments separated by '.': identifiers, `backquoted names` or array indexes.
  Token path(bool after_dot) {
    Token t;
    t.kind = Tok::path;
    t.column = i_;
    std::size_t start = after_dot ? i_ - 1 : i_;
    for (;;) {
      Segment seg;
      if (i_ < s_.size() && s_[i_] == '`') {
        std::size_t open = i_++;
        t.quoted = true;
        for (;;) {
          if (i_ >= s_.size()) syntax_error("unterminated `name`: expected closing `", open);
          if (s_[i_] == '`') break;
          if (s_[i_] == '\\' && i_ + 1 < s_.size() && (s_[i_ + 1] == '`' || s_[i_ + 1] == '\\')) ++i_;
          seg.name.push_back(s_[i_++]);
        }
        ++i_;
        if (seg.name.empty()) syntax_error("empty `name`", open);
      } else if (i_ < s_.size() && is_ident_start(s_[i_])) {
        std::size_t b = i_;
        while (i_ < s_.size() && is_ident_char(s_[i_])) ++i_;
        seg.name = std::string(s_.substr(b, i_ - b));
      } else if (i_ < s_.size() && is_digit(s_[i_]) && !t.segments.empty()) {
        std::size_t b = i_;
        while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
        seg.name = std::string(s_.substr(b, i_ - b));
        std::int64_t idx = 0;
        auto res = std::from_chars(seg.name.data(), seg.name.data() + seg.name.size(), idx);
        if (res.ec == std::errc()) seg.index = idx;
      } else {
        syntax_error("expected a field name after '.'", i_);
      }
      t.segments.push_back(std::move(seg));
      if (i_ < s_.size() && s_[i_] == '.') {
        ++i_;
        continue;
      }
      break;
    }
    t.text = std::string(s_.substr(start, i_ - start));
    return t;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::vector<Token> lex(std::string_view text) { return Lexer(text).run(); }

}  // namespace etld::expr_detail
