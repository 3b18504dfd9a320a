// file_out: a sink that writes each event as one line to a file, one ::write per batch.
// Threading: one instance per strand. Instances of one stage share the file through O_APPEND,
// so their batches never interleave within a line.
// The file is created 0640 (owner and group only: events may hold personal data), and a path
// whose last component is a symbolic link is refused, at configure and again at open
// (O_NOFOLLOW), so that whoever can write the link's directory cannot redirect (or, with
// append: false, truncate) another file the daemon may write.

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/builtin/line_format.hpp"
#include "stages/engine/registry.hpp"

namespace etld {
namespace {

constexpr mode_t kFileMode = 0640;

struct FileOutSettings {
  std::string path;
  OutFormat format{};  // the options' defaults are their specs'
  bool append{};
};

class FileSink : public Sink {
 public:
  FileSink(std::shared_ptr<const FileOutSettings> s, bool truncate) : s_(std::move(s)), truncate_(truncate) {}
  ~FileSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void start(SinkContext& ctx) override {
    ctx_ = &ctx;
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (truncate_ ? O_TRUNC : 0);
    fd_ = ::open(s_->path.c_str(), flags, kFileMode);
    if (fd_ < 0) errno == ELOOP ? fail_symlink() : fail("cannot open", errno);
  }

  void consume(Batch&& batch) override {
    if (fd_ < 0) return settle_all(batch, AckStatus::failed);
    out_.clear();
    for (auto& e : batch) append_line(e, s_->format, out_);
    std::size_t off = 0;
    while (off < out_.size()) {
      ssize_t n = ::write(fd_, out_.data() + off, out_.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        settle_all(batch, AckStatus::failed);
        ::close(fd_);
        fd_ = -1;
        return fail("cannot write to", err);
      }
      off += static_cast<std::size_t>(n);
    }
    settle_all(batch, AckStatus::done);
    ctx_->done(batch.size());
  }

  void drain() override { ctx_->drained(); }  // every write already reached the kernel

 private:
  void fail_symlink() {
    ctx_->fail(std::make_exception_ptr(FatalStageError("stage '" + ctx_->stage_name() + "': '" + s_->path +
                                                       "' is a symbolic link; file_out does not write "
                                                       "through links")));
  }

  void fail(const char* what, int err) {
    ctx_->fail(std::make_exception_ptr(std::runtime_error("stage '" + ctx_->stage_name() + "': " + what +
                                                          " '" + s_->path + "': " + std::strerror(err))));
  }

  std::shared_ptr<const FileOutSettings> s_;
  bool truncate_;
  SinkContext* ctx_ = nullptr;
  int fd_ = -1;
  std::string out_;
};

class FileSinkFactory : public StageFactory {
 public:
  explicit FileSinkFactory(FileOutSettings s) : s_(std::make_shared<const FileOutSettings>(std::move(s))) {}
  // With append: false only the first instance made truncates, so that a restarted instance or
  // a sibling does not wipe what the others wrote.
  std::unique_ptr<Sink> make_sink(int) override {
    bool truncate = !s_->append && !truncated_.exchange(true);
    return std::make_unique<FileSink>(s_, truncate);
  }

 private:
  std::shared_ptr<const FileOutSettings> s_;
  std::atomic<bool> truncated_{false};
};

std::unique_ptr<StageFactory> configure(const StageConfig& cfg, const PipelineConfig&) {
  const Options& o = cfg.options;
  FileOutSettings s;
  s.path = o.get_string("path");
  if (s.path.empty()) throw ConfigError(o.mark("path"), "path must not be empty");
  auto slash = s.path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : s.path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw ConfigError(o.mark("path"), "the directory '" + dir + "' of '" + s.path + "' does not exist");
  if (::lstat(s.path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
    throw ConfigError(o.mark("path"),
                      "'" + s.path + "' is a symbolic link; file_out does not write through links",
                      "give the path of the file itself");
  s.format = out_format(o);
  s.append = o.get_bool("append");
  return std::make_unique<FileSinkFactory>(std::move(s));
}

const StageRegistration reg{StageType{
    "file_out",
    Role::sink,
    "Writes each event as one line to a file",
    {
        {"path",
         OptionKind::string,
         "The file to write; created when missing, with mode 0640. A symbolic link is refused.",
         true,
         "",
         {}},
        out_format_option(),
        {"append",
         OptionKind::boolean,
         "Add to the end of an existing file; false empties it when the pipeline starts.",
         false,
         "true",
         {}},
    },
    configure,
    nullptr,  // check_live: nothing external to check
}};

}  // namespace
}  // namespace etld
