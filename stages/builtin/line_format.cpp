#include "stages/builtin/line_format.hpp"

namespace etld {

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
