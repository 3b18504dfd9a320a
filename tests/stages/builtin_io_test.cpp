// Built-in I/O stages (generate, file, stdin, stdout, file_out, null), each driven alone through
// the fake contexts on a real io_context.

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/schema/diagnostics.hpp"
#include "tests/support/fake_contexts.hpp"

using namespace etld;
using namespace etld::test;
using namespace std::chrono_literals;

namespace {

// A temporary directory removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/etld_builtin_io_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const std::string& text, bool append = false) {
  std::ofstream f(path, append ? std::ios::app : std::ios::trunc);
  f << text;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A source under test with its context.
struct SourceRig {
  boost::asio::io_context io;
  FakeSourceContext ctx{io};
  std::unique_ptr<StageFactory> factory;
  std::unique_ptr<Source> source;

  SourceRig(const std::string& type, const std::string& options, int concurrency = 1, int instance = 0)
      : ctx(io, "src", instance), factory(configure_stage(type, options, "src", concurrency)) {
    source = factory->make_source(instance);
    ctx.start(*source);
    run_idle(io);
  }
  void grant(std::size_t n) { ctx.grant(*source, n); }
  bool run_until_count(std::size_t n, std::chrono::milliseconds t = 10s) {
    return run_until(
        io, [&] { return ctx.events.size() >= n || ctx.error; }, t);
  }
  void settle_emitted(AckStatus status = AckStatus::done) {
    for (auto& e : ctx.events) e.ack.settle(status);
  }
};

struct SinkRig {
  boost::asio::io_context io;
  FakeSinkContext ctx{io, "out"};
  std::unique_ptr<StageFactory> factory;
  std::unique_ptr<Sink> sink;
  std::shared_ptr<RecordingAcks> acks = std::make_shared<RecordingAcks>();

