// SPDX-License-Identifier: Apache-2.0
// FdTable: bounds on every int, growth across chunks, and lock-free readers
// racing writers.
#include <doctest/doctest.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <thread>
#include <vector>

#include "fd_table.h"

using objcache::preload::FdTable;
using objcache::preload::OpenFile;

namespace {
// Distinct non-null tokens; the table never dereferences them.
OpenFile* token(unsigned i) { return reinterpret_cast<OpenFile*>(static_cast<uintptr_t>(i + 1) * 16); }

FdTable& fresh_table() {
  // 256 KiB of zeroes: keep it off the stack.
  static FdTable* t = nullptr;
  delete t;
  t = new FdTable();
  return *t;
}
}  // namespace

TEST_CASE("an empty table owns nothing, whatever the fd") {
  FdTable& t = fresh_table();
  for (int fd : {INT_MIN, -100 /* AT_FDCWD */, -1, 0, 1, 65535, 65536, 1 << 20, INT_MAX}) {
    CHECK(t.find(fd) == nullptr);
  }
  CHECK_FALSE(t.any());
  CHECK_FALSE(t.any_in_range(0, ~0u));
  CHECK(t.remove(5) == nullptr);
  CHECK(t.remove(-1) == nullptr);
}

TEST_CASE("insert, find and remove across chunk boundaries and at INT_MAX") {
  FdTable& t = fresh_table();
  const int fds[] = {0, 3, 65535, 65536, 65537, 1 << 20, INT_MAX - 1, INT_MAX};
  unsigned i = 0;
  for (int fd : fds) REQUIRE(t.insert(fd, token(i++)));
  CHECK(t.any());
  i = 0;
  for (int fd : fds) CHECK(t.find(fd) == token(i++));
  CHECK(t.find(4) == nullptr);
  CHECK(t.find(65538) == nullptr);

  SUBCASE("a taken slot is not overwritten") {
    CHECK_FALSE(t.insert(3, token(99)));
    CHECK(t.find(3) == token(1));
  }
  SUBCASE("negative fds and null entries are refused") {
    CHECK_FALSE(t.insert(-1, token(1)));
    CHECK_FALSE(t.insert(7, nullptr));
  }
  SUBCASE("ranges use close_range's unsigned bounds") {
    CHECK(t.any_in_range(1, 3));
    CHECK_FALSE(t.any_in_range(4, 65534));
    CHECK(t.any_in_range(4, 65535));
    CHECK(t.any_in_range(70000, ~0u));  // 1 << 20 and above
    CHECK_FALSE(t.any_in_range((1u << 20) + 1, INT_MAX - 2));
    CHECK_FALSE(t.any_in_range(static_cast<unsigned>(INT_MAX) + 1, ~0u));
    CHECK_FALSE(t.any_in_range(10, 5));
  }
  SUBCASE("remove returns the entry once") {
    CHECK(t.remove(65536) == token(3));
    CHECK(t.remove(65536) == nullptr);
    CHECK(t.find(65536) == nullptr);
    i = 0;
    for (int fd : fds) {
      if (fd != 65536) t.remove(fd);
      ++i;
    }
    CHECK_FALSE(t.any());
  }
}

TEST_CASE("readers never see a torn or foreign entry while writers churn") {
  FdTable& t = fresh_table();
  constexpr int kWriters = 2;
  constexpr int kPerWriter = 3000;
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&t, &bad, w] {
      for (int round = 0; round < 20; ++round) {
        // Writer w owns fds congruent to w modulo kWriters, spread over 3 chunks.
        for (int k = 0; k < kPerWriter; ++k) {
          const int fd = (k * kWriters + w) * 61;
          if (!t.insert(fd, token(static_cast<unsigned>(fd)))) bad.fetch_add(1);
        }
        for (int k = 0; k < kPerWriter; ++k) {
          const int fd = (k * kWriters + w) * 61;
          if (t.remove(fd) != token(static_cast<unsigned>(fd))) bad.fetch_add(1);
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      for (int fd = 0; fd < kPerWriter * kWriters * 61; fd += 61) {
        OpenFile* e = t.find(fd);
        if (e != nullptr && e != token(static_cast<unsigned>(fd))) bad.fetch_add(1);
      }
    }
  });
  for (int w = 0; w < kWriters; ++w) threads[static_cast<size_t>(w)].join();
  stop.store(true);
  threads.back().join();
  CHECK(bad.load() == 0);
  CHECK_FALSE(t.any());
}
