#include "config/schema/secrets.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace etld {

namespace {

struct Remembered {
  std::string value;
  std::uint64_t seq;  // insertion order, to forget the oldest
};

struct Registry {
  std::shared_mutex mu;
  std::vector<Remembered> secrets;  // longest first, so that a secret holding another goes whole
  std::uint64_t next_seq = 0;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void remember_secret(std::string_view value) {
  if (value.size() < kMinRedactedSecretBytes) return;
  Registry& r = registry();
  std::unique_lock lock(r.mu);
  auto same =
      std::find_if(r.secrets.begin(), r.secrets.end(), [&](const Remembered& s) { return s.value == value; });
  if (same != r.secrets.end()) {
    same->seq = r.next_seq++;  // still in use: the last to forget
    return;
  }
  if (r.secrets.size() >= kMaxRememberedSecrets)
    r.secrets.erase(std::min_element(r.secrets.begin(), r.secrets.end(),
                                     [](const Remembered& a, const Remembered& b) { return a.seq < b.seq; }));
  r.secrets.push_back({std::string(value), r.next_seq++});
  std::stable_sort(r.secrets.begin(), r.secrets.end(),
                   [](const Remembered& a, const Remembered& b) { return a.value.size() > b.value.size(); });
}

std::string redact_secrets(std::string_view text) {
  std::string out(text);
  Registry& r = registry();
  std::shared_lock lock(r.mu);
  for (const auto& s : r.secrets) {
    if (s.value.size() > out.size()) continue;
    for (auto at = out.find(s.value); at != std::string::npos; at = out.find(s.value, at + 3))
      out.replace(at, s.value.size(), "***");
  }
  return out;
}

bool is_secret_setting(std::string_view name) {
  std::string lower;
  lower.reserve(name.size());
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"password", "secret", "key", "token", "jaas", "credential"})
    if (lower.find(word) != std::string::npos) return true;
  return false;
}

}  // namespace etld
