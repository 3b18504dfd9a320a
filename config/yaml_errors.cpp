#include "config/yaml_errors.hpp"

#include <vector>

#include <yaml-cpp/depthguard.h>

namespace etld {
namespace {

YAML::Mark mark_at(int line, int column, int pos) {
  YAML::Mark m;
  m.line = line;
  m.column = column;
  m.pos = pos;
  return m;
}

std::string at(const YAML::Mark& m) {
  return std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

// Walks the text as far as `end`, keeping the flow brackets open there (innermost last). A
// bracket counts where a flow collection can start (after ':', '-', ',', another bracket or
// at the start of a line) or anywhere inside one; inside quotes and comments nothing counts, so
// `where: a[0] > 1` opens nothing. `on_open` sees each bracket as it opens with the depth it makes.
template <class OnOpen>
std::vector<YAML::Mark> open_brackets(std::string_view text, std::size_t end, OnOpen on_open) {
  std::vector<YAML::Mark> open;
  int line = 0, column = 0;
  char quote = 0;
  bool comment = false;
  char last = '\n';  // the last character outside quotes that is not a space
  for (std::size_t i = 0; i < text.size() && i < end; ++i, ++column) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      column = -1;
      comment = false;
      if (open.empty()) last = '\n';
      continue;
    }
    if (comment) continue;
    if (quote) {
      if (quote == '"' && c == '\\')
        ++i, ++column;
      else if (c == quote)
        quote = 0, last = c;
      continue;
    }
    if (c == ' ' || c == '\t') continue;
    bool at_token = last == '\n' || last == ':' || last == '-' || last == ',' || last == '[' || last == '{';
    if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n')) {
      comment = true;
      continue;
    }
    if ((c == '"' || c == '\'') && (at_token || !open.empty())) {
      quote = c;
      continue;
    }
    if ((c == '[' || c == '{') && (at_token || !open.empty())) {
      open.push_back(mark_at(line, column, static_cast<int>(i)));
      if (!on_open(open.back(), open.size())) return open;
    } else if ((c == ']' || c == '}') && !open.empty()) {
      open.pop_back();
    } else if (c == '[' || c == '{') {
      c = 'a';  // inside a plain scalar ("a[0]"): what follows does not start a collection either
    }
    last = c;
  }
  return open;
}

std::string_view line_of(std::string_view text, int line) {
  std::size_t start = 0;
  for (int l = 0; l < line && start != std::string_view::npos; ++l) {
    start = text.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos || start > text.size()) return {};
  auto stop = text.find('\n', start);
  return text.substr(start, stop == std::string_view::npos ? std::string_view::npos : stop - start);
}

// The last line up to `last_line` whose indentation holds a tab, or -1.
int tab_indented_line(std::string_view text, int last_line) {
  int found = -1;
  for (int l = 0; l <= last_line; ++l) {
    auto s = line_of(text, l);
    for (char c : s) {
      if (c == '\t') {
        found = l;
        break;
      }
      if (c != ' ') break;
    }
  }
  return found;
}

// "key: value with: inside" -> how to quote it.
std::string quote_hint(std::string_view line) {
  auto first = line.find_first_not_of(" -");
  if (first == std::string_view::npos) return {};
  auto colon = line.find(": ", first);
  if (colon == std::string_view::npos) return {};
  auto key = line.substr(first, colon - first);
  auto value = line.substr(colon + 2);
  value.remove_prefix(std::min(value.find_first_not_of(' '), value.size()));
  if (value.find(": ") == std::string_view::npos) return {};
  std::string quoted;
  if (value.find('\'') == std::string_view::npos) {
    quoted = "'" + std::string(value) + "'";
  } else {
    quoted = "\"";
    for (char c : value) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    quoted += '"';
  }
  return "the value of '" + std::string(key) +
         "' holds ': ', which YAML reads as another key; quote the value: " + std::string(key) + ": " +
         quoted;
}

}  // namespace

std::optional<YamlSyntaxError> check_yaml_nesting(std::string_view text) {
  std::optional<YamlSyntaxError> error;
  open_brackets(text, text.size(), [&](const YAML::Mark& m, std::size_t depth) {
    if (depth <= static_cast<std::size_t>(kMaxYamlNesting)) return true;
    error = YamlSyntaxError{
        m, "invalid YAML: brackets nest deeper than " + std::to_string(kMaxYamlNesting) + " levels here",
        "a pipeline file needs only a few levels; is a bracket left open?"};
    return false;
  });
  return error;
}

YamlSyntaxError explain_yaml_error(std::string_view text, const YAML::Exception& e) {
  YamlSyntaxError out{e.mark, "invalid YAML: " + e.msg, {}};
  if (dynamic_cast<const YAML::DeepRecursion*>(&e)) {
    out.message = "invalid YAML: the text nests too deeply here for the YAML parser";
    out.hint = "a pipeline file needs only a few levels of nesting";
    return out;
  }
  const int line = e.mark.line;
  if (e.msg.find("flow") != std::string::npos && e.mark.pos >= 0) {
    auto open = open_brackets(text, static_cast<std::size_t>(e.mark.pos),
                              [](const YAML::Mark&, std::size_t) { return true; });
    if (!open.empty()) {
      char c = text[static_cast<std::size_t>(open.back().pos)];
      out.hint = std::string("the '") + c + "' opened at " + at(open.back()) + " is not closed; add '" +
                 (c == '{' ? '}' : ']') + "' where it ends";
      return out;
    }
  }
  if (line >= 0) {
    int tab = tab_indented_line(text, line);
    if (tab >= 0) {
      out.hint = "line " + std::to_string(tab + 1) + " is indented with a tab; YAML indents with spaces only";
      return out;
    }
  }
  if (e.msg.find("illegal map value") != std::string::npos && line >= 0)
    out.hint = quote_hint(line_of(text, line));
  return out;
}

}  // namespace etld
