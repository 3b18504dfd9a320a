#include "config/reference.hpp"

#include <vector>

#include "config/loader.hpp"
#include "config/schema/options.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/engine/registry.hpp"

namespace etld {

namespace {

// Table cells are one line; a '|' would end the cell.
std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string code(const std::string& text) { return text.empty() ? std::string() : "`" + cell(text) + "`"; }

std::string options_table(const std::vector<OptionSpec>& specs) {
  std::string out =
      "| Option | Kind | Required | Default | Choices | Description |\n"
      "|---|---|---|---|---|---|\n";
  for (const auto& s : specs) {
    std::string choices;
    for (std::size_t i = 0; i < s.choices.size(); ++i) {
      if (i > 0) choices += ", ";
      choices += code(s.choices[i]);
    }
    out += "| " + code(s.name) + " | " + option_kind_name(s.kind) + " | " + (s.required ? "yes" : "no") +
           " | " + code(s.default_text) + " | " + choices + " | " + cell(s.doc) + " |\n";
  }
  return out;
}

}  // namespace

std::string stage_reference_markdown() {
  std::string out =
      "<!-- Generated from the stage types' option declarations; do not edit by hand. -->\n"
      "# Stage reference\n"
      "\n"
      "Every stage in a pipeline file has a `type` (one of the types below) and the type's own options,\n"
      "plus the common stage options. See [configuration.md](configuration.md) for the file format.\n"
      "\n"
      "Kinds: `string` values expand `${VAR}`, `${VAR:-default}` and `${file:/path}`; a `duration` is\n"
      "`100ms`, `5s`, `2m`, `1h` or a bare number of milliseconds; a `list of strings` also accepts a\n"
      "single string.\n"
      "\n"
      "## Common stage options\n"
      "\n";
  out += options_table(common_stage_options());

  const auto types = all_stage_types();  // sorted by name
  for (Role role : {Role::source, Role::transform, Role::sink}) {
    std::vector<const StageType*> of_role;
    for (const auto* t : types)
      if (t->role == role) of_role.push_back(t);
    if (of_role.empty()) continue;
    out += "\n## ";
    out += role == Role::source ? "Sources" : role == Role::transform ? "Transforms" : "Sinks";
    out += "\n";
    for (const auto* t : of_role) {
      out += "\n### " + t->name + "\n\n";
      out += "Role: " + std::string(role_name(t->role)) + ".";
      if (!t->summary.empty()) out += " " + t->summary;
      out += "\n\n";
      if (t->options.empty()) {
        out += "No options besides the common stage options.\n";
      } else {
        out += options_table(t->options);
      }
    }
  }
  return out;
}

}  // namespace etld
