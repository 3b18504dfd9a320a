// The expression language: a lexer, a Pratt parser building a tree of Nodes, and a tree-walking
// evaluator. Field paths are split once at compile time; evaluation reads the record in place
// (no copy for field reads or literals) and allocates only for the values it computes.
#include "stages/expr/expr.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace etld {

namespace {

enum class Op : std::uint8_t {
  literal,
  field,
  root,
  meta,
  neg,
  not_,
  and_,
  or_,
  add,
  sub,
  mul,
  div,
  mod,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  in,
  not_in,
  array,
  call,
};

enum class Meta : std::uint8_t { key, topic, partition, offset, timestamp };

enum class Fn : std::uint8_t {
  if_,
  lower,
  upper,
  trim,
  length,
  concat,
  contains,
  starts_with,
  ends_with,
  substr,
  replace,
  to_int,
  to_number,
  to_string,
  to_bool,
  coalesce,
  abs,
  round,
  floor,
  ceil,
  min,
  max,
  now_ms,
  is_null,
};

struct FnSpec {
  const char* name;
  Fn fn;
  int min_args;
  int max_args;  // -1: any number
};

constexpr std::array<FnSpec, 24> kFunctions{{
    {"if", Fn::if_, 3, 3},
    {"lower", Fn::lower, 1, 1},
    {"upper", Fn::upper, 1, 1},
    {"trim", Fn::trim, 1, 1},
    {"length", Fn::length, 1, 1},
    {"concat", Fn::concat, 0, -1},
    {"contains", Fn::contains, 2, 2},
    {"starts_with", Fn::starts_with, 2, 2},
    {"ends_with", Fn::ends_with, 2, 2},
    {"substr", Fn::substr, 2, 3},
    {"replace", Fn::replace, 3, 3},
    {"to_int", Fn::to_int, 1, 1},
    {"to_number", Fn::to_number, 1, 1},
    {"to_string", Fn::to_string, 1, 1},
    {"to_bool", Fn::to_bool, 1, 1},
    {"coalesce", Fn::coalesce, 1, -1},
    {"abs", Fn::abs, 1, 1},
    {"round", Fn::round, 1, 2},
    {"floor", Fn::floor, 1, 1},
    {"ceil", Fn::ceil, 1, 1},
    {"min", Fn::min, 2, -1},
    {"max", Fn::max, 2, -1},
    {"now_ms", Fn::now_ms, 0, 0},
    {"is_null", Fn::is_null, 1, 1},
}};

const FnSpec* find_function(std::string_view name) {
  for (const auto& f : kFunctions)
    if (name == f.name) return &f;
  return nullptr;
}

struct Segment {
  std::string name;
  std::int64_t index = -1;  // >= 0 when the segment is all digits: also indexes arrays
};

}  // namespace

struct Expr::Node {
  Op op = Op::literal;
  Meta meta = Meta::key;
  Fn fn = Fn::if_;
  std::size_t column = 0;
  std::size_t height = 1;                   // levels of the subtree, at most Expr::kMaxDepth
  Value literal;                            // Op::literal
  std::vector<Segment> path;                // Op::field
  std::string path_text;                    // Op::field: as written, for messages ("a.b")
  std::vector<std::unique_ptr<Node>> args;  // operands / function arguments / array items
};

