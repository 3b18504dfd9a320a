// The kafka source's default group.instance.id: stable across a restart, never shared by two
// live consumers on one host (the lock files arbitrate), legal for Kafka whatever the names hold.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "connectors/kafka/static_membership.hpp"

using etld::kafka::StaticMemberId;

TEST_SUITE("kafka static membership") {
  TEST_CASE("two live consumers of one stage get two ids; a successor gets the released one back") {
    const std::string pipeline = "sm" + std::to_string(::getpid());
    StaticMemberId a, b;
    const std::string base = StaticMemberId::base_id(pipeline, "in", 0);
    CHECK(a.acquire(pipeline, "in", 0) == base);
    CHECK(b.acquire(pipeline, "in", 0) == base + ".s1");  // the first is held: never shared
    StaticMemberId other_instance;
    CHECK(other_instance.acquire(pipeline, "in", 1) == StaticMemberId::base_id(pipeline, "in", 1));
    CHECK(other_instance.id() != base);

    a.release();  // as a dead process's lock goes with it
    StaticMemberId successor;
    CHECK(successor.acquire(pipeline, "in", 0) == base);
  }

  TEST_CASE("a lock held by another process is respected, and freed when that process dies") {
    const std::string pipeline = "smp" + std::to_string(::getpid());
    const std::string base = StaticMemberId::base_id(pipeline, "in", 0);
    int ready[2], go[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(go) == 0);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      StaticMemberId held;
      const bool ok = held.acquire(pipeline, "in", 0) == base;
      char c = ok ? '1' : '0';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(go[0], &c, 1);
      ::_exit(0);  // dies holding it, like a SIGKILLed etld
    }
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    CHECK(c == '1');
    {
      StaticMemberId second;
      CHECK(second.acquire(pipeline, "in", 0) == base + ".s1");
    }
    (void)!::write(go[1], "x", 1);
    int status = 0;
    ::waitpid(child, &status, 0);
    StaticMemberId restarted;
    CHECK(restarted.acquire(pipeline, "in", 0) == base);
    for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  }

  TEST_CASE("the id holds only characters Kafka accepts, and ETLD_INSTANCE tells units apart") {
    const std::string id = StaticMemberId::base_id("my pipe/λ", "in:1", 2);
    CHECK(id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
          std::string::npos);
    CHECK(id.starts_with("my_pipe_"));
    ::setenv("ETLD_INSTANCE", "orders", 1);
    const std::string with = StaticMemberId::base_id("p", "in", 0);
    ::unsetenv("ETLD_INSTANCE");
    CHECK(with.ends_with(".orders"));
    CHECK(with != StaticMemberId::base_id("p", "in", 0));
  }
}

TEST_CASE("kafka static membership: a lock directory that is not ours alone is not used") {
  const std::string dir = "/tmp/etld-sm-test-" + std::to_string(::getpid());
  ::setenv("RUNTIME_DIRECTORY", dir.c_str(), 1);
  ::mkdir(dir.c_str(), 0700);
  const std::string locks = dir + "/etld-members";
  // Another user could have made it writable by all (or planted a link to elsewhere).
  REQUIRE(::mkdir(locks.c_str(), 0777) == 0);
  REQUIRE(::chmod(locks.c_str(), 0777) == 0);
  StaticMemberId m;
  CHECK(m.acquire("p", "in", 0).empty());
  CHECK(m.problem().find("not a directory owned by this user") != std::string::npos);
  ::rmdir(locks.c_str());
  REQUIRE(::symlink("/tmp", locks.c_str()) == 0);
  CHECK(m.acquire("p", "in", 0).empty());
  ::unlink(locks.c_str());
  CHECK(m.acquire("p", "in", 0) == StaticMemberId::base_id("p", "in", 0));  // made afresh: ours
  m.release();
  ::unsetenv("RUNTIME_DIRECTORY");
  std::filesystem::remove_all(dir);
}
