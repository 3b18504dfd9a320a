// file and stdin: sources of newline-delimited records. `format: json` keeps each line as the
// event's raw value (parsed when a stage needs a field); `format: text` makes the line itself
// the record (a string). Each line's ack token is its 0-based line number (SequenceAcks).
// Reading never blocks a pool thread for long: a regular file is read in bounded chunks, one
// batch of at most min(demand, batch) lines per strand turn; a pipe or terminal on stdin is read
// with async_read_some on a stream_descriptor. `follow` polls a file for appended lines.
// A line longer than `max_line_bytes` is not kept: its bytes are dropped as they arrive and it
// goes to the dead letters as an event naming its line number and byte offset (not its content);
// the lines after it are read as usual. Each byte is searched for a newline once.
// Threading: one instance per strand; every callback runs on ctx.executor().

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/builtin/reject.hpp"
#include "stages/engine/instance_scope.hpp"
#include "stages/engine/registry.hpp"

namespace etld {
namespace {

enum class LineFormat { json, text };

// The options' defaults are their specs' (below), read by common_settings and configure_file.
struct LineSettings {
  std::string path;  // "" for stdin
  LineFormat format{};
  bool follow{};
  std::chrono::milliseconds poll_interval{};
  std::size_t batch{};
  std::size_t max_line_bytes{};
};

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerTurn = 16;  // bounds one turn's synchronous reading to 1 MiB

std::string errno_text(int err) { return std::strerror(err); }

class LineSource : public Source {
 public:
  explicit LineSource(std::shared_ptr<const LineSettings> s) : s_(std::move(s)), origin_(label()) {}

  ~LineSource() override { close(); }

  void start(SourceContext& ctx) override {
    ctx_ = &ctx;
    rejecter_.bind(ctx);
    scope_.emplace(ctx.executor());
    timer_.emplace(ctx.executor());
    if (!s_->path.empty()) {
      if (!open_file() && !s_->follow) return;
    } else {
      open_stdin();
    }
    if (ctx_->demand() > 0) pump();
  }

  void on_demand() override {
    if (!busy()) pump();
  }

  void stop() override {
    stopped_ = true;
    if (timer_) timer_->cancel();
    if (stream_) {
      boost::system::error_code ignored;
      stream_->cancel(ignored);
    }
    finish_once();
  }

