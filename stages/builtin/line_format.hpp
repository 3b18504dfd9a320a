// How the line-oriented sinks (stdout, file_out) write one event as one line.
#pragma once

#include <string>

#include "stages/event.hpp"

namespace etld {

//   json:  the record as JSON; an event never parsed is written as it came (already JSON text),
//          unless it spans several lines, when it is parsed and written compactly.
//   text:  the record as text (strings unquoted); a value that is not JSON is written as is.
//   value: the raw bytes of Event::value.
enum class OutFormat { json, text, value };

// Appends the event's line, newline included.
void append_line(Event& e, OutFormat format, std::string& out);

}  // namespace etld
