#include "config/admin_token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "config/schema/diagnostics.hpp"

namespace etld {

namespace {

// Closes the descriptor on every path out of read_admin_token.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string fix_hint(const std::string& path) {
  return fmt::format("make it readable by etld's user only: chown {} '{}' && chmod 600 '{}'", ::geteuid(),
                     path, path);
}

}  // namespace

std::string read_admin_token(const std::string& path) {
  auto fail = [&](const std::string& why, std::string hint) -> ConfigError {
    return ConfigError("admin token file '" + path + "' " + why, std::move(hint));
  };
  if (path.empty())
    throw ConfigError("admin token_file is empty",
                      "name a file holding the token, e.g. token_file: /etc/etld/admin.token");
  // O_NONBLOCK: opening a FIFO does not wait for a writer; it is refused below like any non-file.
  Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
  if (file.fd < 0) {
    int err = errno;
    throw fail(
        std::string("cannot be opened: ") + std::strerror(err),
        err == EACCES ? fix_hint(path) : "create it with the token: head -c 32 /dev/urandom | base64 > FILE");
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) throw fail(std::string("cannot be read: ") + std::strerror(errno), "");
  if (!S_ISREG(st.st_mode))
    throw fail("is not a regular file", "point token_file at a file holding the token");
  if (st.st_uid != ::geteuid() && st.st_uid != 0)
    throw fail(fmt::format("is owned by uid {}, but etld runs as uid {}", st.st_uid, ::geteuid()),
               fix_hint(path));
  if ((st.st_mode & 077) != 0)
    throw fail(fmt::format("gives group or others access (mode {:04o}): anyone who reads it can reload etld",
                           st.st_mode & 07777),
               fmt::format("chmod 600 '{}'", path));
  if (static_cast<std::size_t>(st.st_size) > kMaxAdminTokenChars + 2)
    throw fail(
        fmt::format("holds {} bytes; a token is at most {} characters", st.st_size, kMaxAdminTokenChars), "");
  std::string token(kMaxAdminTokenChars + 3, '\0');
  std::size_t got = 0;
  while (got < token.size()) {
    auto n = ::read(file.fd, token.data() + got, token.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail(std::string("cannot be read: ") + std::strerror(errno), "");
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  token.resize(got);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  const char* generate = "e.g. head -c 32 /dev/urandom | base64 > FILE";
  if (token.size() < kMinAdminTokenChars || token.size() > kMaxAdminTokenChars)
    throw fail(fmt::format("holds a token of {} characters; it needs {} to {}", token.size(),
                           kMinAdminTokenChars, kMaxAdminTokenChars),
               generate);
  for (std::size_t i = 0; i < token.size(); ++i) {
    auto c = static_cast<unsigned char>(token[i]);
    if (c <= 0x20 || c >= 0x7f)
      throw fail(fmt::format("holds a character that is not visible ASCII (at position {})", i + 1),
                 std::string("a token is one line of letters, digits and punctuation, ") + generate);
  }
  return token;
}

}  // namespace etld