namespace {

using Node = Expr::Node;

// ---------------------------------------------------------------------------------------------
// Lexer

enum class Tok : std::uint8_t {
  end,
  integer,
  real,
  string,
  path,
  root,
  op,
  lparen,
  rparen,
  lbracket,
  rbracket,
  comma
};

struct Token {
  Tok kind = Tok::end;
  std::size_t column = 0;
  std::string text;  // op spelling, string contents, or the path as written
  std::int64_t int_value = 0;
  double real_value = 0;
  std::vector<Segment> segments;  // Tok::path
  bool quoted = false;            // Tok::path: some segment was backquoted
};

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
  [[noreturn]] void fail(std::string message, std::size_t column) {
    throw ExprSyntaxError(std::move(message) + " at column " + std::to_string(column), column);
  }

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
      if (i_ + 1 < s_.size() && is_digit(s_[i_ + 1])) fail("a number needs a digit before '.'", i_);
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
    if (c == '=') fail("unexpected '=': use '==' to compare", i_);
    if (c == '&') fail("unexpected '&': use '&&' or 'and'", i_);
    if (c == '|') fail("unexpected '|': use '||' or 'or'", i_);
    fail(std::string("unexpected character '") + c + "'", i_);
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
    if (i_ < s_.size() && is_ident_start(s_[i_])) fail("unexpected letter in number", i_);
    std::string_view text = s_.substr(start, i_ - start);
    t.text = std::string(text);
    if (real) {
      t.kind = Tok::real;
      t.real_value = std::strtod(t.text.c_str(), nullptr);
      if (!std::isfinite(t.real_value)) fail("number literal out of range", start);
    } else {
      t.kind = Tok::integer;
      auto res = std::from_chars(text.data(), text.data() + text.size(), t.int_value);
      if (res.ec != std::errc()) fail("integer literal out of range", start);
    }
    return t;
  }

  unsigned hex4(std::size_t at) {
    if (at + 4 > s_.size()) fail("expected 4 hex digits after \\u", at);
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
        fail("expected 4 hex digits after \\u", at);
    }
    return v;
  }

  Token string_literal(char quote) {
    Token t;
    t.kind = Tok::string;
    t.column = i_;
    ++i_;
    for (;;) {
      if (i_ >= s_.size()) fail(std::string("unterminated string: expected closing ") + quote, t.column);
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
      if (i_ + 1 >= s_.size()) fail(std::string("unterminated string: expected closing ") + quote, t.column);
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
        default: fail(std::string("unknown escape '\\") + e + "' in string", esc);
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
          if (i_ >= s_.size()) fail("unterminated `name`: expected closing `", open);
          if (s_[i_] == '`') break;
          if (s_[i_] == '\\' && i_ + 1 < s_.size() && (s_[i_ + 1] == '`' || s_[i_ + 1] == '\\')) ++i_;
          seg.name.push_back(s_[i_++]);
        }
        ++i_;
        if (seg.name.empty()) fail("empty `name`", open);
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
        fail("expected a field name after '.'", i_);
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

// ---------------------------------------------------------------------------------------------
// Parser

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::end: return "end of input";
    case Tok::string: return "string '" + t.text + "'";
    default: return "'" + t.text + "'";
  }
}

std::unique_ptr<Node> make(Op op, std::size_t column) {
  auto n = std::make_unique<Node>();
  n->op = op;
  n->column = column;
  return n;
}