  void close() override {
    if (stream_) {
      // The descriptor shares its file description with fd 0: asio made it non-blocking, which
      // would leave the terminal or pipe non-blocking for whoever reads it after us.
      if (stdin_flags_ >= 0) ::fcntl(stream_->native_handle(), F_SETFL, stdin_flags_);
      stream_.reset();  // closes its own descriptor
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  const char* label() const { return s_->path.empty() ? "stdin" : s_->path.c_str(); }
  bool busy() const { return scheduled_ || polling_ || reading_; }

  bool open_file() {
    fd_ = ::open(s_->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ >= 0) return true;
    int err = errno;
    if (!s_->follow) {
      fail("cannot open '" + s_->path + "': " + errno_text(err));
    }
    return false;  // follow: poll until it appears
  }

  void open_stdin() {
    int fd = ::dup(0);
    if (fd < 0) return fail("cannot dup standard input: " + errno_text(errno));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      fd_ = fd;  // redirected from a file: read it like one
      return;
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    stdin_flags_ = ::fcntl(fd, F_GETFL);
    try {
      stream_.emplace(ctx_->executor(), fd);
    } catch (const boost::system::system_error&) {
      fd_ = fd;  // not pollable (/dev/null and the like): plain reads, which do not block on it
    }
  }

  void fail(const std::string& message) {
    if (failed_) return;
    failed_ = true;
    ctx_->fail(std::make_exception_ptr(std::runtime_error(
        "stage '" + ctx_->stage_name() + "' (" + (s_->path.empty() ? "stdin" : "file") + "): " + message)));
  }

  void finish_once() {
    if (finished_) return;
    finished_ = true;
    rejecter_.flush();
    ctx_->finish();
  }

  // One strand turn: emit at most min(demand, batch) complete lines, reading as needed, then
  // schedule what comes next (another turn, an async read, a poll, or nothing until demand).
  void pump() {
    scheduled_ = false;
    if (stopped_ || finished_ || failed_) return;
    std::size_t limit = std::min(ctx_->demand(), s_->batch);
    Batch out;
    int reads = 0;
    bool more_to_read = false;
    while (out.size() < limit) {
      if (take_line(out)) continue;
      if (eof_ || stream_ || fd_ < 0) break;  // async reads happen below
      if (reads++ == kMaxReadsPerTurn) {
        more_to_read = true;  // a very long line: go on in the next turn
        break;
      }
      if (!read_sync()) return;
    }
    // At the end of the input, a last line without a newline is still a line.
    if (eof_ && !s_->follow && out.size() < limit && (pos_ < buf_.size() || skipping_)) {
      if (skipping_) {
        reject_long_line(out);
      } else {
        std::string line = buf_.substr(pos_);
        add_line(out, std::move(line));
      }
      drop_buffer();
    }
    if (!out.empty()) ctx_->emit(std::move(out));
    bool line_ready = buf_.find('\n', std::max(pos_, scanned_)) != std::string::npos;
    if (eof_ && !s_->follow && !line_ready && pos_ >= buf_.size()) return finish_once();
    if (ctx_->demand() == 0) return;  // wait for on_demand()
    if (line_ready || more_to_read || (!eof_ && fd_ >= 0 && !stream_)) return schedule();
    if (stream_ && !eof_) return read_async();
    if (s_->follow) return poll();
  }

  void schedule() {
    scheduled_ = true;
    scope_->post([this] { pump(); });
  }

  bool take_line(Batch& out) {
    auto nl = buf_.find('\n', std::max(pos_, scanned_));
    if (nl == std::string::npos) {
      scanned_ = buf_.size();
      if (!skipping_ && buf_.size() - pos_ > s_->max_line_bytes) {
        skipping_ = true;
        skipped_from_ = consumed_ + pos_;
      }
      if (skipping_)
        drop_buffer();
      else
        compact();
      return false;
    }
    if (skipping_ || nl - pos_ > s_->max_line_bytes) {
      if (!skipping_) skipped_from_ = consumed_ + pos_;
      pos_ = nl + 1;
      reject_long_line(out);
      return true;
    }
    std::size_t end = nl;
    if (end > pos_ && buf_[end - 1] == '\r') --end;
    std::string line = buf_.substr(pos_, end - pos_);
    pos_ = nl + 1;
    add_line(out, std::move(line));
    return true;
  }

  void compact() {
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      consumed_ += pos_;
      scanned_ -= std::min(scanned_, pos_);
      pos_ = 0;
    }
  }

  void drop_buffer() {
    consumed_ += buf_.size();
    buf_.clear();
    pos_ = scanned_ = 0;
  }

  // The line that began at byte skipped_from_ was too long: an event without its content, so
  // that the dead letters say which line of which input was skipped.
  void reject_long_line(Batch& out) {
    skipping_ = false;
    std::uint64_t token = line_no_++;
    Event e;
    e.topic = origin_;
    e.offset = static_cast<std::int64_t>(token);
    e.ack = Ack(acks_, token);
    rejecter_.reject(out, e,
                     "line " + std::to_string(token + 1) + " of " + label() + " (at byte " +
                         std::to_string(skipped_from_) + ") is longer than max_line_bytes (" +
                         std::to_string(s_->max_line_bytes) + "); it was skipped");
  }

  void add_line(Batch& out, std::string line) {
    std::uint64_t token = line_no_++;
    if (s_->format == LineFormat::json && line.find_first_not_of(" \t\r") == std::string::npos) {
      acks_->settle(token, AckStatus::done);  // blank line: nothing to parse, nothing lost
      return;
    }
    Event e;
    // Like a Kafka record's: where it came from, its 0-based position there, when it was read.
    e.topic = origin_;
    e.offset = static_cast<std::int64_t>(token);
    e.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    if (s_->format == LineFormat::text) e.set_record(Value(line));
    e.value = std::move(line);
    e.ack = Ack(acks_, token);
    out.push_back(std::move(e));
  }

  // Reads one chunk from a regular file; false after reporting a failure.
  bool read_sync() {
    if (s_->follow) check_truncation();
    std::array<char, kReadChunk> chunk;
    ssize_t n;
    do n = ::read(fd_, chunk.data(), chunk.size());
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      fail(std::string("read from '") + label() + "' failed: " + errno_text(errno));
      return false;
    }
    if (n == 0) {
      eof_ = true;
    } else {
      buf_.append(chunk.data(), static_cast<std::size_t>(n));
      read_offset_ += n;
    }
    return true;
  }

