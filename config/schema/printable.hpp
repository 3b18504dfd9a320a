// Text that comes from outside (a record's value or key, a server message quoting one) on its way
// into a log line, an error message or a dead-letter reason: control characters are escaped so
// that it cannot forge a log line or drive a terminal, bytes that are not UTF-8 are shown as \xNN,
// and the length is bounded so that one record cannot blow up a log.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace etld {

enum class Escaping {
  text,  // \n \r \t, \xNN for other control bytes and non-UTF-8 bytes, \uNNNN for C1 and U+2028/9
  json,  // inside a JSON string: also " and \ escaped, \u00NN for control bytes
};

// Appends `text` to `out`, escaped. When `max_bytes` is given and the escaped text would be longer,
// it is cut at a character boundary and "...(N more bytes)" says how much was left out.
void append_printable(std::string& out, std::string_view text, Escaping escaping = Escaping::text,
                      std::size_t max_bytes = std::string::npos);

// `text` escaped and bounded as by append_printable.
std::string printable(std::string_view text, std::size_t max_bytes = std::string::npos,
                      Escaping escaping = Escaping::text);

}  // namespace etld
