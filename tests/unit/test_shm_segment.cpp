// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

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

// The file of cache "t" in dir as a creator leaves it right after its
// O_EXCL open, before it sizes the file: empty. Returns its path.
std::string empty_segment_file(const std::string& dir) {
  const std::string path = Segment::path_for("t", dir);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  ::close(fd);
  return path;
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

TEST_CASE("an attacher waits for a creator that has not sized the file yet") {
  // Two processes starting on a new cache at once: one has created the
  // file (O_EXCL) but not yet sized it when the other opens it. CI saw the
  // second refuse the empty file ("has 0B but cache.memory is ...").
  TempDir ref_dir, dir;
  auto ref = Segment::open(small_cache(), ref_dir.path());
  REQUIRE(ref.ok());
  const std::string path = Segment::path_for("t", dir.path());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  std::thread creator([&] {
    // What a slow creator does: size the file, write the header, magic last.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    // (CHECK, not REQUIRE: a failed REQUIRE throws, and not in this thread.)
    CHECK(::ftruncate(fd, static_cast<off_t>(small_cache().memory)) == 0);
    void* p = ::mmap(nullptr, small_cache().memory, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED) return;
    auto* h = static_cast<SegmentHeader*>(p);
    std::memcpy(static_cast<void*>(h), &(*ref)->header(), sizeof(SegmentHeader));
    h->magic.store(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    h->magic.store((*ref)->header().magic.load(), std::memory_order_release);
    ::munmap(p, small_cache().memory);
  });
  auto b = Segment::open(small_cache(), dir.path());
  creator.join();
  ::close(fd);
  REQUIRE_MESSAGE(b.ok(), b.error().describe());
  CHECK_FALSE((*b)->created());
  CHECK((*b)->geometry().region_count == (*ref)->geometry().region_count);
}

TEST_CASE("an empty file whose creator died is made anew") {
  TempDir dir;
  const std::string path = empty_segment_file(dir.path());
  auto s = Segment::open(small_cache(), dir.path());  // waits for a creator first
  REQUIRE_MESSAGE(s.ok(), s.error().describe());
  CHECK((*s)->created());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(static_cast<std::uint64_t>(st.st_size) == small_cache().memory);
}

TEST_CASE("an empty file replaced while waiting: the new one is attached") {
  TempDir dir;
  const std::string path = empty_segment_file(dir.path());
  std::unique_ptr<Segment> made;
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::unlink(path.c_str());
    auto m = Segment::open(small_cache(), dir.path());
    CHECK(m.ok());
    if (m.ok()) made = std::move(*m);
  });
  auto s = Segment::open(small_cache(), dir.path());
  other.join();
  REQUIRE_MESSAGE(s.ok(), s.error().describe());
  REQUIRE(made);
  // One segment in the end, shared by both (the waiter did not recreate it
  // over the other's).
  CHECK(made->created() != (*s)->created());
  made->regions()[0].items.store(7);
  CHECK((*s)->regions()[0].items.load() == 7);
}
