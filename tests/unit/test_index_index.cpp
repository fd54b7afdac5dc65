// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <set>
#include <thread>
#include <vector>

#include "index/index.h"

using namespace objcache::index;

TEST_CASE("entries encode and decode their location") {
  Location l{123456, 64 * 1000, 77};
  std::uint64_t e = encode(0xdeadbeefcafef00dull, l);
  CHECK(is_live(e));
  Location d = decode(e);
  CHECK(d.region == 123456);
  CHECK(d.offset == 64000);
  CHECK(d.gen == 77);
}

TEST_CASE("insert, find, erase, and stale slots are reused") {
  std::vector<std::atomic<std::uint64_t>> table(4 * 1024);
  Index idx(table.data(), 4, 1024);
  auto never_stale = [](std::uint64_t) { return false; };
  std::vector<std::uint64_t> hashes;
  for (std::uint32_t i = 0; i < 1500; ++i) {
    std::uint64_t h = page_hash(i, i * 7, i % 5);
    hashes.push_back(h);
    REQUIRE(idx.insert(h, encode(h, Location{i, 64 * (i % 100), static_cast<std::uint8_t>(i)}), never_stale));
  }
  CHECK(idx.count_live() == 1500);
  for (std::uint32_t i = 0; i < 1500; ++i) {
    std::uint64_t got = idx.find(hashes[i], [&](std::uint64_t e) { return decode(e).region == i; });
    REQUIRE(got != kEmpty);
    CHECK(decode(got).offset == 64 * (i % 100));
  }
  // Erase leaves a tombstone that does not break other probe chains.
  for (std::uint32_t i = 0; i < 1500; i += 2) {
    std::uint64_t e = idx.find(hashes[i], [&](std::uint64_t x) { return decode(x).region == i; });
    CHECK(idx.erase(hashes[i], e));
  }
  for (std::uint32_t i = 1; i < 1500; i += 2) {
    CHECK(idx.find(hashes[i], [&](std::uint64_t e) { return decode(e).region == i; }) != kEmpty);
  }
  CHECK(idx.count_live() == 750);
  // Stale entries are replaced in place.
  std::uint64_t h = hashes[1];
  std::uint64_t fresh = encode(h, Location{999999, 0, 1});
  REQUIRE(idx.insert(h, fresh, [&](std::uint64_t e) { return decode(e).region == 1; }));
  CHECK(idx.find(h, [&](std::uint64_t e) { return decode(e).region == 1; }) == kEmpty);
  CHECK(idx.find(h, [&](std::uint64_t e) { return decode(e).region == 999999; }) == fresh);
}

TEST_CASE("a full probe window refuses the insert instead of looping") {
  std::vector<std::atomic<std::uint64_t>> table(64);
  Index idx(table.data(), 1, 64);
  int ok = 0;
  for (std::uint32_t i = 0; i < 100; ++i) {
    std::uint64_t h = page_hash(i, 0, 0);
    if (idx.insert(h, encode(h, Location{i, 0, 0}), [](std::uint64_t) { return false; })) ++ok;
  }
  CHECK(ok == 64);
}

TEST_CASE("concurrent inserts from many threads lose nothing") {
  std::vector<std::atomic<std::uint64_t>> table(64 * 4096);
  Index idx(table.data(), 64, 4096);
  constexpr int kThreads = 8, kPer = 5000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        std::uint32_t id = static_cast<std::uint32_t>(t * kPer + i);
        std::uint64_t h = page_hash(id, 1, 2);
        idx.insert(h, encode(h, Location{id % 1000000, 0, 0}), [](std::uint64_t) { return false; });
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(idx.count_live() == kThreads * kPer);
}
