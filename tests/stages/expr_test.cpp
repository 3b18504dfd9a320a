// The expression language: syntax, precedence, types, functions, missing fields, metadata and
// the errors (syntax errors with their column, data errors with a clear reason).
#include "stages/expr/expr.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

namespace etld {
namespace {

const char* kRecord = R"({"a": 7, "b": 2, "x": 2.5, "s": "Hello", "t": "  pad  ", "flag": true, "off": false,
  "n": null, "list": [1, 2, 3], "obj": {"k": "v", "deep": {"z": 42}}, "status": "paid",
  "weird name": 5, "big": 9223372036854775807, "small": -9223372036854775808, "num_s": "42",
  "real_s": "3.75", "items": [{"sku": "a"}, {"sku": "b"}], "empty": "", "u": "héllo"})";

Event make_event(const std::string& json = kRecord) {
  Event e;
  e.value = json;
  e.key = "k1";
  e.has_key = true;
  e.topic = "orders";
  e.partition = 3;
  e.offset = 99;
  e.timestamp_ms = 1700000000000;
  return e;
}

Value eval(const std::string& text, const std::string& json = kRecord) {
  Event e = make_event(json);
  return Expr::compile(text).eval(e);
}

// The result as JSON text: compact to compare.
std::string J(const std::string& text, const std::string& json = kRecord) {
  return eval(text, json).to_json();
}

std::string error_of(const std::string& text, const std::string& json = kRecord) {
  try {
    eval(text, json);
  } catch (const ExprError& e) {
    return e.what();
  }
  return "<no error>";
}

