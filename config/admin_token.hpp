// The admin endpoint's bearer token, from `admin.token_file` or `etld run --admin-token-file`.
// The file gates POST /reload and PUT /log_level, so it is refused unless only the daemon can
// read it: a regular file (a symlink to one is fine, as Kubernetes mounts secrets), owned by the
// user etld runs as or by root, with no permission for group or others, holding one token of 16
// to 4096 visible ASCII characters (a trailing newline is ignored).
#pragma once

#include <string>

namespace etld {

inline constexpr std::size_t kMinAdminTokenChars = 16;
inline constexpr std::size_t kMaxAdminTokenChars = 4096;

// The token in `path`. Throws ConfigError (without a mark: the caller knows where the path was
// written) saying what is wrong and how to fix it; the message never holds the token.
std::string read_admin_token(const std::string& path);

}  // namespace etld
