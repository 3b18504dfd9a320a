// How the line-oriented sinks (stdout, file_out) write one event as one line.
#pragma once

#include <string>

#include "config/schema/options.hpp"
#include "stages/engine/event.hpp"

namespace etld {

//   json:  the record as JSON; an event never parsed is written as it came (already JSON text),
//          unless it spans several lines, when it is parsed and written compactly.
//   text:  the record as text (strings unquoted); a value that is not JSON is written as is.
//   value: the raw bytes of Event::value, as the source read them: a map's changes are not in them.
enum class OutFormat { json, text, value };

// The `format` option of those sinks: its one declaration, and its value (ConfigError if bad).
OptionSpec out_format_option();
OutFormat out_format(const Options& options);

// Appends the event's line, newline included.
void append_line(Event& e, OutFormat format, std::string& out);

}  // namespace etld