  // A followed file that shrank was truncated (log rotation by copytruncate): start over.
  void check_truncation() {
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && st.st_size < read_offset_) {
      ctx_->log().info("'{}' was truncated; reading it from the start", s_->path);
      ::lseek(fd_, 0, SEEK_SET);
      read_offset_ = 0;
      drop_buffer();
      consumed_ = 0;
      skipping_ = false;
    }
  }

  void read_async() {
    reading_ = true;
    chunk_.resize(kReadChunk);
    stream_->async_read_some(boost::asio::buffer(chunk_),
                             scope_->bind([this](const boost::system::error_code& ec, std::size_t n) {
                               reading_ = false;
                               if (stopped_) return;
                               buf_.append(chunk_.data(), n);
                               if (ec == boost::asio::error::eof) {
                                 eof_ = true;
                               } else if (ec) {
                                 return fail("read from stdin failed: " + ec.message());
                               }
                               pump();
                             }));
  }

  void poll() {
    polling_ = true;
    timer_->start(s_->poll_interval, [this] {
      polling_ = false;
      if (fd_ < 0 && !open_file()) {
        if (ctx_->demand() > 0) poll();
        return;
      }
      eof_ = false;
      pump();
    });
  }

  std::shared_ptr<const LineSettings> s_;
  SharedName origin_;  // the events' topic: the path, or stdin
  SourceContext* ctx_ = nullptr;
  int fd_ = -1;                                                  // regular file (sync reads)
  std::optional<boost::asio::posix::stream_descriptor> stream_;  // pipe or tty (async reads)
  std::optional<StrandTimer> timer_;                             // follow polling
  std::string buf_;                                              // read, not yet split
  std::size_t pos_ = 0;                                          // start of unsplit data
  std::size_t scanned_ = 0;         // buf_ before this holds no newline after pos_: not searched again
  std::uint64_t consumed_ = 0;      // bytes of the input before buf_[0]
  bool skipping_ = false;           // dropping the rest of a line longer than max_line_bytes
  std::uint64_t skipped_from_ = 0;  // where that line began
  Rejecter rejecter_;
  std::string chunk_;  // async read target
  off_t read_offset_ = 0;
  int stdin_flags_ = -1;       // fd 0's status flags before asio made it non-blocking
  std::uint64_t line_no_ = 0;  // next line's ack token
  std::shared_ptr<SequenceAcks> acks_ = std::make_shared<SequenceAcks>();
  bool eof_ = false, scheduled_ = false, polling_ = false, reading_ = false;
  bool stopped_ = false, finished_ = false, failed_ = false;
  std::optional<InstanceScope> scope_;  // the turns and reads completing after this one
};

class LineFactory : public StageFactory {
 public:
  explicit LineFactory(LineSettings s) : s_(std::make_shared<const LineSettings>(std::move(s))) {}
  std::unique_ptr<Source> make_source(int) override { return std::make_unique<LineSource>(s_); }
  // Lines are not read ahead of demand but never wait for settlements.
  SourceBound source_bound() const override {
    return {.ends = !s_->follow, .to_end = s_->path.empty() ? "" : "drop follow: true"};
  }