  SinkRig(const std::string& type, const std::string& options)
      : factory(configure_stage(type, options, "out")), sink(factory->make_sink(0)) {
    ctx.start(*sink);
    run_idle(io);
  }
  void consume(Batch batch) { ctx.consume(*sink, std::move(batch)); }
};

std::vector<std::string> values_of(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (auto& e : events) out.push_back(e.value);
  return out;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---- generate -----------------------------------------------------------------------------------

TEST_CASE("generate emits exactly the demand it is given, counting from start") {
  SourceRig rig("generate", "{start: 5}");
  run_idle(rig.io);
  CHECK(rig.ctx.events.empty());  // no demand, no events

  rig.grant(3);
  run_idle(rig.io);
  REQUIRE(rig.ctx.events.size() == 3);
  CHECK(rig.ctx.demand() == 0);
  rig.grant(1200);
  run_idle(rig.io);
  REQUIRE(rig.ctx.events.size() == 1203);
  CHECK(rig.ctx.demand() == 0);
  CHECK(rig.ctx.violations == 0);
  for (std::size_t i = 0; i < rig.ctx.events.size(); ++i) {
    auto& e = rig.ctx.events[i];
    CHECK(e.value == std::to_string(5 + i));
    REQUIRE(e.parsed());
    CHECK(e.record() == Value(static_cast<std::int64_t>(5 + i)));
    CHECK(e.ack.token() == i);
  }
  for (auto n : rig.ctx.batch_sizes) CHECK(n <= 500);  // default batch
  CHECK_FALSE(rig.ctx.finished());
}

TEST_CASE("generate finishes after count and its acks count the settled prefix") {
  SourceRig rig("generate", "{count: 10, batch: 4}");
  rig.grant(100);
  run_idle(rig.io);
  REQUIRE(rig.ctx.events.size() == 10);
  CHECK(rig.ctx.finish_calls == 1);
  CHECK(rig.ctx.demand() == 90);
  CHECK(rig.ctx.batch_sizes == std::vector<std::size_t>{4, 4, 2});

  auto* acks = dynamic_cast<SequenceAcks*>(rig.ctx.events[0].ack.target());
  REQUIRE(acks != nullptr);
  for (std::size_t i = 5; i < 10; ++i) rig.ctx.events[i].ack.settle(AckStatus::done);
  CHECK(acks->done_prefix() == 0);
  for (std::size_t i = 0; i < 5; ++i) rig.ctx.events[i].ack.settle(AckStatus::done);
  CHECK(acks->done_prefix() == 10);

  rig.grant(5);  // more demand after the end: nothing more
  run_idle(rig.io);
  CHECK(rig.ctx.events.size() == 10);
  CHECK(rig.ctx.finish_calls == 1);
}

TEST_CASE("generate with count 0 finishes at start") {
  SourceRig rig("generate", "{count: 0}");
  CHECK(rig.ctx.finish_calls == 1);
}

TEST_CASE("generate splits count and numbers across instances") {
  std::set<std::string> all;
  for (int instance = 0; instance < 3; ++instance) {
    SourceRig rig("generate", "{count: 10}", 3, instance);
    rig.grant(100);
    run_idle(rig.io);
    CHECK(rig.ctx.finished());
    for (auto& v : values_of(rig.ctx.events)) all.insert(v);
    if (instance == 0) CHECK(values_of(rig.ctx.events) == std::vector<std::string>{"0", "3", "6", "9"});
  }
  CHECK(all.size() == 10);
}

TEST_CASE("generate never wraps past the largest 64-bit integer") {
  // A count that would pass it is refused, naming the limit.
  try {
    configure_stage("generate", "{start: 9223372036854775806, count: 3}");
    FAIL("a count past INT64_MAX was accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("9223372036854775807") != std::string::npos);
  }
  {
    SourceRig rig("generate", "{start: 9223372036854775806, count: 2}");
    rig.grant(10);
    run_idle(rig.io);
    CHECK(values_of(rig.ctx.events) ==
          std::vector<std::string>{"9223372036854775806", "9223372036854775807"});
    CHECK(rig.ctx.finished());
  }
  // An endless stream stops at the limit, in every instance.
  for (int instance = 0; instance < 2; ++instance) {
    SourceRig rig("generate", "{start: 9223372036854775803}", 2, instance);
    rig.grant(10);
    run_idle(rig.io);
    CHECK(rig.ctx.finished());
    if (instance == 0)
      CHECK(values_of(rig.ctx.events) ==
            std::vector<std::string>{"9223372036854775803", "9223372036854775805", "9223372036854775807"});
    else
      CHECK(values_of(rig.ctx.events) ==
            std::vector<std::string>{"9223372036854775804", "9223372036854775806"});
  }
  // A negative start runs through zero without trouble.
  SourceRig rig("generate", "{start: -9223372036854775808, count: 2}");
  rig.grant(10);
  run_idle(rig.io);
  CHECK(values_of(rig.ctx.events) ==
        std::vector<std::string>{"-9223372036854775808", "-9223372036854775807"});
}

TEST_CASE("generate's metadata: no topic, partition -1, offset = the event's index, timestamp = now") {
  auto before = wall_ms();
  SourceRig rig("generate", "{count: 3, start: 10}");
  rig.grant(10);
  run_idle(rig.io);
  REQUIRE(rig.ctx.events.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    auto& e = rig.ctx.events[i];
    CHECK(e.topic.empty());
    CHECK(e.partition == -1);
    CHECK(e.offset == static_cast<std::int64_t>(i));
    CHECK(e.timestamp_ms >= before);
  }
}

TEST_CASE("generate stops and finishes once on stop()") {
  SourceRig rig("generate", "{}");
  rig.grant(10);
  run_idle(rig.io);
  rig.ctx.stop(*rig.source);
  run_idle(rig.io);
  CHECK(rig.ctx.finish_calls == 1);
  rig.grant(10);
  run_idle(rig.io);
  CHECK(rig.ctx.events.size() == 10);
  CHECK(rig.ctx.finish_calls == 1);
}

TEST_CASE("generate yields between large chunks of demand") {
  SourceRig rig("generate", "{batch: 1000}");
  rig.grant(20000);
  // One handler run: the first turn emits a bounded chunk, not the whole demand.
  rig.io.run_one();
  CHECK(rig.ctx.events.size() > 0);
  CHECK(rig.ctx.events.size() < 20000);
  run_idle(rig.io);
  CHECK(rig.ctx.events.size() == 20000);
}

TEST_CASE("generate fills templates deterministically from a seed") {
  const char* options =
      R"({count: 6, seed: 42, template: '{"id": {{seq}}, "bucket": {{seq % 3}}, "n": {{rand_int(1, 6)}}, )"
      R"("user": "{{choice(ann,bob)}}", "at": {{now_ms}}, "uuid": "{{uuid}}"}', key: 'user-{{seq % 2}}'})";
  SourceRig a("generate", options);
  SourceRig b("generate", options);
  a.grant(6);
  b.grant(6);
  run_idle(a.io);
  run_idle(b.io);
  REQUIRE(a.ctx.events.size() == 6);
  REQUIRE(b.ctx.events.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    auto& e = a.ctx.events[i];
    CHECK_FALSE(e.parsed());  // left to downstream stages
    Value& r = e.record();
    CHECK(r.find("id")->as_int() == static_cast<std::int64_t>(i));
    CHECK(r.find("bucket")->as_int() == static_cast<std::int64_t>(i % 3));
    auto n = r.find("n")->as_int();
    CHECK((n >= 1 && n <= 6));
    auto user = r.find("user")->as_string();
    CHECK((user == "ann" || user == "bob"));
    CHECK(r.find("at")->as_int() > 1'600'000'000'000);
    auto uuid = r.find("uuid")->as_string();
    CHECK(uuid.size() == 36);
    CHECK(uuid[14] == '4');
    CHECK(e.has_key);
    CHECK(e.key == "user-" + std::to_string(i % 2));
    // Same seed, same data (but for the clock).
    Value& other = b.ctx.events[i].record();
    CHECK(*other.find("n") == *r.find("n"));
    CHECK(*other.find("user") == *r.find("user"));
    CHECK(*other.find("uuid") == *r.find("uuid"));
  }
}

TEST_CASE("generate rejects bad templates and options at configure time") {
  CHECK_THROWS_AS(configure_stage("generate", "{template: '{\"a\": {{nope}}}'}"), ConfigError);
  CHECK_THROWS_AS(configure_stage("generate", "{template: '{\"a\": {{seq}'}"), ConfigError);
  CHECK_THROWS_AS(configure_stage("generate", "{template: '{\"a\": {{seq % 0}}}'}"), ConfigError);
  CHECK_THROWS_AS(configure_stage("generate", "{template: '{\"a\": {{rand_int(5,1)}}}'}"), ConfigError);
  // A string placeholder outside quotes does not render JSON.
  CHECK_THROWS_AS(configure_stage("generate", "{template: '{\"a\": {{choice(x,y)}}}'}"), ConfigError);
  CHECK_THROWS_AS(configure_stage("generate", "{rate: 0}"), ConfigError);
  CHECK_THROWS_AS(configure_stage("generate", "{count: -1}"), ConfigError);
  CHECK_NOTHROW(configure_stage("generate", "{template: '{\"a\": \"{{ choice( x , y ) }}\"}'}"));
}

TEST_CASE("generate: a template that does not render JSON is named as written, never shown rendered") {
  auto path = std::filesystem::temp_directory_path() / ("etld_gen_secret_" + std::to_string(::getpid()));
  std::ofstream(path) << "gen-secret-4242";
  try {
    configure_stage("generate", "{template: '{\"pw\": ${file:" + path.string() + "}}'}");
    FAIL("no error");
  } catch (const ConfigError& e) {
    std::string what = e.what();
    INFO(what);
    CHECK(what.find("template does not render valid JSON (") == 0);
    CHECK(what.find("as written: {\"pw\": ${file:" + path.string() + "}}") != std::string::npos);
    CHECK(what.find("gen-secret-4242") == std::string::npos);
    CHECK(e.hint().find("gen-secret-4242") == std::string::npos);
  }
  std::filesystem::remove(path);
}

TEST_CASE("generate paces with rate and still honours demand") {
  SourceRig rig("generate", "{rate: 200, count: 8}");
  rig.grant(5);
  REQUIRE(rig.run_until_count(5));
  run_idle(rig.io);
  CHECK(rig.ctx.events.size() == 5);       // never beyond demand
  CHECK(rig.ctx.batch_sizes.size() >= 2);  // paced: not one burst of 5
  rig.grant(100);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  CHECK(values_of(rig.ctx.events) == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7"});
  CHECK(rig.ctx.violations == 0);
}

TEST_CASE("generate with rate stops while waiting on its timer") {
  SourceRig rig("generate", "{rate: 1}");
  rig.grant(10);
  run_idle(rig.io);
  CHECK(rig.ctx.events.size() == 1);  // the first goes at once, the next waits a second
  rig.ctx.stop(*rig.source);
  run_idle(rig.io);
  CHECK(rig.ctx.finish_calls == 1);
  rig.source.reset();  // a cancelled timer's callback must not touch the destroyed stage
  run_until(
      rig.io, [] { return false; }, 50ms);
}

// ---- file and stdin sources -----------------------------------------------------------------------

TEST_CASE("file source reads every line in order with line-number tokens") {
  TempDir dir;
  auto path = dir.file("in.jsonl");
  std::string text;
  for (int i = 0; i < 2500; ++i) text += "{\"i\": " + std::to_string(i) + "}\n";
  write_file(path, text);

  SourceRig rig("file", "{path: '" + path + "', batch: 300}");
  rig.grant(2000);
  run_idle(rig.io);
  CHECK(rig.ctx.events.size() == 2000);
  CHECK_FALSE(rig.ctx.finished());
  for (auto n : rig.ctx.batch_sizes) CHECK(n <= 300);
  rig.grant(1000);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  REQUIRE(rig.ctx.events.size() == 2500);
  CHECK(rig.ctx.demand() == 500);
  CHECK(rig.ctx.finish_calls == 1);
  for (std::size_t i = 0; i < 2500; ++i) {
    auto& e = rig.ctx.events[i];
    CHECK(e.ack.token() == i);
    CHECK_FALSE(e.parsed());
    CHECK(e.record().find("i")->as_int() == static_cast<std::int64_t>(i));
  }
  auto* acks = dynamic_cast<SequenceAcks*>(rig.ctx.events[0].ack.target());
  REQUIRE(acks);
  rig.settle_emitted();
  CHECK(acks->done_prefix() == 2500);
}

TEST_CASE("file source in text format: lines become string records; a last line needs no newline") {
  TempDir dir;
  auto path = dir.file("in.txt");
  write_file(path, "alpha\r\n\nbeta gamma\nlast");
  SourceRig rig("file", "{path: '" + path + "', format: text}");
  rig.grant(10);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  REQUIRE(rig.ctx.events.size() == 4);
  CHECK(values_of(rig.ctx.events) == std::vector<std::string>{"alpha", "", "beta gamma", "last"});
  CHECK(rig.ctx.events[2].parsed());
  CHECK(rig.ctx.events[2].record() == Value("beta gamma"));
  CHECK(rig.ctx.events[3].ack.token() == 3);
}

TEST_CASE("file source in json format skips blank lines but settles their tokens") {
  TempDir dir;
  auto path = dir.file("in.jsonl");
  write_file(path, "{\"a\":1}\n\n  \n{\"a\":2}\n");
  SourceRig rig("file", "{path: '" + path + "'}");
  rig.grant(10);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  REQUIRE(rig.ctx.events.size() == 2);
  CHECK(rig.ctx.events[1].ack.token() == 3);
  auto* acks = dynamic_cast<SequenceAcks*>(rig.ctx.events[0].ack.target());
  rig.settle_emitted();
  CHECK(acks->done_prefix() == 4);
}

TEST_CASE("file source waits for demand and finishes an empty file") {
  TempDir dir;
  auto path = dir.file("empty");
  write_file(path, "");
  SourceRig rig("file", "{path: '" + path + "'}");
  run_idle(rig.io);
  CHECK_FALSE(rig.ctx.finished());  // nothing asked yet
  rig.grant(1);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  CHECK(rig.ctx.events.empty());
}

TEST_CASE("file source: a line over max_line_bytes is dead-lettered by number and offset, not content") {
  TempDir dir;
  auto path = dir.file("in.jsonl");
  // A long line ending the middle of a read chunk, one spanning many chunks, one at the very end
  // without a newline: each is skipped, and the lines between them go through.
  std::string text = "{\"a\":1}\n" + std::string(300, 'x') + "\n{\"a\":2}\n" + std::string(200000, 'y') +
                     "\n{\"a\":3}\n" + std::string(150000, 'z');
  write_file(path, text);
  SourceRig rig("file", "{path: '" + path + "', max_line_bytes: 100}");
  rig.grant(100);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  REQUIRE(rig.ctx.events.size() == 6);
  CHECK(values_of(rig.ctx.events) ==
        std::vector<std::string>{"{\"a\":1}", "", "{\"a\":2}", "", "{\"a\":3}", ""});
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(rig.ctx.events[i].ack.token() == i);
    CHECK(rig.ctx.events[i].rejected() == (i % 2 == 1));
  }
  CHECK(rig.ctx.events[1].rejection.find(
            "line 2 of " + path + " (at byte 8) is longer than max_line_bytes (100)") != std::string::npos);
  CHECK(rig.ctx.events[3].rejection.find("line 4 of " + path + " (at byte 317) is longer") !=
        std::string::npos);
  CHECK(rig.ctx.events[5].rejection.find("line 6 of " + path + " (at byte 200326) is longer") !=
        std::string::npos);
  CHECK(rig.ctx.events[3].offset == 3);
  CHECK(rig.ctx.events[3].topic == path);
}

TEST_CASE("file source: max_line_bytes must be positive") {
  TempDir dir;
  auto path = dir.file("in");
  write_file(path, "");
  CHECK_THROWS_AS(configure_stage("file", "{path: '" + path + "', max_line_bytes: 0}"), ConfigError);
}

TEST_CASE("file source: a missing file is a configuration error unless followed") {
  TempDir dir;
  CHECK_THROWS_AS(configure_stage("file", "{path: '" + dir.file("nope") + "'}"), ConfigError);
  CHECK_NOTHROW(configure_stage("file", "{path: '" + dir.file("nope") + "', follow: true}"));
}

TEST_CASE("file source with follow reads appended lines until stopped") {
  TempDir dir;
  auto path = dir.file("log");
  SourceRig rig("file", "{path: '" + path + "', follow: true, poll_interval: 5ms, format: text}");
  rig.grant(100);
  run_until(
      rig.io, [] { return false; }, 30ms);  // the file does not exist yet
  CHECK(rig.ctx.events.empty());
  write_file(path, "one\ntwo\n");
  REQUIRE(rig.run_until_count(2));
  write_file(path, "thr", true);  // a partial line waits for its newline
  run_until(
      rig.io, [] { return false; }, 30ms);
  CHECK(rig.ctx.events.size() == 2);
  write_file(path, "ee\n", true);
  REQUIRE(rig.run_until_count(3));
  CHECK(values_of(rig.ctx.events) == std::vector<std::string>{"one", "two", "three"});
  CHECK_FALSE(rig.ctx.finished());
  rig.ctx.stop(*rig.source);
  run_idle(rig.io);
  CHECK(rig.ctx.finish_calls == 1);
  rig.source.reset();
  run_until(
      rig.io, [] { return false; }, 20ms);
}

// Replaces fd 0 for the scope of a test.
struct StdinRedirect {
  int saved = ::dup(0);
  explicit StdinRedirect(int fd) {
    ::dup2(fd, 0);
    ::close(fd);
  }
  ~StdinRedirect() {
    ::dup2(saved, 0);
    ::close(saved);
  }
};

TEST_CASE("stdin source reads a pipe asynchronously until end of input") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  StdinRedirect redirect(fds[0]);
  SourceRig rig("stdin", "{format: text}");
  rig.grant(10);
  run_idle(rig.io);
  CHECK(rig.ctx.events.empty());  // waiting on the pipe, not blocking the thread
  std::string first = "a\nb\nc";
  REQUIRE(::write(fds[1], first.data(), first.size()) == static_cast<ssize_t>(first.size()));
  REQUIRE(rig.run_until_count(2));
  CHECK(values_of(rig.ctx.events) == std::vector<std::string>{"a", "b"});
  std::string rest = "d\ne\n";
  REQUIRE(::write(fds[1], rest.data(), rest.size()) == static_cast<ssize_t>(rest.size()));
  ::close(fds[1]);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  CHECK(values_of(rig.ctx.events) == std::vector<std::string>{"a", "b", "cd", "e"});
  for (std::size_t i = 0; i < rig.ctx.events.size(); ++i) CHECK(rig.ctx.events[i].ack.token() == i);
  CHECK(rig.ctx.events[0].topic == "stdin");
}

TEST_CASE("file and stdin metadata: the origin as topic, partition -1, the line number, the read time") {
  auto before = wall_ms();
  TempDir dir;
  auto path = dir.file("in.jsonl");
  write_file(path, "{\"x\":1}\n\n{\"x\":2}\n");
  SourceRig rig("file", "{path: '" + path + "'}");
  rig.grant(10);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  REQUIRE(rig.ctx.events.size() == 2);
  CHECK(rig.ctx.events[0].topic.str() == path);
  CHECK(rig.ctx.events[0].partition == -1);
  CHECK(rig.ctx.events[0].offset == 0);
  CHECK(rig.ctx.events[1].offset == 2);  // the blank line counts
  for (auto& e : rig.ctx.events) CHECK(e.timestamp_ms >= before);
}

TEST_CASE("stdin source stops while a read is pending") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  {
    StdinRedirect redirect(fds[0]);
    SourceRig rig("stdin", "{}");
    rig.grant(10);
    run_idle(rig.io);
    rig.ctx.stop(*rig.source);
    run_idle(rig.io);
    CHECK(rig.ctx.finish_calls == 1);
    rig.source.reset();  // the cancelled read's callback must not touch the destroyed stage
    run_idle(rig.io);
  }
  ::close(fds[1]);
}

TEST_CASE("stdin source reads a redirected regular file") {
  TempDir dir;
  auto path = dir.file("in");
  write_file(path, "{\"x\":1}\n{\"x\":2}\n");
  StdinRedirect redirect(::open(path.c_str(), O_RDONLY));
  SourceRig rig("stdin", "{}");
  rig.grant(10);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.finished(); }));
  CHECK(values_of(rig.ctx.events) == std::vector<std::string>{"{\"x\":1}", "{\"x\":2}"});
}