std::string path_key(const std::vector<Segment>& segs) {
  std::string out;
  for (const auto& s : segs) {
    if (!out.empty()) out.push_back('.');
    out += s.name;
  }
  return out;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::vector<std::string>& fields)
      : toks_(std::move(tokens)), fields_(fields) {}

  std::unique_ptr<Node> run() {
    auto root = expr(0);
    if (peek().kind != Tok::end)
      fail("unexpected " + describe(peek()) + " after a complete expression; expected an operator",
           peek().column);
    return root;
  }

 private:
  // Binding powers, loosest first.
  static constexpr int kOr = 1, kAnd = 2, kNot = 3, kCompare = 4, kAdd = 5, kMul = 6, kUnary = 7;

  [[noreturn]] void fail(std::string message, std::size_t column) {
    throw ExprSyntaxError(std::move(message) + " at column " + std::to_string(column), column);
  }

  const Token& peek(std::size_t ahead = 0) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  const Token& take() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }

  bool is_word(const Token& t, std::string_view w) const {
    return t.kind == Tok::path && !t.quoted && t.segments.size() == 1 && t.text == w;
  }

  void expect(Tok kind, const char* what, std::size_t open_column, const char* context) {
    if (peek().kind != kind) {
      std::string msg = std::string("expected ") + what + " " + context;
      if (open_column != std::string::npos) msg += " (opened at column " + std::to_string(open_column) + ")";
      msg += ", found " + describe(peek());
      fail(msg, peek().column);
    }
    take();
  }

  // The binary operator at the cursor, with its binding power; 0 when none.
  int infix(Op& op, std::size_t& width) const {
    const Token& t = peek();
    width = 1;
    if (t.kind == Tok::op) {
      const std::string& s = t.text;
      if (s == "||") return op = Op::or_, kOr;
      if (s == "&&") return op = Op::and_, kAnd;
      if (s == "==") return op = Op::eq, kCompare;
      if (s == "!=") return op = Op::ne, kCompare;
      if (s == "<") return op = Op::lt, kCompare;
      if (s == "<=") return op = Op::le, kCompare;
      if (s == ">") return op = Op::gt, kCompare;
      if (s == ">=") return op = Op::ge, kCompare;
      if (s == "+") return op = Op::add, kAdd;
      if (s == "-") return op = Op::sub, kAdd;
      if (s == "*") return op = Op::mul, kMul;
      if (s == "/") return op = Op::div, kMul;
      if (s == "%") return op = Op::mod, kMul;
      return 0;
    }
    if (is_word(t, "or")) return op = Op::or_, kOr;
    if (is_word(t, "and")) return op = Op::and_, kAnd;
    if (is_word(t, "in")) return op = Op::in, kCompare;
    if (is_word(t, "not") && is_word(peek(1), "in")) {
      width = 2;
      return op = Op::not_in, kCompare;
    }
    return 0;
  }

  std::unique_ptr<Node> expr(int min_bp) {
    // Each level of parentheses, lists, calls and prefix operators comes through here.
    if (++depth_ > Expr::kMaxDepth)
      fail("expression nested deeper than " + std::to_string(Expr::kMaxDepth) + " levels", peek().column);
    auto lhs = prefix();
    for (;;) {
      Op op;
      std::size_t width;
      int bp = infix(op, width);
      if (bp == 0 || bp <= min_bp) break;
      std::size_t column = peek().column;
      for (std::size_t k = 0; k < width; ++k) take();
      auto rhs = expr(bp);  // left-associative
      auto n = make(op, column);
      n->args.push_back(std::move(lhs));
      n->args.push_back(std::move(rhs));
      lhs = sealed(std::move(n));
    }
    --depth_;
    return lhs;
  }

  // `n` with its height, which must stay within Expr::kMaxDepth: a chain `a + b + c ...` nests
  // without recursing in the parser, but evaluating it recurses once per operand.
  std::unique_ptr<Node> sealed(std::unique_ptr<Node> n) {
    std::size_t below = 0;
    for (const auto& a : n->args) below = std::max(below, a->height);
    n->height = below + 1;
    if (n->height > Expr::kMaxDepth)
      fail("expression nested deeper than " + std::to_string(Expr::kMaxDepth) + " levels", n->column);
    return n;
  }

  std::unique_ptr<Node> prefix() {
    const Token& t = peek();
    switch (t.kind) {
      case Tok::integer: {
        auto n = make(Op::literal, t.column);
        n->literal = Value(t.int_value);
        take();
        return n;
      }
      case Tok::real: {
        auto n = make(Op::literal, t.column);
        n->literal = Value(t.real_value);
        take();
        return n;
      }
      case Tok::string: {
        auto n = make(Op::literal, t.column);
        n->literal = Value(t.text);
        take();
        return n;
      }
      case Tok::root: {
        auto n = make(Op::root, t.column);
        take();
        note_field(".");
        return n;
      }
      case Tok::lparen: {
        std::size_t open = t.column;
        take();
        auto inner = expr(0);
        expect(Tok::rparen, "')'", open, "to close '('");
        return inner;
      }
      case Tok::lbracket: return array();
      case Tok::op: {
        if (t.text == "-" || t.text == "!") {
          Op op = t.text == "-" ? Op::neg : Op::not_;
          std::size_t column = t.column;
          take();
          auto operand = expr(kUnary - 1);
          if (op == Op::neg && operand->op == Op::literal && operand->literal.is_number() &&
              !(operand->literal.kind() == Value::Kind::integer &&
                operand->literal.as_int() == std::numeric_limits<std::int64_t>::min())) {
            if (operand->literal.kind() == Value::Kind::integer)
              operand->literal = Value(-operand->literal.as_int());
            else
              operand->literal = Value(-operand->literal.as_double());
            operand->column = column;
            return operand;
          }
          auto n = make(op, column);
          n->args.push_back(std::move(operand));
          return sealed(std::move(n));
        }
        fail("expected an expression, found " + describe(t), t.column);
      }
      case Tok::path: return path_or_call();
      case Tok::end: fail("expected an expression, found end of input", t.column);
      default: fail("expected an expression, found " + describe(t), t.column);
    }
  }

  std::unique_ptr<Node> array() {
    std::size_t open = take().column;
    auto n = make(Op::array, open);
    if (peek().kind != Tok::rbracket) {
      for (;;) {
        n->args.push_back(expr(0));
        if (peek().kind != Tok::comma) break;
        take();
      }
    }
    expect(Tok::rbracket, "',' or ']'", open, "in list");
    // A list of literals is a literal.
    bool all_literal =
        std::all_of(n->args.begin(), n->args.end(), [](auto& a) { return a->op == Op::literal; });
    if (all_literal) {
      Array items;
      items.reserve(n->args.size());
      for (auto& a : n->args) items.push_back(std::move(a->literal));
      n->args.clear();
      n->op = Op::literal;
      n->literal = Value(std::move(items));
    }
    return sealed(std::move(n));
  }

  std::unique_ptr<Node> path_or_call() {
    const Token& t = peek();
    std::size_t column = t.column;
    bool simple = !t.quoted && t.segments.size() == 1 && t.text == t.segments[0].name;
    if (simple) {
      const std::string& w = t.text;
      if (w == "true" || w == "false" || w == "null") {
        auto n = make(Op::literal, column);
        if (w != "null") n->literal = Value(w == "true");
        take();
        return n;
      }
      if (w == "not") {
        take();
        auto n = make(Op::not_, column);
        n->args.push_back(expr(kNot - 1));
        return sealed(std::move(n));
      }
      if (w == "and" || w == "or" || w == "in") fail("expected an expression, found '" + w + "'", column);
      if (peek(1).kind == Tok::lparen) return call();
      static constexpr std::pair<const char*, Meta> kMeta[] = {{"_key", Meta::key},
                                                               {"_topic", Meta::topic},
                                                               {"_partition", Meta::partition},
                                                               {"_offset", Meta::offset},
                                                               {"_timestamp", Meta::timestamp}};
      for (const auto& [name, meta] : kMeta) {
        if (w == name) {
          auto n = make(Op::meta, column);
          n->meta = meta;
          take();
          return n;
        }
      }
    } else if (peek(1).kind == Tok::lparen && !t.quoted) {
      fail("'" + t.text + "' is not a function", column);
    }
    auto n = make(Op::field, column);
    n->path = t.segments;
    n->path_text = path_key(t.segments);
    note_field(n->path_text);
    take();
    return n;
  }

  std::unique_ptr<Node> call() {
    const Token& name = take();
    std::string fname = name.text;
    std::size_t column = name.column;
    const FnSpec* spec = find_function(fname);
    if (!spec) {
      std::string known;
      for (const auto& f : kFunctions) {
        if (!known.empty()) known += ", ";
        known += f.name;
      }
      fail("unknown function '" + fname + "' (known: " + known + ")", column);
    }
    std::size_t open = take().column;  // '('
    auto n = make(Op::call, column);
    n->fn = spec->fn;
    if (peek().kind != Tok::rparen) {
      for (;;) {
        n->args.push_back(expr(0));
        if (peek().kind != Tok::comma) break;
        take();
      }
    }
    expect(Tok::rparen, "',' or ')'", open, ("in call to " + fname + "()").c_str());
    int count = static_cast<int>(n->args.size());
    if (count < spec->min_args || (spec->max_args >= 0 && count > spec->max_args)) {
      std::string want;
      if (spec->min_args == spec->max_args)
        want = std::to_string(spec->min_args);
      else if (spec->max_args < 0)
        want = "at least " + std::to_string(spec->min_args);
      else
        want = std::to_string(spec->min_args) + " or " + std::to_string(spec->max_args);
      fail(fname + "() takes " + want + " argument" + (want == "1" ? "" : "s") + ", got " +
               std::to_string(count),
           column);
    }
    return sealed(std::move(n));
  }

  void note_field(const std::string& path) {
    if (std::find(fields_.begin(), fields_.end(), path) == fields_.end()) fields_.push_back(path);
  }

  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;  // expr() calls in progress
  std::vector<std::string>& fields_;
};

