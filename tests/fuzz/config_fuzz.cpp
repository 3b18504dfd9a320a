// libFuzzer target: the pipeline loader (config/loader.cpp) on any YAML text, with ${VAR},
// ${VAR:-default} and ${file:...} interpolation, and every stage type's own option checks.
// A secret file is set up at kSecretFile (a fixed absolute path, which the corpus names; the working
// directory must stay where libFuzzer was started) and two secret environment variables.
// Checks: load_pipeline_text throws nothing (it reports through Diagnostics); it returns a
// pipeline exactly when there is no diagnostic; no diagnostic as shown (format(): message and
// hint, secrets masked) holds a secret's value unless the input itself holds it
// (ETLD_FUZZ_CONFIG_SECRETS=ignore skips this check only).
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"

using namespace etld;

namespace {

constexpr std::string_view kFileSecret = "fuzz-file-secret-Qw7Zp";
constexpr std::string_view kEnvSecret = "fuzz-env-secret-Lk4Vr";
constexpr const char* kSecretDir = "/tmp/etld-config-fuzz";
constexpr const char* kSecretFile = "/tmp/etld-config-fuzz/secret";
bool check_secrets = true;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "config_fuzz: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::mkdir(kSecretDir, 0700);
  std::ofstream(kSecretFile) << kFileSecret << "\n";
  if (::chmod(kSecretFile, 0600) != 0) fail(std::string("cannot write ") + kSecretFile);
  ::setenv("ETLD_FUZZ_PASSWORD", std::string(kEnvSecret).c_str(), 1);
  ::setenv("ETLD_FUZZ_EMPTY", "", 1);
  ::setenv("ETLD_FUZZ_SECRET_FILE", kSecretFile, 1);
  const char* secrets = std::getenv("ETLD_FUZZ_CONFIG_SECRETS");
  check_secrets = secrets == nullptr || std::string_view(secrets) != "ignore";
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  Diagnostics diags("fuzz.yaml");
  std::unique_ptr<PipelineConfig> p;
  try {
    p = load_pipeline_text(text, "fuzz.yaml", diags);
  } catch (const std::exception& e) {
    fail(std::string("load_pipeline_text threw: ") + e.what());
  }
  if ((p != nullptr) != diags.ok()) fail("a pipeline returned together with diagnostics, or neither");
  if (!check_secrets) return 0;
  for (const auto& d : diags.items()) {
    for (auto secret : {kFileSecret, kEnvSecret}) {
      if (text.find(secret) != std::string::npos) continue;
      // format() is what validate, run and reload show (message, hint, masked).
      if (d.format().find(secret) != std::string::npos) fail("a diagnostic shows a secret: " + d.format());
    }
  }
  return 0;
}
