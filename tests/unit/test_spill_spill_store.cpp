// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "objcache/page_cache.h"
#include "spill/spill_files.h"
#include "spill/spill_format.h"
#include "spill/spill_index.h"
#include "spill/spill_store.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace objcache::spill;
using objcache::spill::block_alloc_bytes;
using objcache::spill::kHeaderSize;

#if defined(__SANITIZE_THREAD__)
// The fork tests fork while threads run and have the child start its own
// writer thread (what DataLoader does); TSan refuses that unless told.
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }
#endif

namespace {

constexpr std::uint64_t kPage = 1 << 20;

SpillOptions options(const test::TempDir& dir, std::uint64_t capacity, std::uint64_t page = kPage) {
  SpillOptions o;
  o.dir = dir.file("spill");
  o.cache_name = "test";
  o.capacity = capacity;
  o.page_size = page;
  return o;
}

std::unique_ptr<SpillStore> open_store(const SpillOptions& o) {
  auto s = SpillStore::open(o);
  REQUIRE_MESSAGE(s.ok(), s.error().describe());
  return std::move(*s);
}

BlockKey key_of(std::uint64_t n, std::uint64_t owner = 0) {
  return BlockKey{0x9e3779b97f4a7c15ull * (n + 1), owner, static_cast<std::uint32_t>(n % 7)};
}

// The content every test expects for key: deterministic per key and length.
std::vector<std::byte> pattern(const BlockKey& k, std::size_t len) {
  std::vector<std::byte> out(len);
  std::uint64_t x = k.id_lo ^ (k.id_hi * 0xbf58476d1ce4e5b9ull) ^ k.page ^ len;
  for (std::size_t i = 0; i < len; ++i) {
    x += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    out[i] = static_cast<std::byte>((z ^ (z >> 27)) >> 56);
  }
  return out;
}

// Sizes of key n's block in the tests that mix sizes (1 B .. 64 KiB).
std::size_t size_of(std::uint64_t n) { return 1 + (n * 7919) % (64 << 10); }

// Reads key and checks it against pattern(): 1 = hit with the right bytes,
// 0 = miss, 2 = a damaged copy found (and dropped: a miss too), -1 =
// wrong bytes or another error (never allowed).
int probe_read(SpillStore& s, const BlockKey& k, std::size_t len) {
  std::vector<std::byte> buf(len + 8192);  // larger than the block, as callers pass
  auto r = s.read(k, buf);
  if (!r) return r.status() == Status::NotFound ? 0 : r.status() == Status::ChecksumError ? 2 : -1;
  if (*r != len) return -1;
  auto want = pattern(k, len);
  return len == 0 || std::memcmp(buf.data(), want.data(), len) == 0 ? 1 : -1;
}

void flip_byte(const std::string& path, off_t off) {
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  unsigned char c = 0;
  REQUIRE(::pread(fd, &c, 1, off) == 1);
  c ^= 0x40;
  REQUIRE(::pwrite(fd, &c, 1, off) == 1);
  ::close(fd);
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_size);
}

std::string data_path(const SpillOptions& o) { return spill::spill_path(o.dir, o.cache_name, ".data"); }
std::string index_path(const SpillOptions& o) { return spill::spill_path(o.dir, o.cache_name, ".index"); }

// Sends this process's stderr (where OC_WARN goes) to a file while alive.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    saved_ = ::dup(STDERR_FILENO);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::string text() {
    restore();
    return test::read_file(path_);
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_ = -1;
};

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// Starts fn in a forked child, which exits with fn's return value.
template <typename Fn>
pid_t spawn(Fn fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(60);  // a deadlock fails the test instead of hanging it
    int rc = 1;
    try {
      rc = fn();
    } catch (...) {
      rc = 99;
    }
    ::_exit(rc);
  }
  return pid;
}