// ---------------------------------------------------------------------------------------------
// Evaluation

const Value kNull;

const char* op_text(Op op) {
  switch (op) {
    case Op::add: return "+";
    case Op::sub: return "-";
    case Op::mul: return "*";
    case Op::div: return "/";
    case Op::mod: return "%";
    case Op::lt: return "<";
    case Op::le: return "<=";
    case Op::gt: return ">";
    case Op::ge: return ">=";
    case Op::neg: return "unary -";
    default: return "?";
  }
}

const char* fn_name(Fn fn) {
  for (const auto& f : kFunctions)
    if (f.fn == fn) return f.name;
  return "?";
}

bool fits_int64(double d) { return d >= -9223372036854775808.0 && d < 9223372036854775808.0; }

std::int64_t checked_int(double d, const char* what) {
  if (!std::isfinite(d) || !fits_int64(d))
    throw ExprError(std::string(what) + ": " + Value(d).to_json() + " does not fit a 64-bit integer");
  return static_cast<std::int64_t>(d);
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// Byte offset of code point `cp` (clamped to the end).
std::size_t utf8_offset(std::string_view s, std::size_t cp) {
  std::size_t i = 0;
  while (i < s.size() && cp > 0) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    --cp;
  }
  return i;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Parses text as a JSON-style number: integer when it has no fraction or exponent.
bool parse_number(std::string_view text, Value& out) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  if (text.empty()) return false;
  std::string_view digits = text.front() == '+' ? text.substr(1) : text;
  std::int64_t i = 0;
  auto res = std::from_chars(digits.data(), digits.data() + digits.size(), i);
  if (res.ec == std::errc() && res.ptr == digits.data() + digits.size()) {
    out = Value(i);
    return true;
  }
  double d = 0;
  auto rd = std::from_chars(digits.data(), digits.data() + digits.size(), d);
  if (rd.ec == std::errc() && rd.ptr == digits.data() + digits.size() && std::isfinite(d)) {
    out = Value(d);
    return true;
  }
  return false;
}

class Evaluator {
 public:
  explicit Evaluator(Event& event) : event_(event) {}

  // The value of `n`: a pointer into the record or the tree when no computation is needed,
  // else `scratch` holding the computed value.
  const Value* ref(const Node& n, Value& scratch) {
    switch (n.op) {
      case Op::literal: return &n.literal;
      case Op::field: {
        const Value* v = lookup(n);
        return v ? v : &kNull;
      }
      case Op::root: return &record();
      default: scratch = eval(n); return &scratch;
    }
  }