 private:
  std::shared_ptr<const LineSettings> s_;
};

LineSettings common_settings(const Options& o) {
  LineSettings s;
  auto format = o.get_string("format");
  if (format == "json") {
    s.format = LineFormat::json;
  } else if (format == "text") {
    s.format = LineFormat::text;
  } else {
    throw ConfigError(o.mark("format"), "format must be json or text, not '" + format + "'");
  }
  auto batch = o.get_int("batch");
  if (batch < 1) throw ConfigError(o.mark("batch"), "batch must be at least 1");
  s.batch = static_cast<std::size_t>(batch);
  auto max_line = o.get_int("max_line_bytes");
  if (max_line < 1) throw ConfigError(o.mark("max_line_bytes"), "max_line_bytes must be at least 1");
  s.max_line_bytes = static_cast<std::size_t>(max_line);
  return s;
}

std::unique_ptr<StageFactory> configure_file(const StageConfig& cfg, const PipelineConfig&) {
  const Options& o = cfg.options;
  LineSettings s = common_settings(o);
  s.path = o.get_string("path");
  if (s.path.empty()) throw ConfigError(o.mark("path"), "path must not be empty");
  s.follow = o.get_bool("follow");
  s.poll_interval = o.get_duration("poll_interval");
  if (s.poll_interval.count() <= 0)
    throw ConfigError(o.mark("poll_interval"), "poll_interval must be positive");
  if (!s.follow) {
    int fd = ::open(s.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw ConfigError(o.mark("path"), "cannot open '" + s.path + "': " + errno_text(errno),
                        "set follow: true to wait for a file that does not exist yet");
    ::close(fd);
  }
  return std::make_unique<LineFactory>(std::move(s));
}

std::unique_ptr<StageFactory> configure_stdin(const StageConfig& cfg, const PipelineConfig&) {
  return std::make_unique<LineFactory>(common_settings(cfg.options));
}

OptionSpec format_option() {
  return {"format",
          OptionKind::choice,
          "json: each line is a JSON document, parsed when a stage needs a field; text: each line is a "
          "string record.",
          false,
          "json",
          {"json", "text"}};
}

OptionSpec max_line_option() {
  return {"max_line_bytes",
          OptionKind::integer,
          "Longest line kept; a longer one is skipped and dead-lettered with its line number and byte "
          "offset (not its content).",
          false,
          "1048576",
          {}};
}

OptionSpec batch_option() {
  return {
      "batch", OptionKind::integer, "Most lines read and emitted in one turn of the stage.", false, "1000",
      {}};
}

const StageRegistration file_reg{StageType{
    "file",
    Role::source,
    "Newline-delimited records from a file, optionally following appended lines like tail -f",
    {
        {"path", OptionKind::string, "The file to read.", true, "", {}},
        format_option(),
        {"follow",
         OptionKind::boolean,
         "Keep reading lines appended to the file until the pipeline stops, instead of finishing at its end.",
         false,
         "false",
         {}},
        {"poll_interval",
         OptionKind::duration,
         "With follow, how often to look for appended lines (or for the file to appear).",
         false,
         "250ms",
         {}},
        batch_option(),
        max_line_option(),
    },
    configure_file,
    nullptr,  // check_live: nothing external to check
}};

const StageRegistration stdin_reg{StageType{
    "stdin",
    Role::source,
    "Newline-delimited records from standard input, finishing at its end",
    {format_option(), batch_option(), max_line_option()},
    configure_stdin,
    nullptr,  // check_live: nothing external to check
}};

}  // namespace
}  // namespace etld
