#include "daemon/top_exposition.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace etld::top {

const std::string& Sample::label(std::string_view key) const {
  static const std::string none;
  for (const auto& [k, v] : labels)
    if (k == key) return v;
  return none;
}

namespace {

bool name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

class LineReader {
 public:
  LineReader(std::string_view line, std::size_t number) : s_(line), number_(number) {}

  Sample sample() {
    Sample out;
    out.name = name(true);
    auto blanks = skip_blanks();
    if (peek() == '{') {
      ++i_;
      labels(out.labels);
      blanks = skip_blanks();
    }
    if (blanks == 0 || at_end()) fail("expected a space and a value after the metric");
    out.value = number(token());
    skip_blanks();
    if (!at_end()) {
      auto ts = token();
      std::int64_t ignored = 0;
      auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), ignored);
      if (ec != std::errc() || end != ts.data() + ts.size())
        fail("the timestamp '" + std::string(ts) + "' is not an integer");
      skip_blanks();
      if (!at_end()) fail("unexpected text after the timestamp");
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw ExpositionError("metrics line " + std::to_string(number_) + ", column " + std::to_string(i_ + 1) +
                          ": " + what);
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  std::size_t skip_blanks() {
    std::size_t n = 0;
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_, ++n;
    return n;
  }
  std::string_view token() {
    auto start = i_;
    while (!at_end() && s_[i_] != ' ' && s_[i_] != '\t') ++i_;
    return s_.substr(start, i_ - start);
  }

  std::string name(bool metric) {
    auto start = i_;
    while (!at_end() && name_char(s_[i_], i_ == start) && (metric || s_[i_] != ':')) ++i_;
    if (i_ == start) fail(metric ? "expected a metric name" : "expected a label name");
    return std::string(s_.substr(start, i_ - start));
  }

  void labels(Labels& out) {
    for (;;) {
      skip_blanks();
      if (peek() == '}') {
        ++i_;
        return;
      }
      auto key = name(false);
      skip_blanks();
      if (peek() != '=') fail("expected '=' after the label name '" + key + "'");
      ++i_;
      skip_blanks();
      if (peek() != '"') fail("expected '\"' to open the value of label '" + key + "'");
      ++i_;
      out.emplace_back(std::move(key), quoted());
      skip_blanks();
      if (peek() == ',') {
        ++i_;
      } else if (peek() != '}') {
        fail("expected ',' or '}' after a label value");
      }
    }
  }

  std::string quoted() {
    std::string value;
    for (;;) {
      if (at_end()) fail("unterminated label value");
      char c = s_[i_++];
      if (c == '"') return value;
      if (c != '\\') {
        value += c;
        continue;
      }
      if (at_end()) fail("unterminated label value");
      char e = s_[i_++];
      if (e == 'n')
        value += '\n';
      else if (e == '\\' || e == '"')
        value += e;
      else
        fail(std::string("unknown escape '\\") + e + "' in a label value");
    }
  }

  double number(std::string_view t) {
    if (t == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (t == "+Inf" || t == "Inf") return std::numeric_limits<double>::infinity();
    if (t == "-Inf") return -std::numeric_limits<double>::infinity();
    double v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size())
      fail("the value '" + std::string(t) + "' is not a number");
    return v;
  }

  std::string_view s_;
  std::size_t number_;
  std::size_t i_ = 0;
};

}  // namespace

std::vector<Sample> parse_exposition(std::string_view text) {
  std::vector<Sample> out;
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    auto eol = text.find('\n');
    auto line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    out.push_back(LineReader(line.substr(first), number).sample());
  }
  return out;
}

}  // namespace etld::top