// ---- sinks --------------------------------------------------------------------------------------

TEST_CASE("file_out writes each format and settles every event done") {
  TempDir dir;
  struct Case {
    const char* format;
    const char* expected;
  };
  for (auto c :
       {Case{"json", "{\"a\": 1}\n\"s\"\n{\"b\":2}\n\"t\"\n"}, Case{"text", "{\"a\":1}\ns\n{\"b\":2}\nt\n"},
        Case{"value", "{\"a\": 1}\n\"s\"\n{\"b\": 2}\nraw\n"}}) {
    CAPTURE(c.format);
    auto path = dir.file(std::string("out.") + c.format);
    SinkRig rig("file_out", "{path: '" + path + "', format: " + c.format + "}");
    // Unparsed JSON, an unparsed JSON string, a parsed record, a text record.
    Batch batch = make_events({"{\"a\": 1}", "\"s\"", "{\"b\": 2}", "raw"}, rig.acks);
    batch[2].record();
    batch[3].set_record(Value("t"));
    rig.consume(std::move(batch));
    rig.consume(Batch{});
    rig.ctx.drain(*rig.sink);
    run_idle(rig.io);
    CHECK(rig.ctx.failure_text() == "");
    CHECK(read_file(path) == c.expected);
    CHECK(rig.acks->exactly_once(4, AckStatus::done));
    CHECK(rig.ctx.done_total == 4);
    CHECK(rig.ctx.drained_calls == 1);
  }
}

