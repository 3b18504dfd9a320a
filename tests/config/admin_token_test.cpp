// The admin token file (admin.token_file, etld run --admin-token-file): refused unless only etld
// can read it, with an error that says how to fix it and never holds the token, located at the
// option when it comes from the pipeline file; and the other new `admin:` keys.
#include "config/admin_token.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"

using namespace etld;
namespace fs = std::filesystem;

namespace {

const std::string kToken = "Zm9vYmFyYmF6cXV4LXRva2Vu";

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("etld_admin_token_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& text, mode_t mode) const {
    auto p = (path / name).string();
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }
};

// The error read_admin_token throws for `path`, message and hint; "" if it accepts the file.
std::string refusal(const std::string& path) {
  try {
    auto token = read_admin_token(path);  // outside CHECK, which would catch what it throws
    CHECK(token == kToken);
    return "";
  } catch (const ConfigError& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
}

}  // namespace

TEST_CASE("a token file that only etld can read is accepted; a trailing newline is not the token's") {
  TempDir dir;
  CHECK(refusal(dir.file("a", kToken + "\n", 0600)) == "");
  CHECK(refusal(dir.file("b", kToken, 0400)) == "");
  auto link = (dir.path / "link").string();
  fs::create_symlink(dir.path / "b", link);  // as Kubernetes mounts secrets
  CHECK(refusal(link) == "");
}

TEST_CASE("an unfit token file is refused, saying how to fix it and never what it holds") {
  TempDir dir;
  auto readable = dir.file("readable", kToken, 0644);
  CHECK(refusal(readable) ==
        "admin token file '" + readable +
            "' gives group or others access (mode 0644): anyone who reads it can reload etld | "
            "chmod 600 '" +
            readable + "'");
  CHECK(refusal(dir.file("group", kToken, 0640)).find("(mode 0640)") != std::string::npos);
  CHECK(refusal(dir.file("writable", kToken, 0602)).find("(mode 0602)") != std::string::npos);
  auto missing = (dir.path / "missing").string();
  CHECK(refusal(missing).find("admin token file '" + missing +
                              "' cannot be opened: No such file or directory") == 0);
  CHECK(refusal(dir.path.string()).find("is not a regular file") != std::string::npos);
  auto fifo = (dir.path / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(refusal(fifo).find("is not a regular file") != std::string::npos);  // and does not wait for a writer
  CHECK(refusal(dir.file("short", "0123456789abcde", 0600))
            .find("a token of 15 characters; it needs 16 to 4096") != std::string::npos);
  CHECK(refusal(dir.file("empty", "\n", 0600)).find("a token of 0 characters") != std::string::npos);
  CHECK(refusal(dir.file("space", "Zm9vYmFyYmF6 cXV4", 0600)).find("not visible ASCII (at position 13)") !=
        std::string::npos);
  CHECK(refusal(dir.file("huge", std::string(5000, 'a'), 0600)).find("holds 5000 bytes") !=
        std::string::npos);
  if (::geteuid() == 0) {  // only root can give a file away
    auto foreign = dir.file("foreign", kToken, 0600);
    REQUIRE(::chown(foreign.c_str(), 12345, 12345) == 0);
    CHECK(refusal(foreign).find("is owned by uid 12345, but etld runs as uid 0") != std::string::npos);
  }
  for (const auto& entry : fs::directory_iterator(dir.path))
    if (entry.is_regular_file())
      CHECK(refusal(entry.path().string()).find(kToken.substr(0, 8)) == std::string::npos);
}

TEST_CASE("admin.token_file and admin.allowed_hosts in the pipeline file, mistakes located") {
  TempDir dir;
  auto good = dir.file("good", kToken, 0600);
  auto bad = dir.file("bad", kToken, 0644);
  const std::string stages = "stages:\n  gen: {type: generate}\n  out: {type: \"null\", inputs: [gen]}\n";
  auto load = [&](const std::string& admin, Diagnostics& diags) {
    return load_pipeline_text(admin + stages, "p.yaml", diags);
  };
  Diagnostics ok_diags("p.yaml");
  auto ok =
      load("admin:\n  address: 0.0.0.0:9187\n  token_file: " + good + "\n  allowed_hosts: [etld.internal]\n",
           ok_diags);
  REQUIRE_MESSAGE(ok, ok_diags.format());
  CHECK(ok->admin_token_file == good);
  CHECK(ok->admin_allowed_hosts == std::vector<std::string>{"etld.internal"});

  Diagnostics diags("p.yaml");
  CHECK_FALSE(load("admin:\n  address: 0.0.0.0:9187\n  token_file: " + bad +
                       "\n  allowed_hosts: [\"etld.internal:9187\"]\n  tokenfile: x\n",
                   diags));
  CHECK(diags.format() ==
        "p.yaml:3:15: error: admin token file '" + bad +
            "' gives group or others access (mode 0644): anyone who reads it can reload etld "
            "(chmod 600 '" +
            bad +
            "')\n"
            "p.yaml:4:19: error: admin allowed_hosts: 'etld.internal:9187' is not a host name "
            "(write the name alone, without scheme or port; IP addresses are always accepted)\n"
            "p.yaml:5:3: error: unknown key 'tokenfile' in 'admin' (did you mean 'token_file'?)\n");
}
