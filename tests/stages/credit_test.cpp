#include "stages/engine/credit.hpp"

#include <doctest/doctest.h>

using etld::Credit;

TEST_CASE("credit grants max_demand first, then again once max - min events were processed") {
  Credit c(10, 5);
  CHECK(c.grant_initial() == 10);
  CHECK(c.outstanding() == 10);
  c.on_received(4);
  CHECK(c.outstanding() == 6);
  CHECK(c.unprocessed() == 4);
  CHECK(c.on_processed(4) == 0);  // 4 < max - min = 5: not yet
  c.on_received(3);
  CHECK(c.on_processed(1) == 5);  // 5 processed since the last grant: ask for them
  CHECK(c.outstanding() == 3 + 5);
  CHECK(c.outstanding() + c.unprocessed() <= 10);
}

TEST_CASE("credit refuses deliveries beyond the grant") {
  Credit c(3, 1);
  c.grant_initial();
  c.on_received(3);
  CHECK_THROWS_AS(c.on_received(1), std::logic_error);
}

TEST_CASE("credit never lets granted plus unprocessed exceed max_demand") {
  Credit c(7, 2);
  c.grant_initial();
  std::size_t received = 0;
  for (int step = 0; step < 200; ++step) {
    auto n = std::min<std::size_t>(c.outstanding(), static_cast<std::size_t>(step % 4 + 1));
    c.on_received(n);
    received += n;
    CHECK(c.outstanding() + c.unprocessed() <= 7);
    if (c.unprocessed() > 0) c.on_processed(std::min<std::size_t>(c.unprocessed(), 2));
    CHECK(c.outstanding() + c.unprocessed() <= 7);
  }
  CHECK(received > 100);
}

TEST_CASE("credit rejects min_demand >= max_demand") {
  CHECK_THROWS_AS(Credit(5, 5), std::invalid_argument);
  CHECK_THROWS_AS(Credit(0, 0), std::invalid_argument);
}