TEST_CASE("file_out appends by default and truncates with append: false") {
  TempDir dir;
  auto path = dir.file("out");
  write_file(path, "old\n");
  {
    SinkRig rig("file_out", "{path: '" + path + "', format: value}");
    rig.consume(make_events({"x"}, rig.acks));
    run_idle(rig.io);
  }
  CHECK(read_file(path) == "old\nx\n");
  {
    SinkRig rig("file_out", "{path: '" + path + "', format: value, append: false}");
    rig.consume(make_events({"y"}, rig.acks));
    run_idle(rig.io);
    // A second instance of the same stage must not wipe the first one's output.
    FakeSinkContext ctx2(rig.io, "out", 1);
    auto second = rig.factory->make_sink(1);
    ctx2.start(*second);
    ctx2.consume(*second, make_events({"z"}, rig.acks, 1));
    run_idle(rig.io);
    CHECK(rig.acks->exactly_once(2, AckStatus::done));
  }
  CHECK(read_file(path) == "y\nz\n");
}

TEST_CASE("file_out fails loudly with the stage, path and errno text when the disk is full") {
  if (::access("/dev/full", W_OK) != 0) return;
  SinkRig rig("file_out", "{path: /dev/full, format: value}");
  rig.consume(make_events({"a", "b"}, rig.acks));
  run_idle(rig.io);
  auto text = rig.ctx.failure_text();
  CHECK(text.find("'out'") != std::string::npos);
  CHECK(text.find("/dev/full") != std::string::npos);
  CHECK(text.find(std::strerror(ENOSPC)) != std::string::npos);
  CHECK(rig.ctx.done_total == 0);
  CHECK(rig.acks->exactly_once(2, AckStatus::failed));
}

