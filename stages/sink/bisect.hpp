// Bisecting a batch the destination rejected for bad data down to the records it refuses, so
// that one bad record costs its own dead letter and not the batch: the good records of the
// batch are written in slices around it. log2(n) rejected attempts per bad record.
#pragma once

#include <cstddef>
#include <utility>

namespace etld::sink {

// Writes the records [lo, hi) of a batch. write(lo, hi) writes a slice and returns an empty
// std::optional-like value (contextually false) when the destination accepted it, or the
// rejection (contextually true) when it refused the slice for bad data; anything else it throws
// (transient failures it did not retry itself, fatal errors) propagates. A slice of one rejected
// record goes to bad(index, rejection). The accepted slices are written in order.
template <class Write, class Bad>
void bisect(std::size_t lo, std::size_t hi, Write& write, Bad& bad) {
  if (lo >= hi) return;
  auto rejected = write(lo, hi);
  if (!rejected) return;
  if (hi - lo == 1) {
    bad(lo, std::move(*rejected));
    return;
  }
  const std::size_t mid = lo + (hi - lo) / 2;
  bisect(lo, mid, write, bad);
  bisect(mid, hi, write, bad);
}

}  // namespace etld::sink
