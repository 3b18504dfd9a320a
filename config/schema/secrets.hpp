// The secrets this process knows (passwords of DSNs, librdkafka SASL/SSL secrets, the contents of
// ${file:} files), so that text leaving it (log lines, CLI errors, admin answers, dead-letter
// reasons) can be scrubbed of them. A safety net: no message quotes a secret in the first place,
// but a library's message might, and this catches it.
// Threading: thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace etld {

// Values shorter than this are not remembered: masking every "etld" (a development password) in
// every log line would garble the log, and 8 is the least length of a password worth the name.
inline constexpr std::size_t kMinRedactedSecretBytes = 8;
// How many secrets are remembered; past that, the oldest are forgotten (each reload may add the
// rotated ones).
inline constexpr std::size_t kMaxRememberedSecrets = 256;

// Remembers `value` as a secret for redact_secrets(). Empty and short values are ignored.
void remember_secret(std::string_view value);

// `text` with every occurrence of every remembered secret replaced by "***".
std::string redact_secrets(std::string_view text);

// Whether a setting named `name` (a librdkafka property such as sasl.password, ssl.key.pem or
// sasl.jaas.config; a libpq keyword such as password) holds a secret: its value is never echoed.
bool is_secret_setting(std::string_view name);

}  // namespace etld
