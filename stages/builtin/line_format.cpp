#include "stages/builtin/line_format.hpp"

#include "config/schema/diagnostics.hpp"

namespace etld {

OptionSpec out_format_option() {
  return {"format",
          OptionKind::choice,
          "json: the record as JSON; text: the record with strings unquoted; value: the event's raw bytes as "
          "its source read them, without any change a map made.",
          false,
          "json",
          {"json", "text", "value"}};
}

OutFormat out_format(const Options& options) {
  auto format = options.get_string("format");
  if (format == "json") return OutFormat::json;
  if (format == "text") return OutFormat::text;
  if (format == "value") return OutFormat::value;
  throw ConfigError(options.mark("format"), "format must be json, text or value, not '" + format + "'");
}

void append_line(Event& e, OutFormat format, std::string& out) {
  switch (format) {
    case OutFormat::json:
      if (e.parsed() || !e.has_value) {
        e.record().append_json(out);
      } else if (e.value.find('\n') == std::string::npos) {
        out += e.value;
      } else {
        try {
          e.record().append_json(out);
        } catch (const JsonError&) {
          out += e.value;
        }
      }
      break;
    case OutFormat::text: try { out += e.record().to_text();
      } catch (const JsonError&) {
        out += e.value;
      }
      break;
    case OutFormat::value: out += e.value; break;
  }
  out += '\n';
}

}  // namespace etld
