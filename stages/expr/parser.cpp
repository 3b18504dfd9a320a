// A Pratt parser: binding powers for the infix operators, prefix operators and calls; literal
// lists and negated number literals fold into literals; nesting is bounded (Expr::kMaxDepth) so
// that neither parsing nor evaluating can exhaust the stack.
#include "stages/expr/parser.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "stages/expr/functions.hpp"

namespace etld::expr_detail {

namespace {

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
      syntax_error("unexpected " + describe(peek()) + " after a complete expression; expected an operator",
                   peek().column);
    return root;
  }

 private:
  // Binding powers, loosest first.
  static constexpr int kOr = 1, kAnd = 2, kNot = 3, kCompare = 4, kAdd = 5, kMul = 6, kUnary = 7;

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
      syntax_error(msg, peek().column);
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
      syntax_error("expression nested deeper than " + std::to_string(Expr::kMaxDepth) + " levels",
                   peek().column);
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
      syntax_error("expression nested deeper than " + std::to_string(Expr::kMaxDepth) + " levels", n->column);
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
        syntax_error("expected an expression, found " + describe(t), t.column);
      }
      case Tok::path: return path_or_call();
      case Tok::end: syntax_error("expected an expression, found end of input", t.column);
      default: syntax_error("expected an expression, found " + describe(t), t.column);
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
      if (w == "and" || w == "or" || w == "in")
        syntax_error("expected an expression, found '" + w + "'", column);
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
      syntax_error("'" + t.text + "' is not a function", column);
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
    if (!spec) syntax_error("unknown function '" + fname + "' (known: " + function_names() + ")", column);
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
      syntax_error(fname + "() takes " + want + " argument" + (want == "1" ? "" : "s") + ", got " +
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

}  // namespace

std::unique_ptr<Node> parse(std::vector<Token> tokens, std::vector<std::string>& fields) {
  return Parser(std::move(tokens), fields).run();
}

}  // namespace etld::expr_detail