TEST_CASE("file_out checks its directory at configure time") {
  CHECK_THROWS_AS(configure_stage("file_out", "{path: /nonexistent-dir-etld/out}"), ConfigError);
}

TEST_CASE("file_out creates its file 0640 and does not write through a symbolic link") {
  TempDir dir;
  auto path = dir.file("out");
  {
    auto old = ::umask(022);
    SinkRig rig("file_out", "{path: '" + path + "', format: value}");
    ::umask(old);
    rig.consume(make_events({"x"}, rig.acks));
    run_idle(rig.io);
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);

  auto target = dir.file("target");
  write_file(target, "keep\n");
  auto link = dir.file("link");
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  try {
    configure_stage("file_out", "{path: '" + link + "'}");
    FAIL("a symlinked path was accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("is a symbolic link") != std::string::npos);
  }
  // A link made after configuration is refused at open (O_NOFOLLOW), with append: false too.
  auto later = dir.file("later");
  auto factory = configure_stage("file_out", "{path: '" + later + "', append: false}", "out");
  REQUIRE(::symlink(target.c_str(), later.c_str()) == 0);
  boost::asio::io_context io;
  FakeSinkContext ctx{io, "out"};
  auto sink = factory->make_sink(0);
  ctx.start(*sink);
  run_idle(io);
  CHECK(ctx.failure_text().find("is a symbolic link") != std::string::npos);
  CHECK(read_file(target) == "keep\n");
}

TEST_CASE("stdout writes lines to standard output") {
  TempDir dir;
  auto path = dir.file("stdout");
  std::fflush(stdout);
  int saved = ::dup(1);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, 1);
  ::close(fd);
  {
    SinkRig rig("stdout", "{format: text}");
    rig.consume(make_events({"\"hello\"", "{\"n\": 1}"}, rig.acks));
    rig.ctx.drain(*rig.sink);
    run_idle(rig.io);
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    CHECK(rig.acks->exactly_once(2, AckStatus::done));
    CHECK(rig.ctx.done_total == 2);
    CHECK(rig.ctx.drained_calls == 1);
  }
  CHECK(read_file(path) == "hello\n{\"n\":1}\n");
}

