// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sys/wait.h>

#include <vector>

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

TEST_CASE("many processes starting on a new cache at once: one creates it, all attach") {
  // CI once saw an attacher open the file between its creator's O_EXCL open
  // and its ftruncate and refuse it ("has 0B but cache.memory is ...").
  // Now a segment appears under its name only when complete.
  TempDir dir;
  constexpr int kProcs = 8;
  int go[2];
  int results[2];
  REQUIRE(::pipe(go) == 0);
  REQUIRE(::pipe(results) == 0);
  std::vector<pid_t> kids;
  for (int i = 0; i < kProcs; ++i) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      char c;
      (void)!::read(go[0], &c, 1);  // all start together
      auto s = Segment::open(small_cache(), dir.path());
      char r = !s.ok() ? 'e' : (*s)->created() ? 'c' : 'a';
      (void)!::write(results[1], &r, 1);
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  for (int i = 0; i < kProcs; ++i) (void)!::write(go[1], "g", 1);
  int created = 0, attached = 0, failed = 0;
  for (int i = 0; i < kProcs; ++i) {
    char r = 0;
    REQUIRE(::read(results[0], &r, 1) == 1);
    created += r == 'c';
    attached += r == 'a';
    failed += r == 'e';
  }
  for (pid_t k : kids) ::waitpid(k, nullptr, 0);
  CHECK(failed == 0);
  CHECK(created == 1);
  CHECK(attached == kProcs - 1);
}

TEST_CASE("a half-made segment of a creator that died is never attached, and is cleaned up") {
  TempDir dir;
  const std::string path = Segment::path_for("t", dir.path());
  // What a creator killed before it finished leaves: an empty file under
  // its temporary name, with a pid that no longer runs.
  pid_t dead = ::fork();
  REQUIRE(dead >= 0);
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string tmp = path + ".new-" + std::to_string(dead);
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  ::close(fd);
  auto s = Segment::open(small_cache(), dir.path());
  REQUIRE_MESSAGE(s.ok(), s.error().describe());
  CHECK((*s)->created());
  struct stat st {};
  CHECK(::stat(tmp.c_str(), &st) != 0);  // removed
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(static_cast<std::uint64_t>(st.st_size) == small_cache().memory);
}

TEST_CASE("an empty or foreign file under the segment's name is refused at once, with a reason") {
  TempDir dir;
  const std::string path = empty_segment_file(dir.path());
  auto s = Segment::open(small_cache(), dir.path());  // no waiting: nothing is being made under this name
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("has 0B but cache.memory is") != std::string::npos);
  // A file of the right size that is no segment.
  REQUIRE(::truncate(path.c_str(), static_cast<off_t>(small_cache().memory)) == 0);
  auto t = Segment::open(small_cache(), dir.path());
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().message.find("bad magic") != std::string::npos);
}
