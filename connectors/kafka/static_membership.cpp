#include "connectors/kafka/static_membership.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace etld::kafka {

namespace {

// Kafka accepts [a-zA-Z0-9._-] in group.instance.id, at most 249 characters.
std::string legal(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    out.push_back(ok ? c : '_');
  }
  return out;
}

std::string lock_dir() {
  for (const char* var : {"RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"})
    if (const char* v = std::getenv(var); v && *v) {
      std::string dir = v;
      if (auto colon = dir.find(':'); colon != std::string::npos) dir.resize(colon);  // systemd: a list
      return dir + "/etld-members";
    }
  return "/tmp/etld-members-" + std::to_string(::getuid());
}

}  // namespace

StaticMemberId::~StaticMemberId() { release(); }

std::string StaticMemberId::base_id(const std::string& pipeline, const std::string& stage, int instance) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  std::string id = pipeline + "." + stage + "." + std::to_string(instance) + "." + host;
  if (const char* name = std::getenv("ETLD_INSTANCE"); name && *name) id += std::string(".") + name;
  return legal(id).substr(0, 240);  // room for ".s<N>"
}

const std::string& StaticMemberId::acquire(const std::string& pipeline, const std::string& stage,
                                           int instance) {
  release();
  const std::string base = base_id(pipeline, stage, instance);
  const std::string dir = lock_dir();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    problem_ = "cannot create " + dir + ": " + std::strerror(errno);
    return id_;
  }
  // In /tmp another local user may have made the directory first, or a link in its place: use it
  // only if it is a real directory of ours that nobody else may write into.
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid() ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    problem_ = dir + " is not a directory owned by this user and writable by it alone";
    return id_;
  }
  for (int slot = 0; slot < 64; ++slot) {
    const std::string id = slot == 0 ? base : base + ".s" + std::to_string(slot);
    const std::string path = dir + "/" + id + ".lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      problem_ = "cannot open " + path + ": " + std::strerror(errno);
      return id_;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      fd_ = fd;
      id_ = id;
      return id_;
    }
    ::close(fd);  // held by a live consumer: try the next slot
  }
  problem_ = "64 consumers of this stage already run on this host";
  return id_;
}

void StaticMemberId::release() {
  if (fd_ >= 0) ::close(fd_);  // the lock goes with the descriptor
  fd_ = -1;
  id_.clear();
}

}  // namespace etld::kafka