// The exit status of child pid (128+N if killed by signal N).
int wait_child(pid_t pid) {
  int status = 0;
  pid_t r;
  while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (r != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

template <typename Fn>
int in_child(Fn fn) {
  return wait_child(spawn(fn));
}

}  // namespace

TEST_CASE("blocks round-trip byte-exact at every size") {
  test::TempDir dir;
  auto o = options(dir, 64 << 20);
  auto s = open_store(o);
  const std::vector<std::size_t> sizes = {0,          1,         100,   4096 - kHeaderSize,
                                          4097 - kHeaderSize, 4096, 8191, 110 << 10,
                                          kPage - 1,  kPage};
  for (std::size_t i = 0; i < sizes.size(); ++i)
    CHECK(s->submit(key_of(i), "\"etag-" + std::to_string(i) + "\"", i * kPage,
                    pattern(key_of(i), sizes[i])));
  s->flush();
  CHECK(s->stats().writes == sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    CAPTURE(sizes[i]);
    CHECK(s->contains(key_of(i)));
    CHECK(probe_read(*s, key_of(i), sizes[i]) == 1);
    // A buffer of exactly the block's size works; bytes past it are untouched.
    std::vector<std::byte> exact(sizes[i] + 64, std::byte{0xee});
    auto r = s->read(key_of(i), std::span(exact).first(sizes[i]));
    REQUIRE(r.ok());
    CHECK(*r == sizes[i]);
    for (std::size_t j = sizes[i]; j < exact.size(); ++j) REQUIRE(exact[j] == std::byte{0xee});
    if (sizes[i] > 0) {
      std::vector<std::byte> small(sizes[i] - 1);
      CHECK(s->read(key_of(i), small).status() == Status::InvalidArgument);
    }
  }
  CHECK(probe_read(*s, key_of(1000), 0) == 0);
  CHECK_FALSE(s->contains(key_of(1000)));
  // Too large for a page: refused, counted.
  CHECK_FALSE(s->submit(key_of(2000), "", 0, std::vector<std::byte>(kPage + 1)));
  // A long ETag is cut, not refused.
  CHECK(s->submit(key_of(2001), std::string(200, 'e'), 0, pattern(key_of(2001), 10)));
  s->flush();
  CHECK(probe_read(*s, key_of(2001), 10) == 1);

  auto st = s->stats();
  CHECK(st.hits == 2 * sizes.size() + 1);
  CHECK(st.misses == 1);
  CHECK(st.dropped == 1);
  CHECK(st.checksum_errors == 0);
  CHECK(st.capacity == 64 << 20);
  CHECK(st.used_bytes > 2 * kPage);  // the two largest blocks alone
  CHECK_FALSE(st.disabled);
}

TEST_CASE("keys whose index tags collide are told apart by the block header") {
  // Two keys with the same home slot and tag (1024 slots at 16 MiB).
  REQUIRE(spill::SpillIndex::slot_count_for(16 << 20) == 1024);
  auto make = [](std::uint64_t n) { return BlockKey{n * 0x100000001b3ull + 7, 42, 3}; };
  auto signature = [](const BlockKey& k) {
    const std::uint64_t h = spill::key_hash(k);
    return spill::key_tag(h) << 10 | (h & 1023);
  };
  std::unordered_map<std::uint64_t, std::uint64_t> seen;
  BlockKey a, b;
  bool found = false;
  for (std::uint64_t n = 0; n < 1000000 && !found; ++n) {
    auto [it, fresh] = seen.emplace(signature(make(n)), n);
    if (!fresh) {
      a = make(it->second);
      b = make(n);
      found = true;
    }
  }
  REQUIRE(found);

  test::TempDir dir;
  auto s = open_store(options(dir, 16 << 20));
  REQUIRE(s->submit(a, "e", 0, pattern(a, 300)));
  s->flush();
  CHECK(s->contains(b));  // the documented false positive of the tag filter
  CHECK(probe_read(*s, b, 500) == 0);
  CHECK(s->stats().checksum_errors == 0);  // another key's good block is no error
  REQUIRE(s->submit(b, "e", 0, pattern(b, 500)));  // not mistaken for a duplicate
  s->flush();
  CHECK(s->stats().writes == 2);
  CHECK(probe_read(*s, a, 300) == 1);
  CHECK(probe_read(*s, b, 500) == 1);
  s->remove(a);
  CHECK(probe_read(*s, a, 300) == 0);
  CHECK(probe_read(*s, b, 500) == 1);
  CHECK(s->stats().checksum_errors == 0);
}

TEST_CASE("a recent copy is not written twice; remove forgets a key") {
  test::TempDir dir;
  auto s = open_store(options(dir, 16 << 20));
  auto k = key_of(1);
  CHECK(s->submit(k, "e", 0, pattern(k, 5000)));
  s->flush();
  CHECK(s->submit(k, "e", 0, pattern(k, 5000)));
  s->flush();
  CHECK(s->stats().writes == 1);
  CHECK(s->stats().duplicates == 1);
  s->remove(k);
  CHECK_FALSE(s->contains(k));
  CHECK(probe_read(*s, k, 5000) == 0);
  CHECK(s->submit(k, "e", 0, pattern(k, 5000)));
  s->flush();
  CHECK(probe_read(*s, k, 5000) == 1);
}

TEST_CASE("the circular log wraps: old blocks miss, never wrong data, space stays bounded") {
  test::TempDir dir;
  const std::uint64_t cap = 1 << 20;
  auto o = options(dir, cap, 64 << 10);
  auto s = open_store(o);
  const int n = 200;  // about 6.5 MiB of blocks through a 1 MiB log
  int wrong = 0;
  for (int i = 0; i < n; ++i) {
    REQUIRE(s->submit(key_of(i), "e", 0, pattern(key_of(i), size_of(i))));
    if (i % 10 == 9) {
      s->flush();
      for (int j = 0; j <= i; ++j) wrong += probe_read(*s, key_of(j), size_of(j)) < 0;
      CHECK(s->stats().used_bytes <= cap);
      CHECK(file_size(data_path(o)) <= cap);
    }
  }
  CHECK(wrong == 0);
  int hits = 0;
  for (int i = 0; i < n; ++i) {
    int r = probe_read(*s, key_of(i), size_of(i));
    CHECK(r >= 0);
    hits += r;
  }
  CHECK(probe_read(*s, key_of(0), size_of(0)) == 0);  // long overwritten
  CHECK(probe_read(*s, key_of(n - 1), size_of(n - 1)) == 1);
  CHECK(hits > 5);
  CHECK(hits < 60);
  CHECK(s->stats().checksum_errors == 0);
  CHECK(s->stats().used_bytes == cap);
}

TEST_CASE("flipped bytes are a miss and a checksum error; a re-submit heals") {
  test::TempDir dir;
  auto o = options(dir, 16 << 20);
  auto s = open_store(o);
  const std::size_t len = 20000;
  for (int i = 0; i < 3; ++i) REQUIRE(s->submit(key_of(i), "e", 0, pattern(key_of(i), len)));
  s->flush();
  const off_t block = static_cast<off_t>(block_alloc_bytes(len));  // fresh log: blocks in order
  flip_byte(data_path(o), block + static_cast<off_t>(kHeaderSize) + 12345);  // data of block 1
  flip_byte(data_path(o), 2 * block + 48);  // page number in block 2's header

  CHECK(probe_read(*s, key_of(0), len) == 1);
  CHECK(probe_read(*s, key_of(1), len) == 2);
  CHECK(s->stats().checksum_errors == 1);
  CHECK_FALSE(s->contains(key_of(1)));  // the entry was dropped
  CHECK(probe_read(*s, key_of(2), len) == 2);
  CHECK(s->stats().checksum_errors == 2);
  CHECK(probe_read(*s, key_of(1), len) == 0);  // no second count: already dropped
  CHECK(s->stats().checksum_errors == 2);

  REQUIRE(s->submit(key_of(1), "e", 0, pattern(key_of(1), len)));
  REQUIRE(s->submit(key_of(2), "e", 0, pattern(key_of(2), len)));
  s->flush();
  CHECK(probe_read(*s, key_of(1), len) == 1);
  CHECK(probe_read(*s, key_of(2), len) == 1);
}

TEST_CASE("a block found good is not checksummed again until the file is written; damage after that is caught") {
  test::TempDir dir;
  auto o = options(dir, 16 << 20);
  auto s = open_store(o);
  const std::size_t len = 70000;
  for (int i = 0; i < 3; ++i) REQUIRE(s->submit(key_of(i), "e", 0, pattern(key_of(i), len)));
  s->flush();
  const off_t block = static_cast<off_t>(block_alloc_bytes(len));  // fresh log: blocks in order
  const std::uint64_t marked = s->marks_trusted() ? 1 : 0;
  MESSAGE("verified marks trusted on this kernel and file system: " << std::string(marked ? "yes" : "no"));

  CHECK(probe_read(*s, key_of(0), len) == 1);  // checked, and marked good
  CHECK(s->stats().marked_hits == 0);
  CHECK(probe_read(*s, key_of(0), len) == 1);
  CHECK(probe_read(*s, key_of(1), len) == 1);
  CHECK(probe_read(*s, key_of(1), len) == 1);
  CHECK(s->stats().marked_hits == 2 * marked);

  // Rewritten in place with the same length after it was found good (one
  // data byte, then the whole block with another block's bytes): never
  // served on the old mark.
  flip_byte(data_path(o), static_cast<off_t>(kHeaderSize) + 54321);  // data of block 0
  CHECK(probe_read(*s, key_of(0), len) == 2);
  CHECK(s->stats().checksum_errors == 1);
  CHECK(probe_read(*s, key_of(1), len) == 1);  // the file changed: checked again, marked again
  CHECK(probe_read(*s, key_of(1), len) == 1);
  CHECK(s->stats().marked_hits == 3 * marked);
  {
    std::vector<std::byte> copy(kHeaderSize + len);
    const auto n = static_cast<ssize_t>(copy.size());
    int fd = ::open(data_path(o).c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(::pread(fd, copy.data(), copy.size(), 2 * block) == n);  // block 2, whole
    REQUIRE(::pwrite(fd, copy.data(), copy.size(), block) == n);     // over block 1
    ::close(fd);
  }
  CHECK(probe_read(*s, key_of(1), len) == 2);  // a good block, but another key's at another place
  CHECK(s->stats().marked_hits == 3 * marked);
  CHECK(probe_read(*s, key_of(2), len) == 1);

  // The same bytes written back: the ctime moves, the block is checked
  // (good) and marked again.
  flip_byte(data_path(o), 2 * block + static_cast<off_t>(kHeaderSize) + 7);
  flip_byte(data_path(o), 2 * block + static_cast<off_t>(kHeaderSize) + 7);
  CHECK(probe_read(*s, key_of(2), len) == 1);
  CHECK(s->stats().marked_hits == 3 * marked);
  CHECK(probe_read(*s, key_of(2), len) == 1);
  CHECK(s->stats().marked_hits == 4 * marked);

  // verify still reads and checks every block, marked or not.
  flip_byte(data_path(o), 2 * block + static_cast<off_t>(kHeaderSize) + 100);
  auto report = s->verify();
  CHECK(report.bad_blocks == 1);
  CHECK(probe_read(*s, key_of(2), len) == 0);  // dropped by verify
}

TEST_CASE("verify finds flipped blocks and drops them") {
  test::TempDir dir;
  auto o = options(dir, 16 << 20);
  auto s = open_store(o);
  const std::size_t len = 10000;
  for (int i = 0; i < 10; ++i) REQUIRE(s->submit(key_of(i), "e", 0, pattern(key_of(i), len)));
  s->flush();
  const off_t block = static_cast<off_t>(block_alloc_bytes(len));
  flip_byte(data_path(o), 2 * block + static_cast<off_t>(kHeaderSize));  // first data byte
  flip_byte(data_path(o), 5 * block + static_cast<off_t>(kHeaderSize + len - 1));  // last
  flip_byte(data_path(o), 7 * block + 100);  // the ETag in the header
  auto rep = s->verify();
  CHECK(rep.blocks_checked == 10);
  CHECK(rep.bad_blocks == 3);
  CHECK(s->stats().checksum_errors == 3);
  for (int i = 0; i < 10; ++i)
    CHECK(probe_read(*s, key_of(i), len) == ((i == 2 || i == 5 || i == 7) ? 0 : 1));
  rep = s->verify();
  CHECK(rep.blocks_checked == 7);
  CHECK(rep.bad_blocks == 0);
}

TEST_CASE("a new process finds the blocks of the last one (warm restart)") {
  test::TempDir dir;
  auto o = options(dir, 16 << 20);
  std::uint64_t used = 0;
  {
    auto s = open_store(o);
    for (int i = 0; i < 50; ++i) REQUIRE(s->submit(key_of(i), "e", 0, pattern(key_of(i), size_of(i))));
    used = s->stats().used_bytes;  // maybe not all written yet: the destructor writes the rest
  }
  auto s = open_store(o);
  for (int i = 0; i < 50; ++i) CHECK(probe_read(*s, key_of(i), size_of(i)) == 1);
  CHECK(s->stats().writes == 0);
  CHECK(s->stats().used_bytes >= used);
  CHECK(s->stats().used_bytes > 0);
  // Permissions: dir 0700 (created here), files 0600.
  struct stat st {};
  REQUIRE(::stat(o.dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat(data_path(o).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat(index_path(o).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("another geometry, or a damaged index, recreates the files with a warning") {
  test::TempDir dir;
  auto o = options(dir, 16 << 20);
  {
    auto s = open_store(o);
    REQUIRE(s->submit(key_of(1), "e", 0, pattern(key_of(1), 1000)));
  }
  SUBCASE("capacity changed") {
    o.capacity = 32 << 20;
    StderrCapture cap(dir.file("stderr"));
    auto s = open_store(o);
    const std::string log = cap.text();
    CHECK(count_of(log, "geometry changed") == 1);
    CHECK(probe_read(*s, key_of(1), 1000) == 0);
    CHECK(s->stats().capacity == 32 << 20);
    CHECK(file_size(data_path(o)) == 0);
  }
  SUBCASE("page size changed") {
    o.page_size = 2 << 20;
    StderrCapture cap(dir.file("stderr"));
    auto s = open_store(o);
    CHECK(count_of(cap.text(), "geometry changed") == 1);
    CHECK(probe_read(*s, key_of(1), 1000) == 0);
  }
  SUBCASE("damaged header") {
    flip_byte(index_path(o), 20);  // inside the capacity field
    StderrCapture cap(dir.file("stderr"));
    auto s = open_store(o);
    CHECK(count_of(cap.text(), "checksum mismatch") == 1);
    CHECK(probe_read(*s, key_of(1), 1000) == 0);
  }
  SUBCASE("truncated index") {
    REQUIRE(::truncate(index_path(o).c_str(), 100) == 0);
    StderrCapture cap(dir.file("stderr"));
    auto s = open_store(o);
    CHECK(count_of(cap.text(), "truncated") == 1);
  }
  SUBCASE("not an index at all") {
    REQUIRE(::truncate(index_path(o).c_str(), 0) == 0);
    dir.write("spill/" + index_path(o).substr(index_path(o).rfind('/') + 1),
              std::string(8192, 'x'));
    StderrCapture cap(dir.file("stderr"));
    auto s = open_store(o);
    CHECK(count_of(cap.text(), "bad magic") == 1);
  }
  // Whatever happened, the recreated pair works and is found again.
  auto s = open_store(o);
  REQUIRE(s->submit(key_of(2), "e", 0, pattern(key_of(2), 3000)));
  s->flush();
  auto again = open_store(o);
  CHECK(probe_read(*again, key_of(2), 3000) == 1);
}

TEST_CASE("bad options and unsafe files are refused") {
  test::TempDir dir;
  auto o = options(dir, 16 << 20);
  o.cache_name = "../x";
  CHECK(SpillStore::open(o).status() == Status::InvalidArgument);
  o = options(dir, kPage);  // less than two pages
  CHECK(SpillStore::open(o).status() == Status::InvalidArgument);
  o = options(dir, 16 << 20, 128ull << 20);  // page over 64 MiB
  CHECK(SpillStore::open(o).status() == Status::InvalidArgument);
  o = options(dir, 16 << 20);
  o.dir = dir.write("plainfile", "x");
  CHECK_FALSE(SpillStore::open(o).ok());

  // A symlink planted where the data file goes is not followed.
  o = options(dir, 16 << 20);
  REQUIRE(::mkdir(o.dir.c_str(), 0700) == 0);
  const std::string target = dir.write("target", "do not touch");
  REQUIRE(::symlink(target.c_str(), data_path(o).c_str()) == 0);
  auto r = SpillStore::open(o);
  CHECK(r.status() == Status::AccessDenied);
  CHECK(test::read_file(target) == "do not touch");
}

TEST_CASE("a spill directory or file that others can write, or another user owns, is refused") {
  test::TempDir dir;
  auto o = options(dir, 16 << 20);
  REQUIRE(::mkdir(o.dir.c_str(), 0700) == 0);
  auto refused = [&](const char* says) {
    auto r = SpillStore::open(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status() == Status::AccessDenied);
    CHECK_MESSAGE(r.error().message.find(says) != std::string::npos, r.error().message);
    struct stat st {};
    // Nothing was created in a directory that is not ours alone.
    CHECK(::stat(index_path(o).c_str(), &st) != 0);
  };
  SUBCASE("mode 0777") {
    REQUIRE(::chmod(o.dir.c_str(), 0777) == 0);
    refused("is writable by others (mode 0777): chmod 700 it");
  }
  SUBCASE("mode 1777 (sticky, like /tmp)") {
    REQUIRE(::chmod(o.dir.c_str(), 01777) == 0);
    refused("(mode 1777)");
  }
  SUBCASE("group-writable") {
    REQUIRE(::chmod(o.dir.c_str(), 0770) == 0);
    refused("(mode 0770)");
  }
  SUBCASE("owned by another user") {
    if (::geteuid() != 0) {
      MESSAGE("not root: cannot chown to another user, skipped");
      return;
    }
    REQUIRE(::chown(o.dir.c_str(), 65534, 65534) == 0);
    refused("belongs to uid 65534, not to this user (uid 0)");
  }
  SUBCASE("a file in it that others can write") {
    { auto s = open_store(o); }
    REQUIRE(::chmod(index_path(o).c_str(), 0666) == 0);
    auto r = SpillStore::open(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status() == Status::AccessDenied);
    CHECK(r.error().message.find(index_path(o) + " is writable by others: chmod 600 it") != std::string::npos);
    // One others can only read is made private again.
    REQUIRE(::chmod(index_path(o).c_str(), 0644) == 0);
    auto again = open_store(o);
    struct stat st {};
    REQUIRE(::stat(index_path(o).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  SUBCASE("a private directory of ours, created or not, is used") {
    REQUIRE(::chmod(o.dir.c_str(), 0755) == 0);  // others may read and enter, not write
    CHECK(SpillStore::open(o).ok());
  }
}

TEST_CASE("with a spill directory others can write, the cache warns once and runs from RAM") {
  test::TempDir dir;
  const std::string spill = dir.file("spill");
  REQUIRE(::mkdir(spill.c_str(), 0777) == 0);
  REQUIRE(::chmod(spill.c_str(), 0777) == 0);  // whatever the umask
  CacheConfig c;
  c.name = "openspill";
  c.memory = 16ull << 20;
  c.page_size = kPage;
  c.spill_dir = spill;
  c.spill_size = 64ull << 20;
  PageCacheOptions po;
  po.shm_dir = dir.path();
  StderrCapture cap(dir.file("stderr"));
  auto pc = PageCache::open(c, po);
  const std::string log = cap.text();
  REQUIRE_MESSAGE(pc.ok(), pc.error().describe());
  CHECK(count_of(log, "spill tier disabled") == 1);
  CHECK(count_of(log, spill + " is writable by others (mode 0777): chmod 700 it") == 1);
  CHECK((*pc)->stats().spill_capacity_bytes == 0);
  CHECK(::access(spill_path(spill, c.name, ".index").c_str(), F_OK) != 0);
  // The RAM tier serves: a page filled once is read again without its filler.
  const PageRef ref{ObjectId::of("bucket", "key", "etag"), 0, 4096, -1};
  std::vector<std::byte> out(4096);
  int fills = 0;
  auto fill = [&](std::span<std::byte> dst) -> Result<std::size_t> {
    ++fills;
    std::fill(dst.begin(), dst.end(), std::byte{7});
    return dst.size();
  };
  REQUIRE((*pc)->read(ref, 0, out, fill).ok());
  REQUIRE((*pc)->read(ref, 0, out, fill).ok());
  CHECK(fills == 1);
  CHECK(out[4095] == std::byte{7});
}

TEST_CASE("threads of one process submit and read concurrently") {
  test::TempDir dir;
  auto s = open_store(options(dir, 8 << 20, 64 << 10));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const auto k = key_of(i, t);
        s->submit(k, "e", 0, pattern(k, size_of(i)));
        for (int j = std::max(0, i - 20); j <= i; ++j)
          if (probe_read(*s, key_of(j, (t + 1) % 4), size_of(j)) < 0) wrong.fetch_add(1);
      }
      s->flush();
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong.load() == 0);
  CHECK(s->stats().writes > 0);
  CHECK(s->stats().used_bytes <= 8 << 20);
}

TEST_CASE("two processes share the tier: concurrent submits and reads, right bytes") {
  test::TempDir dir;
  auto o = options(dir, 64 << 20, 64 << 10);
  auto work = [&](std::uint64_t me, std::uint64_t other) {
    auto s = open_store(o);
    int wrong = 0, seen = 0;
    for (int i = 0; i < 400; ++i) {
      const auto k = key_of(i, me);
      // A full queue drops the block (submit's contract); this test checks
      // that what was written is readable, so a dropped block is written
      // again once the queue is empty (under load the writer lags).
      if (!s->submit(k, "e", 0, pattern(k, size_of(i)))) {
        s->flush();
        if (!s->submit(k, "e", 0, pattern(k, size_of(i)))) ++wrong;
      }
      if (i % 50 == 49) s->flush();
      for (int j = std::max(0, i - 30); j <= i; ++j) {
        int r = probe_read(*s, key_of(j, other), size_of(j));
        wrong += r < 0;
        seen += r > 0;
      }
    }
    s->flush();
    return std::pair{wrong, seen};
  };
  int go[2];
  REQUIRE(::pipe(go) == 0);
  const pid_t child = spawn([&] {
    char c;
    if (::read(go[0], &c, 1) != 1) return 4;  // start together
    return work(2, 1).first == 0 ? 0 : 3;
  });
  REQUIRE(::write(go[1], "g", 1) == 1);
  auto [wrong, seen] = work(1, 2);
  ::close(go[0]);
  ::close(go[1]);
  CHECK(wait_child(child) == 0);
  CHECK(wrong == 0);
  MESSAGE("blocks of the other process seen while both ran: " << seen);
  // Everything both wrote (about 26 MiB in a 64 MiB log) is readable now.
  auto s = open_store(o);
  for (int i = 0; i < 400; ++i) {
    CHECK(probe_read(*s, key_of(i, 1), size_of(i)) == 1);
    CHECK(probe_read(*s, key_of(i, 2), size_of(i)) == 1);
  }
}

TEST_CASE("a forked child uses the parent's store, even mid-submit in another thread") {
  test::TempDir dir;
  auto s = open_store(options(dir, 32 << 20, 64 << 10));
  REQUIRE(s->submit(key_of(0), "e", 0, pattern(key_of(0), 100)));  // parent's thread runs
  s->flush();
  std::atomic<bool> stop{false};
  std::thread hammer([&] {
    for (std::uint64_t i = 1; !stop.load(); ++i) {
      const auto k = key_of(i % 500, 9);
      s->submit(k, "e", 0, pattern(k, 2000));
      if (i % 64 == 0) s->flush();
    }
  });
  for (int round = 0; round < 20; ++round) {
    const int rc = in_child([&] {
      const auto k = key_of(round, 77);
      if (!s->submit(k, "e", 0, pattern(k, 30000))) return 2;
      s->flush();
      if (probe_read(*s, k, 30000) != 1) return 3;
      if (probe_read(*s, key_of(0), 100) != 1) return 4;
      return 0;
    });
    CHECK_MESSAGE(rc == 0, "round " << round);
  }
  stop.store(true);
  hammer.join();
  s->flush();
  for (int round = 0; round < 20; ++round) CHECK(probe_read(*s, key_of(round, 77), 30000) == 1);
}

TEST_CASE("a write error turns the tier off for the process, once, without failing anything") {
  test::TempDir dir;
  auto o = options(dir, 16 << 20, 64 << 10);
  const std::string log_path = dir.file("child-stderr");
  const int rc = in_child([&] {
    StderrCapture cap(log_path);
    // Writes past 256 KiB would fail with EFBIG and a SIGXFSZ that kills the
    // process: the store must see it coming and stop instead.
    rlimit lim{256 << 10, 256 << 10};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 2;
    auto r = SpillStore::open(o);
    if (!r) return 3;
    auto& s = **r;
    if (!s.submit(key_of(0), "e", 0, pattern(key_of(0), 1000))) return 4;
    s.flush();
    if (probe_read(s, key_of(0), 1000) != 1) return 5;
    for (int i = 1; i < 20; ++i) s.submit(key_of(i), "e", 0, pattern(key_of(i), 60000));
    s.flush();
    if (s.enabled() || !s.stats().disabled) return 6;
    if (probe_read(s, key_of(0), 1000) != 0) return 7;  // reads miss once off
    if (s.contains(key_of(0))) return 8;
    if (s.submit(key_of(100), "e", 0, pattern(key_of(100), 10))) return 9;
    if (s.stats().dropped == 0) return 10;
    return 0;
  });
  CHECK(rc == 0);
  const std::string log = test::read_file(log_path);
  CHECK(count_of(log, "the SSD tier is off for this process") == 1);
  CHECK(count_of(log, "File too large") == 1);
  // Other processes are not affected: the blocks written before still read.
  auto s = open_store(o);
  CHECK(probe_read(*s, key_of(0), 1000) == 1);
}