TEST_CASE("null discards and settles at once without delay") {
  SinkRig rig("null", "{}");
  rig.consume(make_events({"1", "2", "3"}, rig.acks));
  run_idle(rig.io);
  CHECK(rig.ctx.done_total == 3);
  CHECK(rig.acks->exactly_once(3, AckStatus::done));
  rig.ctx.drain(*rig.sink);
  run_idle(rig.io);
  CHECK(rig.ctx.drained_calls == 1);
}

TEST_CASE("null with delay holds done() until its timer fires, batch by batch, and drains after") {
  SinkRig rig("null", "{delay: 30ms}");
  rig.consume(make_events({"1", "2"}, rig.acks));
  rig.consume(make_events({"3"}, rig.acks, 2));
  rig.ctx.drain(*rig.sink);
  run_idle(rig.io);
  CHECK(rig.ctx.done_total == 0);  // the timer has not fired yet
  CHECK(rig.acks->total() == 0);
  CHECK(rig.ctx.drained_calls == 0);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.drained_calls > 0; }));
  CHECK(rig.ctx.done_calls == std::vector<std::size_t>{2, 1});  // in arrival order
  CHECK(rig.acks->exactly_once(3, AckStatus::done));
}

TEST_CASE("null with rate paces batches") {
  SinkRig rig("null", "{rate: 1000}");
  rig.consume(make_events({"1", "2", "3", "4", "5"}, rig.acks));
  run_idle(rig.io);
  CHECK(rig.ctx.done_total == 0);
  REQUIRE(run_until(rig.io, [&] { return rig.ctx.done_total == 5; }));
  CHECK(rig.acks->exactly_once(5, AckStatus::done));
}

TEST_CASE("null destroyed while delayed settles the held events as failed") {
  auto acks = std::make_shared<RecordingAcks>();
  {
    SinkRig rig("null", "{delay: 1h}");
    rig.consume(make_events({"1"}, acks));
    run_idle(rig.io);
    rig.sink.reset();
    run_idle(rig.io);
  }
  CHECK(acks->exactly_once(1, AckStatus::failed));
}

TEST_CASE("generate into file_out end to end through the fakes") {
  TempDir dir;
  auto path = dir.file("out");
  SourceRig src("generate", "{count: 5, template: '{\"n\": {{seq}}}'}");
  src.grant(5);
  run_idle(src.io);
  SinkRig sink("file_out", "{path: '" + path + "'}");
  Batch batch;
  for (auto& e : src.ctx.events) batch.push_back(std::move(e));
  auto* acks = dynamic_cast<SequenceAcks*>(batch[0].ack.target());
  sink.consume(std::move(batch));
  run_idle(sink.io);
  CHECK(read_file(path) == "{\"n\": 0}\n{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3}\n{\"n\": 4}\n");
  CHECK(acks->done_prefix() == 5);
}