// Column of the syntax error, or -1 when it compiles.
long syntax_column(const std::string& text, std::string* message = nullptr) {
  try {
    Expr::compile(text);
  } catch (const ExprSyntaxError& e) {
    if (message) *message = e.what();
    return static_cast<long>(e.column);
  }
  return -1;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

TEST_CASE("literals") {
  CHECK(J("1") == "1");
  CHECK(J("42") == "42");
  CHECK(J("1.5") == "1.5");
  CHECK(J("2e3") == "2000.0");
  CHECK(J("1.5E-1") == "0.15");
  CHECK(J("'single'") == "\"single\"");
  CHECK(J("\"double\"") == "\"double\"");
  CHECK(J(R"('it\'s')") == R"("it's")");
  CHECK(J(R"("a\"b")") == R"("a\"b")");
  CHECK(J(R"('tab\there\nline\\')") == R"("tab\there\nline\\")");
  CHECK(eval(R"('\u00e9')").as_string() == "\xc3\xa9");
  CHECK(eval(R"('\ud83d\ude00')").as_string() == "\xf0\x9f\x98\x80");
  CHECK(J("'mixed \"quotes\"'") == R"("mixed \"quotes\"")");
  CHECK(J("true") == "true");
  CHECK(J("false") == "false");
  CHECK(J("null") == "null");
  CHECK(J("[1, 'a', true, null]") == R"([1,"a",true,null])");
  CHECK(J("[]") == "[]");
  CHECK(J("[a, b + 1]") == "[7,3]");
  CHECK(J("-5") == "-5");
  CHECK(J("-9223372036854775807") == "-9223372036854775807");
}

TEST_CASE("field paths") {
  CHECK(J("a") == "7");
  CHECK(J("obj.k") == "\"v\"");
  CHECK(J("obj.deep.z") == "42");
  CHECK(J("obj.deep") == R"({"z":42})");
  CHECK(J("`weird name`") == "5");
  CHECK(J("`weird name` + 1") == "6");
  CHECK(J("list.1") == "2");
  CHECK(J("items.0.sku") == "\"a\"");
  CHECK(J("items.5.sku") == "null");
  CHECK(J(".a") == "7");
  CHECK(J(".").rfind(R"({"a":7,"b":2,)", 0) == 0);
  CHECK(J(".", R"({"q":1})") == R"({"q":1})");
  CHECK(J(".", "[1,2]") == "[1,2]");
  CHECK(J("missing") == "null");
  CHECK(J("obj.missing.deeper") == "null");
  CHECK(J("a.b") == "null");  // through a number
  CHECK(J("n") == "null");
  CHECK(J("`_key`", R"({"_key": "in record"})") == "\"in record\"");
  CHECK(J("obj.`k`") == "\"v\"");
}

TEST_CASE("fields() lists the record paths read") {
  auto e = Expr::compile("a + obj.deep.z * a + `weird name` + _key + length(.)");
  CHECK(e.fields() == std::vector<std::string>{"a", "obj.deep.z", "weird name", "."});
  CHECK(Expr::compile("1 + 2").fields().empty());
  CHECK(Expr::compile("1 + 2").text() == "1 + 2");
}

TEST_CASE("metadata") {
  CHECK(J("_key") == "\"k1\"");
  CHECK(J("_topic") == "\"orders\"");
  CHECK(J("_partition") == "3");
  CHECK(J("_offset") == "99");
  CHECK(J("_timestamp") == "1700000000000");
  CHECK(J("_offset + 1") == "100");
  CHECK(J("_topic + '/' + to_string(_partition)") == "\"orders/3\"");
  Event e = make_event("not json at all");
  e.has_key = false;
  // Metadata does not parse the payload.
  CHECK(Expr::compile("_offset").eval(e).as_int() == 99);
  CHECK(Expr::compile("_key").eval(e).is_null());
  CHECK_THROWS_AS(Expr::compile("a").eval(e), JsonError);
}

TEST_CASE("arithmetic: integers stay integers") {
  CHECK(J("1 + 2") == "3");
  CHECK(J("a - b") == "5");
  CHECK(J("a * b") == "14");
  CHECK(J("a / b") == "3");
  CHECK(J("-7 / 2") == "-3");
  CHECK(J("a % b") == "1");
  CHECK(J("-7 % 3") == "-1");
  CHECK(J("a * 1.0 / b") == "3.5");
  CHECK(J("x * 2") == "5.0");
  CHECK(J("x + a") == "9.5");
  CHECK(J("7.5 % 2") == "1.5");
  CHECK(J("-a") == "-7");
  CHECK(J("-x") == "-2.5");
  CHECK(J("- -a") == "7");
  CHECK(J("'ab' + 'cd'") == "\"abcd\"");
  CHECK(J("s + ', ' + status") == "\"Hello, paid\"");
}

TEST_CASE("arithmetic errors") {
  CHECK(contains(error_of("big + 1"), "integer overflow"));
  CHECK(contains(error_of("small - 1"), "integer overflow"));
  CHECK(contains(error_of("big * 2"), "integer overflow"));
  CHECK(contains(error_of("-small"), "integer overflow"));
  CHECK(contains(error_of("small / -1"), "integer overflow"));
  CHECK(J("small % -1") == "0");
  CHECK(error_of("a / 0") == "division by zero");
  CHECK(error_of("x / 0") == "division by zero");
  CHECK(error_of("a % 0") == "modulo by zero");
  CHECK(error_of("amount * 100") == "field 'amount' is missing, cannot apply '*'");
  CHECK(error_of("n + 1") == "field 'n' is null, cannot apply '+'");
  CHECK(error_of("1 + obj.nope") == "field 'obj.nope' is missing, cannot apply '+'");
  CHECK(error_of("-missing") == "field 'missing' is missing, cannot apply 'unary -'");
  CHECK(contains(error_of("s + 1"), "cannot apply '+' to field 's' (string) and integer 1"));
  CHECK(contains(error_of("s - 'a'"), "cannot apply '-'"));
  CHECK(contains(error_of("flag * 2"), "field 'flag' (boolean)"));
  CHECK(contains(error_of("-s"), "cannot apply 'unary -'"));
  CHECK(contains(error_of("list + 1"), "array"));
}

TEST_CASE("precedence and associativity") {
  CHECK(J("1 + 2 * 3") == "7");
  CHECK(J("(1 + 2) * 3") == "9");
  CHECK(J("10 - 4 - 3") == "3");
  CHECK(J("100 / 10 / 5") == "2");
  CHECK(J("2 * 3 % 4") == "2");
  CHECK(J("-2 * 3") == "-6");
  CHECK(J("-(2 + 3)") == "-5");
  CHECK(J("1 + 2 == 3") == "true");
  CHECK(J("1 < 2 == true") == "true");  // left-assoc: (1 < 2) == true
  CHECK(J("true or false and false") == "true");
  CHECK(J("(true or false) and false") == "false");
  CHECK(J("not a == 7") == "false");     // not binds looser than ==
  CHECK(J("!flag == false") == "true");  // ! binds tighter: (!flag) == false
  CHECK(J("not flag or true") == "true");
  CHECK(J("not (flag or true)") == "false");
  CHECK(J("a > 1 && b > 1 || false") == "true");
  CHECK(J("a + 1 in [8, 9]") == "true");
  CHECK(J("((((a))))") == "7");
}

TEST_CASE("comparisons") {
  CHECK(J("a == 7") == "true");
  CHECK(J("a == 7.0") == "true");
  CHECK(J("a != 7") == "false");
  CHECK(J("x < a") == "true");
  CHECK(J("2 <= 2") == "true");
  CHECK(J("3 > 2.5") == "true");
  CHECK(J("2.5 >= 2.5") == "true");
  CHECK(J("'abc' < 'abd'") == "true");
  CHECK(J("'B' < 'a'") == "true");  // bytewise
  CHECK(J("status == 'paid'") == "true");
  CHECK(J("status == \"paid\"") == "true");
  CHECK(J("status != 'paid'") == "false");
  CHECK(J("a == '7'") == "false");  // mismatched kinds: never equal
  CHECK(J("a != '7'") == "true");
  CHECK(J("missing == null") == "true");
  CHECK(J("n == null") == "true");
  CHECK(J("missing == 1") == "false");
  CHECK(J("missing != 1") == "true");
  CHECK(J("list == [1, 2, 3]") == "true");
  CHECK(J("obj.deep == obj.deep") == "true");
  CHECK(J("false < true") == "true");
  CHECK(contains(error_of("a < 's'"), "cannot apply '<' to field 'a' (integer) and string \"s\""));
  CHECK(error_of("missing > 1") == "field 'missing' is missing, cannot apply '>'");
  CHECK(contains(error_of("list < list"), "cannot apply '<'"));
  CHECK(contains(error_of("null <= null"), "cannot apply '<='"));
}

TEST_CASE("boolean logic and short-circuit") {
  CHECK(J("true and true") == "true");
  CHECK(J("true && false") == "false");
  CHECK(J("false or true") == "true");
  CHECK(J("false || false") == "false");
  CHECK(J("not true") == "false");
  CHECK(J("!false") == "true");
  CHECK(J("!!a") == "true");
  CHECK(J("not missing") == "true");
  CHECK(J("a and s") == "true");  // truthiness of non-booleans; result is a boolean
  CHECK(J("empty or 0 or list") == "true");
  CHECK(J("empty or 0") == "false");
  // The right side is not evaluated when the left decides.
  CHECK(J("false and 1 / 0 == 1") == "false");
  CHECK(J("true or missing + 1 > 0") == "true");
  CHECK(J("a == 7 || x / 0 > 1") == "true");
  CHECK(error_of("true and 1 / 0 == 1") == "division by zero");
}

TEST_CASE("in and not in") {
  CHECK(J("status in ['paid', 'shipped']") == "true");
  CHECK(J("status in ['new']") == "false");
  CHECK(J("status not in ['new', 'void']") == "true");
  CHECK(J("a in [1, 7.0]") == "true");
  CHECK(J("2 in list") == "true");
  CHECK(J("'k' in obj") == "true");
  CHECK(J("'nope' in obj") == "false");
  CHECK(J("'ell' in s") == "true");
  CHECK(J("missing in [null]") == "true");
  CHECK(J("not status in ['paid']") == "false");
  CHECK(contains(error_of("1 in a"), "'in' needs a list"));
  CHECK(contains(error_of("1 in s"), "'in' needs a list"));
}

TEST_CASE("if") {
  CHECK(J("if(a > 5, 'big', 'small')") == "\"big\"");
  CHECK(J("if(a > 50, 'big', 'small')") == "\"small\"");
  CHECK(J("if(missing, 1, 2)") == "2");
  CHECK(J("if(true, 1, 1 / 0)") == "1");  // lazy
  CHECK(J("if(false, 1 / 0, 2)") == "2");
  CHECK(J("if(a > 5, if(b > 5, 1, 2), 3)") == "2");
}

TEST_CASE("string functions") {
  CHECK(J("lower(s)") == "\"hello\"");
  CHECK(J("upper(s)") == "\"HELLO\"");
  CHECK(J("trim(t)") == "\"pad\"");
  CHECK(J("trim('\\t x \\n')") == "\"x\"");
  CHECK(J("length(s)") == "5");
  CHECK(J("length(u)") == "5");  // code points, not bytes
  CHECK(J("length(list)") == "3");
  CHECK(J("length(obj)") == "2");
  CHECK(J("length('')") == "0");
  CHECK(J("concat(s, ' ', a, ' ', x, missing, flag)") == "\"Hello 7 2.5true\"");
  CHECK(J("concat()") == "\"\"");
  CHECK(J("contains(s, 'ell')") == "true");
  CHECK(J("contains(s, 'xyz')") == "false");
  CHECK(J("contains(list, 2)") == "true");
  CHECK(J("contains(list, 5)") == "false");
  CHECK(J("starts_with(s, 'He')") == "true");
  CHECK(J("starts_with(s, 'he')") == "false");
  CHECK(J("ends_with(s, 'llo')") == "true");
  CHECK(J("substr(s, 1)") == "\"ello\"");
  CHECK(J("substr(s, 1, 3)") == "\"ell\"");
  CHECK(J("substr(s, 10)") == "\"\"");
  CHECK(J("substr(s, 2, 100)") == "\"llo\"");
  CHECK(J("substr(s, -3)") == "\"llo\"");
  CHECK(J("substr(s, -30, 2)") == "\"He\"");
  CHECK(eval("substr(u, 1, 2)").as_string() == "\xc3\xa9l");
  CHECK(J("replace('a-b-c', '-', '+')") == "\"a+b+c\"");
  CHECK(J("replace('aaa', 'a', 'bb')") == "\"bbbbbb\"");
  CHECK(J("replace(s, '', 'x')") == "\"Hello\"");
  CHECK(contains(error_of("lower(a)"), "lower() expects a string as argument 1, got field 'a' (integer)"));
  CHECK(error_of("upper(missing)") ==
        "upper(): field 'missing' is missing (expected a string as argument 1)");
  CHECK(contains(error_of("length(a)"), "length() expects a string, an array or an object"));
  CHECK(contains(error_of("substr(s, 'x')"), "substr() expects an integer as argument 2"));
  CHECK(contains(error_of("substr(s, 0, -1)"), "negative length"));
  CHECK(contains(error_of("contains(a, 1)"), "contains() expects a string or an array"));
  CHECK(contains(error_of("starts_with(s, 1)"), "starts_with() expects a string as argument 2"));
}

TEST_CASE("conversion functions") {
  CHECK(J("to_int(num_s)") == "42");
  CHECK(J("to_int(' 17 ')") == "17");
  CHECK(J("to_int(real_s)") == "3");
  CHECK(J("to_int(-2.9)") == "-2");
  CHECK(J("to_int(a)") == "7");
  CHECK(J("to_int(true)") == "1");
  CHECK(J("to_int(missing)") == "null");
  CHECK(J("to_number(num_s)") == "42");
  CHECK(J("to_number(real_s)") == "3.75");
  CHECK(J("to_number(x)") == "2.5");
  CHECK(J("to_number(false)") == "0");
  CHECK(J("to_string(a)") == "\"7\"");
  CHECK(J("to_string(x)") == "\"2.5\"");
  CHECK(J("to_string(s)") == "\"Hello\"");
  CHECK(J("to_string(flag)") == "\"true\"");
  CHECK(J("to_string(list)") == "\"[1,2,3]\"");
  CHECK(J("to_string(missing)") == "null");
  CHECK(J("to_bool('true')") == "true");
  CHECK(J("to_bool('No')") == "false");
  CHECK(J("to_bool(0)") == "false");
  CHECK(J("to_bool(2.5)") == "true");
  CHECK(J("to_bool(flag)") == "true");
  CHECK(J("to_bool(missing)") == "null");
  CHECK(contains(error_of("to_int('abc')"), "to_int(): string \"abc\" is not a number"));
  CHECK(contains(error_of("to_int(s)"), "field 's' (string) is not a number"));
  CHECK(contains(error_of("to_int(1e30)"), "does not fit a 64-bit integer"));
  CHECK(contains(error_of("to_number('12abc')"), "is not a number"));
  CHECK(contains(error_of("to_bool('maybe')"), "is not a boolean"));
  CHECK(contains(error_of("to_int(list)"), "to_int() expects"));
}

TEST_CASE("number functions") {
  CHECK(J("abs(-3)") == "3");
  CHECK(J("abs(-2.5)") == "2.5");
  CHECK(J("abs(a)") == "7");
  CHECK(J("round(2.5)") == "3");
  CHECK(J("round(-2.5)") == "-3");
  CHECK(J("round(2.4)") == "2");
  CHECK(J("round(7)") == "7");
  CHECK(J("round(3.14159, 2)") == "3.14");
  CHECK(J("round(1234, -2)") == "1200");
  CHECK(J("round(a, 2)") == "7");
  CHECK(J("floor(2.7)") == "2");
  CHECK(J("floor(-2.1)") == "-3");
  CHECK(J("ceil(2.1)") == "3");
  CHECK(J("ceil(a)") == "7");
  CHECK(J("min(a, b)") == "2");
  CHECK(J("max(a, b)") == "7");
  CHECK(J("max(a, x, 10)") == "10");
  CHECK(J("min(x, a)") == "2.5");
  CHECK(J("min('b', 'a')") == "\"a\"");
  CHECK(J("min(missing, 3)") == "3");  // nulls ignored
  CHECK(J("max(missing, n)") == "null");
  CHECK(contains(error_of("abs(small)"), "integer overflow"));
  CHECK(contains(error_of("abs(s)"), "abs() expects a number"));
  CHECK(contains(error_of("round(x, 'a')"), "round() expects an integer as argument 2"));
  CHECK(contains(error_of("min(a, s)"), "cannot apply 'min()'"));
  CHECK(contains(error_of("floor(1e300)"), "does not fit"));
}

TEST_CASE("null helpers and now_ms") {
  CHECK(J("coalesce(missing, n, a)") == "7");
  CHECK(J("coalesce(missing)") == "null");
  CHECK(J("coalesce(a, 1 / 0)") == "7");  // lazy
  CHECK(J("is_null(missing)") == "true");
  CHECK(J("is_null(n)") == "true");
  CHECK(J("is_null(a)") == "false");
  CHECK(J("is_null(empty)") == "false");
  auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto now = eval("now_ms()").as_int();
  CHECK(now >= before);
  CHECK(now < before + 60'000);
}

TEST_CASE("whitespace is insignificant") {
  CHECK(J("  a\t+\n b  ") == "9");
  CHECK(J("lower ( s )") == "\"hello\"");
}

TEST_CASE("syntax errors carry a 0-based column and say what was expected") {
  std::string msg;
  CHECK(syntax_column("a +", &msg) == 3);
  CHECK(contains(msg, "expected an expression, found end of input"));
  CHECK(syntax_column("(a + 1", &msg) == 6);
  CHECK(contains(msg, "expected ')' to close '(' (opened at column 0)"));
  CHECK(syntax_column("a == 'x", &msg) == 5);
  CHECK(contains(msg, "unterminated string"));
  CHECK(syntax_column("a = 1", &msg) == 2);
  CHECK(contains(msg, "use '=='"));
  CHECK(syntax_column("a b", &msg) == 2);
  CHECK(contains(msg, "expected an operator"));
  CHECK(syntax_column("foo(1)", &msg) == 0);
  CHECK(contains(msg, "unknown function 'foo'"));
  CHECK(syntax_column("1 + lower(a, b)", &msg) == 4);
  CHECK(contains(msg, "lower() takes 1 argument, got 2"));
  CHECK(syntax_column("substr(a)", &msg) == 0);
  CHECK(contains(msg, "takes 2 or 3 arguments"));
  CHECK(syntax_column("if(a, b)", &msg) == 0);
  CHECK(contains(msg, "takes 3 arguments"));
  CHECK(syntax_column("min(a)", &msg) == 0);
  CHECK(contains(msg, "at least 2"));
  CHECK(syntax_column("a.", &msg) == 2);
  CHECK(contains(msg, "expected a field name after '.'"));
  CHECK(syntax_column("a # b", &msg) == 2);
  CHECK(contains(msg, "unexpected character '#'"));
  CHECK(syntax_column("", &msg) == 0);
  CHECK(syntax_column("   ", &msg) == 3);
  CHECK(syntax_column("x and", &msg) == 5);
  CHECK(syntax_column("and x", &msg) == 0);
  CHECK(contains(msg, "found 'and'"));
  CHECK(syntax_column("[1, 2", &msg) == 5);
  CHECK(contains(msg, "expected ',' or ']'"));
  CHECK(syntax_column("lower(s", &msg) == 7);
  CHECK(contains(msg, "in call to lower()"));
  CHECK(syntax_column("'a\\qb'", &msg) == 2);
  CHECK(contains(msg, "unknown escape"));
  CHECK(syntax_column("`open", &msg) == 0);
  CHECK(syntax_column("99999999999999999999", &msg) == 0);
  CHECK(contains(msg, "out of range"));
  CHECK(syntax_column("a & b", &msg) == 2);
  CHECK(syntax_column("12abc", &msg) == 2);
  CHECK(syntax_column(")", &msg) == 0);
  CHECK(syntax_column("a.b(1)", &msg) == 0);
  CHECK(contains(msg, "not a function"));
  CHECK(contains(msg, "at column 0"));
  CHECK(syntax_column("status in ['a','b']") == -1);
  CHECK(syntax_column("not in") == 4);
}

TEST_CASE("evaluation is repeatable and the expression is reusable across events") {
  auto e = Expr::compile("a * 2 + length(s)");
  for (int i = 0; i < 3; ++i) {
    Event ev = make_event(R"({"a": )" + std::to_string(i) + R"(, "s": "xy"})");
    CHECK(e.eval(ev).as_int() == i * 2 + 2);
  }
  Expr moved = std::move(e);
  Event ev = make_event(R"({"a": 10, "s": ""})");
  CHECK(moved.eval(ev).as_int() == 20);
  CHECK(moved.eval_bool(ev));
}

TEST_CASE("eval_bool") {
  Event ev = make_event();
  CHECK(Expr::compile("status == 'paid'").eval_bool(ev));
  CHECK_FALSE(Expr::compile("missing").eval_bool(ev));
  CHECK(Expr::compile("list").eval_bool(ev));
  CHECK_FALSE(Expr::compile("empty").eval_bool(ev));
  CHECK_THROWS_AS(Expr::compile("a / 0").eval_bool(ev), ExprError);
}

TEST_CASE("== on objects ignores member order; on arrays it does not") {
  const std::string rec = R"({"a": {"x": 1, "y": 2}, "b": {"y": 2, "x": 1}, "c": {"y": 2, "x": 3},
    "d": {"x": 1}, "n1": {"o": {"p": [1, {"q": 1, "r": 2}]}, "z": 0},
    "n2": {"z": 0, "o": {"p": [1, {"r": 2, "q": 1}]}}, "l1": [1, 2], "l2": [2, 1]})";
  CHECK(J("a == b", rec) == "true");
  CHECK(J("a != b", rec) == "false");
  CHECK(J("a in [b]", rec) == "true");
  CHECK(J("contains([b], a)", rec) == "true");
  CHECK(J("a == c", rec) == "false");  // same keys, a different value
  CHECK(J("a == d", rec) == "false");  // a subset
  CHECK(J("d == a", rec) == "false");
  CHECK(J("n1 == n2", rec) == "true");  // deep, through arrays
  CHECK(J("l1 == l2", rec) == "false");
  // Value equality itself, as the rest of etld uses it.
  CHECK(parse_json(R"({"x":1,"y":2})") == parse_json(R"({"y":2,"x":1})"));
  CHECK_FALSE(parse_json(R"({"x":1,"y":2})") == parse_json(R"({"y":2,"z":1})"));
}

TEST_CASE("an infinite or NaN number is a data error, never null") {
  CHECK(contains(error_of("1e308 * 10"), "number overflow in 1e+308 * 10"));
  CHECK(contains(error_of("-1e308 - 1e308"), "number overflow"));
  CHECK(contains(error_of("1e308 / 1e-308"), "number overflow"));
  CHECK(contains(error_of("x * 1e308", R"({"x": 1e10})"), "number overflow"));
  CHECK(contains(error_of("round(1e308, 18)"), "round(): number overflow"));
  CHECK(J("1e308 * 1") == "1e+308");
  std::string message;
  CHECK(syntax_column("1 + 1e400", &message) == 4);
  CHECK(contains(message, "number literal out of range"));
}

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST_CASE("nesting beyond Expr::kMaxDepth is a located syntax error, not a crash") {
  const std::size_t max = Expr::kMaxDepth;
  std::string message;
  // 30,000 parentheses used to overflow the stack of `etld validate`.
  CHECK(syntax_column(repeat("(", 30000) + "1" + repeat(")", 30000), &message) == max);
  CHECK(contains(message, "nested deeper than 256 levels"));
  CHECK(syntax_column(repeat("[", 30000) + repeat("]", 30000)) >= 0);
  CHECK(syntax_column(repeat("-", 30000) + "x") >= 0);
  CHECK(syntax_column(repeat("!", 30000) + "x") >= 0);
  CHECK(syntax_column(repeat("not ", 30000) + "x") >= 0);
  CHECK(syntax_column(repeat("abs(", 30000) + "x" + repeat(")", 30000)) >= 0);
  // A chain nests without recursing in the parser, but evaluating it would.
  CHECK(syntax_column("1" + repeat(" + 1", 100000), &message) >= 0);
  CHECK(contains(message, "nested deeper than"));
  CHECK(syntax_column("x" + repeat(" or x", 100000)) >= 0);
  // Up to the limit, everything works.
  CHECK(J(repeat("(", max - 1) + "1" + repeat(")", max - 1)) == "1");
  CHECK(J("1" + repeat(" + 1", max - 1)) == std::to_string(max));
  CHECK(J(repeat("[", max - 1) + repeat("]", max - 1)).size() == 2 * (max - 1));
}

TEST_CASE("records nested beyond kMaxJsonDepth are invalid JSON; up to it they evaluate") {
  std::string deep = repeat("[", 100000) + repeat("]", 100000);
  try {
    parse_json(deep);
    FAIL("a record nested 100000 deep was accepted");
  } catch (const JsonError& e) {
    CHECK(contains(e.what(), "nested deeper than 1024 levels"));
  }
  Event too_deep = make_event(repeat("{\"a\":", 2000) + "1" + repeat("}", 2000));
  CHECK_THROWS_WITH_AS(Expr::compile(". == .").eval(too_deep), doctest::Contains("nested deeper than 1024"),
                       JsonError);
  // At the limit: compared, copied and printed without trouble.
  std::string ok = repeat("[", kMaxJsonDepth) + repeat("]", kMaxJsonDepth);
  CHECK(J(". == .", ok) == "true");
  CHECK(J("[.]", ok).size() == ok.size() + 2);
  CHECK(J("to_string(.)", ok).size() == ok.size() + 2);
}

TEST_CASE("a tombstone's record is null") {
  Event ev;
  ev.has_value = false;
  CHECK(Expr::compile("a").eval(ev).is_null());
  CHECK(Expr::compile(".").eval(ev).is_null());
}

}  // namespace
}  // namespace etld