  Value eval(const Node& n) {
    switch (n.op) {
      case Op::literal: return n.literal;
      case Op::field: {
        const Value* v = lookup(n);
        return v ? *v : Value();
      }
      case Op::root: return record();
      case Op::meta: return meta(n.meta);
      case Op::neg: return negate(n);
      case Op::not_: return Value(!truthy(*n.args[0]));
      case Op::and_: return Value(truthy(*n.args[0]) && truthy(*n.args[1]));
      case Op::or_: return Value(truthy(*n.args[0]) || truthy(*n.args[1]));
      case Op::add:
      case Op::sub:
      case Op::mul:
      case Op::div:
      case Op::mod: return arith(n);
      case Op::eq:
      case Op::ne: {
        Value sa, sb;
        const Value* a = ref(*n.args[0], sa);
        const Value* b = ref(*n.args[1], sb);
        bool eq = *a == *b;
        return Value(n.op == Op::eq ? eq : !eq);
      }
      case Op::lt:
      case Op::le:
      case Op::gt:
      case Op::ge: {
        Value sa, sb;
        const Value* a = ref(*n.args[0], sa);
        const Value* b = ref(*n.args[1], sb);
        int c = order(*a, *b, n, *n.args[0], *n.args[1]);
        switch (n.op) {
          case Op::lt: return Value(c < 0);
          case Op::le: return Value(c <= 0);
          case Op::gt: return Value(c > 0);
          default: return Value(c >= 0);
        }
      }
      case Op::in:
      case Op::not_in: {
        bool found = member(n);
        return Value(n.op == Op::in ? found : !found);
      }
      case Op::array: {
        Array items;
        items.reserve(n.args.size());
        for (const auto& a : n.args) items.push_back(eval(*a));
        return Value(std::move(items));
      }
      case Op::call: return call(n);
    }
    return Value();
  }

  bool truthy(const Node& n) {
    Value s;
    return ref(n, s)->truthy();
  }

 private:
  const Value& record() {
    if (!record_) record_ = &event_.record();
    return *record_;
  }

  const Value* lookup(const Node& n) {
    const Value* cur = &record();
    for (const auto& seg : n.path) {
      if (cur->kind() == Value::Kind::object) {
        cur = cur->find(seg.name);
      } else if (seg.index >= 0 && cur->kind() == Value::Kind::array) {
        const auto& arr = cur->as_array();
        cur = static_cast<std::size_t>(seg.index) < arr.size() ? &arr[static_cast<std::size_t>(seg.index)]
                                                               : nullptr;
      } else {
        return nullptr;
      }
      if (!cur) return nullptr;
    }
    return cur;
  }

  Value meta(Meta m) const {
    switch (m) {
      case Meta::key: return event_.has_key ? Value(event_.key) : Value();
      case Meta::topic: return event_.topic.empty() ? Value() : Value(event_.topic.str());
      case Meta::partition: return Value(std::int64_t{event_.partition});
      case Meta::offset: return Value(event_.offset);
      case Meta::timestamp: return Value(event_.timestamp_ms);
    }
    return Value();
  }

  // "field 'a.b' is missing" / "field 'a.b' (string)" / "string" for messages.
  std::string what(const Node& n, const Value& v) {
    if (n.op == Op::field) {
      if (v.is_null())
        return lookup(n) ? "field '" + n.path_text + "' is null" : "field '" + n.path_text + "' is missing";
      return "field '" + n.path_text + "' (" + kind_name(v.kind()) + ")";
    }
    if (n.op == Op::meta && v.is_null()) return n.meta == Meta::key ? "_key is missing" : "_topic is missing";
    return std::string(kind_name(v.kind())) + (v.is_null() ? "" : " " + abbreviated(v));
  }

  static std::string abbreviated(const Value& v) {
    std::string s = v.to_json();
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return s;
  }

  [[noreturn]] void type_error(const Node& op, const Node& a, const Value& va, const Node* b,
                               const Value* vb) {
    // A missing or null operand is the most common cause: say just that.
    std::string name = op.op == Op::call ? std::string(fn_name(op.fn)) + "()" : std::string(op_text(op.op));
    if (va.is_null()) throw ExprError(what(a, va) + ", cannot apply '" + name + "'");
    if (b && vb->is_null()) throw ExprError(what(*b, *vb) + ", cannot apply '" + name + "'");
    std::string msg = "cannot apply '" + name + "' to " + what(a, va);
    if (b) msg += " and " + what(*b, *vb);
    throw ExprError(msg);
  }

