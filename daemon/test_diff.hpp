// The diff `etld test` prints when a case's events are not what it expects: each event as JSON,
// the events that meet an expectation as they are, an expectation no event met with '-' and an
// event none expected with '+'. In order, the alignment is a longest common subsequence, so one
// missing or extra event shows as one line, not as every line after it; in any order, the most
// expectations are paired with distinct events (a maximum bipartite matching).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/test_spec.hpp"
#include "stages/engine/event.hpp"

namespace etld {

// An event as a diff shows it: its record as JSON, `raw "..."` when its payload is no JSON,
// `tombstone` when it has none.
std::string shown_event(Event& e);

// nullopt when `actual` is what `expected` describes; else the diff's lines, headed by `what`
// ("outputs", "dead letters"). Dead letters are shown with their reason.
std::optional<std::string> expectation_diff(const std::string& what,
                                            const std::vector<EventExpectation>& expected,
                                            std::vector<Event>& actual, bool ordered, bool dead_letters);

}  // namespace etld
