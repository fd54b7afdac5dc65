// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/segment.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace objcache::shm;
using objcache::test::TempDir;

namespace {
CacheConfig small_cache(const std::string& name = "t") {
  CacheConfig c;
  c.name = name;
  c.memory = 32ull << 20;
  c.page_size = 1ull << 20;
  c.spill_dir = "";
  return c;
}
}  // namespace

TEST_CASE("the first process creates a private segment, the next attaches") {
  TempDir dir;
  auto a = Segment::open(small_cache(), dir.path());
  REQUIRE_MESSAGE(a.ok(), a.error().describe());
  CHECK((*a)->created());
  struct stat st {};
  REQUIRE(::stat((*a)->path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_uid == ::geteuid());
  CHECK(static_cast<std::uint64_t>(st.st_size) == 32ull << 20);
  CHECK((*a)->path() == dir.path() + "/objcache-" + std::to_string(::geteuid()) + "-t");

  auto b = Segment::open(small_cache(), dir.path());
  REQUIRE(b.ok());
  CHECK_FALSE((*b)->created());
  // Both see the same memory.
  (*a)->regions()[0].items.store(42);
  CHECK((*b)->regions()[0].items.load() == 42);
}

TEST_CASE("the segment never exceeds cache.memory; bookkeeping stays under 3%") {
  for (std::uint64_t mem : {16ull << 20, 64ull << 20, 1ull << 30, 4ull << 30, 64ull << 30}) {
    for (std::uint64_t page : {64ull << 10, 1ull << 20, 4ull << 20}) {
      CacheConfig c = small_cache();
      c.memory = mem;
      c.page_size = page;
      auto g = plan(c);
      CAPTURE(mem);
      CAPTURE(page);
      REQUIRE(g.ok());
      CHECK(g->data_offset + static_cast<std::uint64_t>(g->region_count) * g->region_size <= mem);
      CHECK(static_cast<double>(g->metadata_bytes()) / static_cast<double>(mem) <= 0.03);
      CHECK(g->region_count >= 2);
    }
  }
}

TEST_CASE("a mismatched geometry or a foreign file is refused with a reason") {
  TempDir dir;
  auto a = Segment::open(small_cache(), dir.path());
  REQUIRE(a.ok());
  CacheConfig other = small_cache();
  other.page_size = 4ull << 20;
  auto b = Segment::open(other, dir.path());
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().message.find("page_size") != std::string::npos);

  CacheConfig bigger = small_cache();
  bigger.memory = 64ull << 20;
  auto c = Segment::open(bigger, dir.path());
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message.find("cache.memory") != std::string::npos);

  // A segment others can read is not ours to trust.
  ::chmod((*a)->path().c_str(), 0644);
  auto d = Segment::open(small_cache(), dir.path());
  REQUIRE_FALSE(d.ok());
  CHECK(d.status() == Status::AccessDenied);

  // A symlink planted at the path is not followed.
  TempDir dir2;
  std::string target = dir2.write("target", "x");
  std::string link = Segment::path_for("t", dir2.path());
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  CHECK_FALSE(Segment::open(small_cache(), dir2.path()).ok());
}

TEST_CASE("a wrong version is refused, not misread") {
  TempDir dir;
  auto a = Segment::open(small_cache(), dir.path());
  REQUIRE(a.ok());
  (*a)->header().layout_version = 999;
  auto b = Segment::open(small_cache(), dir.path());
  REQUIRE_FALSE(b.ok());
  CHECK(b.status() == Status::Unsupported);
  CHECK(b.error().message.find("layout version 999") != std::string::npos);
}

TEST_CASE("a cache too small for two regions is an error") {
  CacheConfig c = small_cache();
  c.memory = 16ull << 20;
  c.page_size = 8ull << 20;
  CHECK_FALSE(plan(c).ok());
}