  Value negate(const Node& n) {
    Value s;
    const Value* v = ref(*n.args[0], s);
    if (v->kind() == Value::Kind::integer) {
      if (v->as_int() == std::numeric_limits<std::int64_t>::min())
        throw ExprError("integer overflow in unary -");
      return Value(-v->as_int());
    }
    if (v->kind() == Value::Kind::real) return Value(-v->as_double());
    type_error(n, *n.args[0], *v, nullptr, nullptr);
  }

  Value arith(const Node& n) {
    Value sa, sb;
    const Value* a = ref(*n.args[0], sa);
    const Value* b = ref(*n.args[1], sb);
    using K = Value::Kind;
    if (a->kind() == K::integer && b->kind() == K::integer) {
      std::int64_t x = a->as_int(), y = b->as_int(), r = 0;
      bool overflow = false;
      switch (n.op) {
        case Op::add: overflow = __builtin_add_overflow(x, y, &r); break;
        case Op::sub: overflow = __builtin_sub_overflow(x, y, &r); break;
        case Op::mul: overflow = __builtin_mul_overflow(x, y, &r); break;
        case Op::div:
        case Op::mod:
          if (y == 0) throw ExprError(n.op == Op::div ? "division by zero" : "modulo by zero");
          if (x == std::numeric_limits<std::int64_t>::min() && y == -1) {
            if (n.op == Op::mod) return Value(std::int64_t{0});
            overflow = true;
            break;
          }
          r = n.op == Op::div ? x / y : x % y;
          break;
        default: break;
      }
      if (overflow)
        throw ExprError("integer overflow in " + std::to_string(x) + " " + op_text(n.op) + " " +
                        std::to_string(y));
      return Value(r);
    }
    if (a->is_number() && b->is_number()) {
      double x = a->as_double(), y = b->as_double(), r = 0;
      switch (n.op) {
        case Op::add: r = x + y; break;
        case Op::sub: r = x - y; break;
        case Op::mul: r = x * y; break;
        case Op::div:
          if (y == 0) throw ExprError("division by zero");
          r = x / y;
          break;
        case Op::mod:
          if (y == 0) throw ExprError("modulo by zero");
          r = std::fmod(x, y);
          break;
        default: break;
      }
      // JSON has no infinity or NaN: an overflow is a data error, never a null in the output.
      if (!std::isfinite(r))
        throw ExprError("number overflow in " + Value(x).to_json() + " " + op_text(n.op) + " " +
                        Value(y).to_json());
      return Value(r);
    }
    if (n.op == Op::add && a->kind() == K::string && b->kind() == K::string) {
      std::string out;
      out.reserve(a->as_string().size() + b->as_string().size());
      out += a->as_string();
      out += b->as_string();
      return Value(std::move(out));
    }
    type_error(n, *n.args[0], *a, n.args[1].get(), b);
  }

