// Process-wide logging setup: human text or JSON lines on stderr.
#pragma once

#include <string>

namespace etld {

// Throws std::invalid_argument for an unknown level or format.
void setup_logging(const std::string& level, const std::string& format, const std::string& pipeline);

}  // namespace etld
