#include "daemon/test_diff.hpp"

#include <algorithm>
#include <functional>
#include <sstream>

namespace etld {

namespace {

std::string expected_at(const EventExpectation& x) {
  return "  (expected at line " + std::to_string(x.mark.line + 1) + ")";
}

// matched[i] = j: expectation i is met by event j (-1: by none), in order.
std::vector<int> align_in_order(const std::vector<std::vector<bool>>& meets) {
  const std::size_t n = meets.size(), m = n ? meets[0].size() : 0;
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));  // of the suffixes
  for (std::size_t i = n; i-- > 0;)
    for (std::size_t j = m; j-- > 0;)
      lcs[i][j] = meets[i][j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::vector<int> matched(n, -1);
  for (std::size_t i = 0, j = 0; i < n && j < m;) {
    if (meets[i][j] && lcs[i][j] == lcs[i + 1][j + 1] + 1) {
      matched[i++] = static_cast<int>(j++);
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      ++i;
    } else {
      ++j;
    }
  }
  return matched;
}

// The same, in any order: Kuhn's augmenting paths.
std::vector<int> align_any_order(const std::vector<std::vector<bool>>& meets) {
  const std::size_t n = meets.size(), m = n ? meets[0].size() : 0;
  std::vector<int> owner(m, -1);
  std::function<bool(std::size_t, std::vector<bool>&)> claim = [&](std::size_t i, std::vector<bool>& seen) {
    for (std::size_t j = 0; j < m; ++j) {
      if (!meets[i][j] || seen[j]) continue;
      seen[j] = true;
      if (owner[j] < 0 || claim(static_cast<std::size_t>(owner[j]), seen)) {
        owner[j] = static_cast<int>(i);
        return true;
      }
    }
    return false;
  };
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<bool> seen(m, false);
    claim(i, seen);
  }
  std::vector<int> matched(n, -1);
  for (std::size_t j = 0; j < m; ++j)
    if (owner[j] >= 0) matched[static_cast<std::size_t>(owner[j])] = static_cast<int>(j);
  return matched;
}

}  // namespace

std::string shown_event(Event& e) {
  if (!e.has_value) return "tombstone";
  try {
    return e.record().to_json();
  } catch (const std::exception&) {
    return "raw " + Value(e.value).to_json();
  }
}

std::optional<std::string> expectation_diff(const std::string& what,
                                            const std::vector<EventExpectation>& expected,
                                            std::vector<Event>& actual, bool ordered, bool dead_letters) {
  std::vector<std::vector<bool>> meets(expected.size(), std::vector<bool>(actual.size()));
  std::string why;
  for (std::size_t i = 0; i < expected.size(); ++i)
    for (std::size_t j = 0; j < actual.size(); ++j) meets[i][j] = expected[i].matches(actual[j], why);
  auto matched = ordered ? align_in_order(meets) : align_any_order(meets);
  if (expected.size() == actual.size() &&
      std::none_of(matched.begin(), matched.end(), [](int j) { return j < 0; }))
    return std::nullopt;

  auto event_text = [&](std::size_t j) {
    return "[" + std::to_string(j) + "] " + shown_event(actual[j]) +
           (dead_letters ? "  reason: " + actual[j].rejection : std::string());
  };
  std::ostringstream out;
  out << "  " << what << ": expected " << expected.size() << ", got " << actual.size()
      << (ordered ? "" : " (in any order)") << "\n";
  // Between two aligned events, the k-th unexpected event is shown with why it does not meet the
  // k-th unmet expectation there: most often it is the event that was meant.
  std::vector<const EventExpectation*> unmet;
  std::size_t unexpected_in_run = 0;
  auto unexpected = [&](std::size_t j) {
    std::string reason = "not expected";
    if (ordered && unexpected_in_run < unmet.size() && !unmet[unexpected_in_run]->matches(actual[j], why))
      reason = why;
    ++unexpected_in_run;
    out << "    + " << event_text(j) << "  (" << reason << ")\n";
  };
  std::vector<bool> used(actual.size(), false);
  std::size_t j = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (matched[i] < 0) {
      out << "    - [" << i << "] " << expected[i].describe() << expected_at(expected[i]) << "\n";
      unmet.push_back(&expected[i]);
      continue;
    }
    const auto at = static_cast<std::size_t>(matched[i]);
    used[at] = true;
    if (ordered) {
      for (; j < at; ++j) unexpected(j);
      j = at + 1;
      unmet.clear();
      unexpected_in_run = 0;
    }
    out << "      " << event_text(at) << "\n";
  }
  for (j = ordered ? j : 0; j < actual.size(); ++j)
    if (!used[j]) unexpected(j);
  return out.str();
}

}  // namespace etld
