// YAML syntax errors in terms a pipeline author can act on. yaml-cpp says where it gave up
// ("end of map flow not found" at the end of the file, "illegal map value", "bad file"); these
// look at the text to say why: where the unclosed bracket opened, that a value holding ': ' needs
// quotes, that a line is indented with a tab, that brackets nest too deeply.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

namespace etld {

struct YamlSyntaxError {
  YAML::Mark mark;
  std::string message;
  std::string hint;
};

// Flow brackets ([ and {) nest at most this deep in a pipeline file; checked before yaml-cpp
// reads the text, whose recursive parser gives up near 400 levels with only "bad file".
inline constexpr int kMaxYamlNesting = 64;

// The first bracket that opens beyond kMaxYamlNesting levels, if any.
std::optional<YamlSyntaxError> check_yaml_nesting(std::string_view text);

// yaml-cpp's error `e` on `text`, with what the text says about its cause.
YamlSyntaxError explain_yaml_error(std::string_view text, const YAML::Exception& e);

}  // namespace etld