  int order(const Value& a, const Value& b, const Node& op, const Node& na, const Node& nb) {
    using K = Value::Kind;
    if (a.kind() == K::integer && b.kind() == K::integer)
      return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
    if (a.is_number() && b.is_number()) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y;
    }
    if (a.kind() == K::string && b.kind() == K::string) {
      int c = a.as_string().compare(b.as_string());
      return c < 0 ? -1 : c > 0;
    }
    if (a.kind() == K::boolean && b.kind() == K::boolean) return int(a.as_bool()) - int(b.as_bool());
    type_error(op, na, a, &nb, &b);
  }

  bool member(const Node& n) {
    Value sa, sb;
    const Value* a = ref(*n.args[0], sa);
    const Value* b = ref(*n.args[1], sb);
    switch (b->kind()) {
      case Value::Kind::array:
        for (const auto& item : b->as_array())
          if (*a == item) return true;
        return false;
      case Value::Kind::object:
        if (a->kind() != Value::Kind::string) break;
        return b->find(a->as_string()) != nullptr;
      case Value::Kind::string:
        if (a->kind() != Value::Kind::string) break;
        return b->as_string().find(a->as_string()) != std::string::npos;
      default: break;
    }
    throw ExprError(
        "'in' needs a list, an object or a string on its right (with a string on its left), got " +
        what(*n.args[0], *a) + " in " + what(*n.args[1], *b));
  }

  // Argument `i` of a call, checked to be of `kind`.
  const Value& arg(const Node& n, std::size_t i, Value& scratch, Value::Kind kind) {
    const Value* v = ref(*n.args[i], scratch);
    if (v->kind() == kind || (kind == Value::Kind::real && v->is_number())) return *v;
    bad_arg(n, i, *v,
            kind == Value::Kind::real     ? "a number"
            : kind == Value::Kind::string ? "a string"
                                          : "an integer");
  }

  [[noreturn]] void bad_arg(const Node& n, std::size_t i, const Value& v, const char* expected) {
    std::string wanted = std::string(expected) + " as argument " + std::to_string(i + 1);
    if (v.is_null())
      throw ExprError(std::string(fn_name(n.fn)) + "(): " + what(*n.args[i], v) + " (expected " + wanted +
                      ")");
    throw ExprError(std::string(fn_name(n.fn)) + "() expects " + wanted + ", got " + what(*n.args[i], v));
  }

  Value call(const Node& n) {
    using K = Value::Kind;
    Value s0, s1, s2;
    switch (n.fn) {
      case Fn::if_: return truthy(*n.args[0]) ? eval(*n.args[1]) : eval(*n.args[2]);
      case Fn::coalesce:
        for (const auto& a : n.args) {
          Value v = eval(*a);
          if (!v.is_null()) return v;
        }
        return Value();
      case Fn::is_null: return Value(ref(*n.args[0], s0)->is_null());
      case Fn::now_ms:
        return Value(static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count()));
      case Fn::lower:
      case Fn::upper: {
        std::string out = arg(n, 0, s0, K::string).as_string();
        for (auto& c : out) {
          if (n.fn == Fn::lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          if (n.fn == Fn::upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        }
        return Value(std::move(out));
      }
      case Fn::trim: {
        std::string_view sv = arg(n, 0, s0, K::string).as_string();
        while (!sv.empty() && is_space(sv.front())) sv.remove_prefix(1);
        while (!sv.empty() && is_space(sv.back())) sv.remove_suffix(1);
        return Value(std::string(sv));
      }
      case Fn::length: {
        const Value* v = ref(*n.args[0], s0);
        switch (v->kind()) {
          case K::string: return Value(static_cast<std::int64_t>(utf8_length(v->as_string())));
          case K::array: return Value(static_cast<std::int64_t>(v->as_array().size()));
          case K::object: return Value(static_cast<std::int64_t>(v->as_object().size()));
          default: bad_arg(n, 0, *v, "a string, an array or an object");
        }
      }
      case Fn::concat: {
        std::string out;
        for (const auto& a : n.args) {
          Value s;
          const Value* v = ref(*a, s);
          if (v->kind() == K::string)
            out += v->as_string();
          else if (!v->is_null())
            v->append_json(out);
        }
        return Value(std::move(out));
      }
      case Fn::contains: {
        const Value* hay = ref(*n.args[0], s0);
        if (hay->kind() == K::array) {
          const Value* needle = ref(*n.args[1], s1);
          for (const auto& item : hay->as_array())
            if (item == *needle) return Value(true);
          return Value(false);
        }
        if (hay->kind() != K::string) bad_arg(n, 0, *hay, "a string or an array");
        const auto& sub = arg(n, 1, s1, K::string).as_string();
        return Value(hay->as_string().find(sub) != std::string::npos);
      }
      case Fn::starts_with:
      case Fn::ends_with: {
        std::string_view str = arg(n, 0, s0, K::string).as_string();
        std::string_view fix = arg(n, 1, s1, K::string).as_string();
        return Value(n.fn == Fn::starts_with ? str.starts_with(fix) : str.ends_with(fix));
      }
      case Fn::substr: {
        std::string_view str = arg(n, 0, s0, K::string).as_string();
        std::int64_t start = arg(n, 1, s1, K::integer).as_int();
        auto len_cp = static_cast<std::int64_t>(utf8_length(str));
        if (start < 0) start = std::max<std::int64_t>(0, len_cp + start);
        std::size_t b = utf8_offset(str, static_cast<std::size_t>(start));
        std::size_t e = str.size();
        if (n.args.size() == 3) {
          std::int64_t len = arg(n, 2, s2, K::integer).as_int();
          if (len < 0) throw ExprError("substr(): negative length " + std::to_string(len));
          e = b + utf8_offset(str.substr(b), static_cast<std::size_t>(len));
        }
        return Value(std::string(str.substr(b, e - b)));
      }
      case Fn::replace: {
        const std::string& str = arg(n, 0, s0, K::string).as_string();
        const std::string& from = arg(n, 1, s1, K::string).as_string();
        const std::string& to = arg(n, 2, s2, K::string).as_string();
        if (from.empty()) return Value(str);
        std::string out;
        std::size_t pos = 0;
        for (;;) {
          std::size_t hit = str.find(from, pos);
          if (hit == std::string::npos) break;
          out.append(str, pos, hit - pos);
          out += to;
          pos = hit + from.size();
        }
        out.append(str, pos);
        return Value(std::move(out));
      }
      case Fn::to_int: {
        const Value* v = ref(*n.args[0], s0);
        switch (v->kind()) {
          case K::null: return Value();
          case K::integer: return *v;
          case K::real: return Value(checked_int(std::trunc(v->as_double()), "to_int()"));
          case K::boolean: return Value(std::int64_t{v->as_bool() ? 1 : 0});
          case K::string: {
            Value num;
            if (!parse_number(v->as_string(), num))
              throw ExprError("to_int(): " + what(*n.args[0], *v) + " is not a number");
            if (num.kind() == K::integer) return num;
            return Value(checked_int(std::trunc(num.as_double()), "to_int()"));
          }
          default: bad_arg(n, 0, *v, "a number, a string or a boolean");
        }
      }
      case Fn::to_number: {
        const Value* v = ref(*n.args[0], s0);
        switch (v->kind()) {
          case K::null:
          case K::integer:
          case K::real: return *v;
          case K::boolean: return Value(std::int64_t{v->as_bool() ? 1 : 0});
          case K::string: {
            Value num;
            if (!parse_number(v->as_string(), num))
              throw ExprError("to_number(): " + what(*n.args[0], *v) + " is not a number");
            return num;
          }
          default: bad_arg(n, 0, *v, "a number, a string or a boolean");
        }
      }
      case Fn::to_string: {
        const Value* v = ref(*n.args[0], s0);
        if (v->is_null()) return Value();
        return Value(v->to_text());
      }
      case Fn::to_bool: {
        const Value* v = ref(*n.args[0], s0);
        switch (v->kind()) {
          case K::null:
          case K::boolean: return *v;
          case K::integer:
          case K::real: return Value(v->as_double() != 0);
          case K::string: {
            std::string t = v->as_string();
            for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (t == "true" || t == "1" || t == "yes" || t == "y" || t == "on" || t == "t")
              return Value(true);
            if (t == "false" || t == "0" || t == "no" || t == "n" || t == "off" || t == "f" || t.empty())
              return Value(false);
            throw ExprError("to_bool(): " + what(*n.args[0], *v) + " is not a boolean");
          }
          default: bad_arg(n, 0, *v, "a boolean, a number or a string");
        }
      }
      case Fn::abs: {
        const Value& v = arg(n, 0, s0, K::real);
        if (v.kind() == K::integer) {
          if (v.as_int() == std::numeric_limits<std::int64_t>::min())
            throw ExprError("integer overflow in abs()");
          return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
        }
        return Value(std::fabs(v.as_double()));
      }
      case Fn::round: {
        const Value& v = arg(n, 0, s0, K::real);
        if (n.args.size() == 1) {
          if (v.kind() == K::integer) return v;
          return Value(checked_int(std::round(v.as_double()), "round()"));
        }
        std::int64_t digits = arg(n, 1, s1, K::integer).as_int();
        if (digits < -18 || digits > 18) throw ExprError("round(): digits must be between -18 and 18");
        if (v.kind() == K::integer && digits >= 0) return v;
        double r;
        if (digits >= 0) {
          double p = std::pow(10.0, static_cast<double>(digits));
          r = std::round(v.as_double() * p) / p;
        } else {
          double q = std::pow(10.0, static_cast<double>(-digits));
          r = std::round(v.as_double() / q) * q;
        }
        if (v.kind() == K::integer) return Value(checked_int(r, "round()"));
        if (!std::isfinite(r)) throw ExprError("round(): number overflow rounding " + v.to_json());
        return Value(r);
      }
      case Fn::floor:
      case Fn::ceil: {
        const Value& v = arg(n, 0, s0, K::real);
        if (v.kind() == K::integer) return v;
        double d = n.fn == Fn::floor ? std::floor(v.as_double()) : std::ceil(v.as_double());
        return Value(checked_int(d, n.fn == Fn::floor ? "floor()" : "ceil()"));
      }
      case Fn::min:
      case Fn::max: {
        Value best;
        std::size_t best_i = 0;
        for (std::size_t i = 0; i < n.args.size(); ++i) {
          Value v = eval(*n.args[i]);
          if (v.is_null()) continue;
          if (best.is_null()) {
            best = std::move(v);
            best_i = i;
            continue;
          }
          int c = order(v, best, n, *n.args[i], *n.args[best_i]);
          if (n.fn == Fn::min ? c < 0 : c > 0) {
            best = std::move(v);
            best_i = i;
          }
        }
        return best;
      }
    }
    return Value();
  }

  Event& event_;
  const Value* record_ = nullptr;
};

}  // namespace

Expr Expr::compile(std::string_view text) {
  Expr e;
  e.text_ = std::string(text);
  e.root_ = Parser(Lexer(text).run(), e.fields_).run();
  return e;
}

Value Expr::eval(Event& event) const {
  Evaluator ev(event);
  return ev.eval(*root_);
}

bool Expr::eval_bool(Event& event) const {
  Evaluator ev(event);
  return ev.truthy(*root_);
}

Expr::Expr(Expr&&) noexcept = default;
Expr& Expr::operator=(Expr&&) noexcept = default;
Expr::~Expr() = default;

}  // namespace etld
