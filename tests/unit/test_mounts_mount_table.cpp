// SPDX-License-Identifier: Apache-2.0
// MountTable: local paths to (mount, key) and back. Lexical rules, component
// boundaries, escapes through "..", limits, the allocation-free pre-check,
// and a property test against a naive reference resolver.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "objcache/mount_table.h"
#include "mounts/path_rules.h"

using namespace objcache;

// Counting (and, on request, failing) global operator new: proves that
// maybe_ours does not allocate and that bad_alloc never escapes. Every
// unaligned form is replaced, all on malloc/free, so the pairs stay matched
// under AddressSanitizer; noinline keeps GCC's -Wmismatched-new-delete from
// pairing an inlined free() with the call to operator new.
namespace {
std::atomic<long> g_allocs{0};
std::atomic<bool> g_fail_allocs{false};

void* counted_alloc(std::size_t n) noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);  // a counter: no ordering needed
  if (g_fail_allocs.load(std::memory_order_relaxed)) return nullptr;
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
[[gnu::noinline]] void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

MountConfig mount(std::string path, std::string prefix, std::string bucket = "bucket") {
  MountConfig m;
  m.path = std::move(path);
  m.source.scheme = "s3";
  m.source.bucket = std::move(bucket);
  m.source.prefix = std::move(prefix);
  m.source_text = "s3://" + m.source.bucket + "/" + m.source.prefix;
  return m;
}

Resolved ours(int m, std::string key, bool root = false) {
  Resolved r;
  r.mount = m;
  r.key = std::move(key);
  r.is_root = root;
  return r;
}

const Resolved kNotOurs{};

// /mnt/data -> ds/, /data -> "" (bucket root).
MountTable basic_table() {
  return MountTable({mount("/mnt/data", "ds/"), mount("/data", "")});
}

}  // namespace

TEST_CASE("a path under a mount maps to prefix + relative path") {
  MountTable t = basic_table();
  CHECK(t.mounts().size() == 2);
  CHECK(t.resolve("/mnt/data/imagenet/train/x.JPEG") == ours(0, "ds/imagenet/train/x.JPEG"));
  CHECK(t.resolve("/data/x") == ours(1, "x"));
  CHECK(t.resolve("/etc/passwd") == kNotOurs);
  CHECK(t.resolve("/") == kNotOurs);
  CHECK_FALSE(t.resolve("/etc/passwd").ours());
}

TEST_CASE("the mount point itself is the root: the prefix as key") {
  MountTable t = basic_table();
  for (const char* p : {"/mnt/data", "/mnt/data/", "/mnt/data//", "/mnt/data/.", "/mnt//data/./"}) {
    CAPTURE(p);
    CHECK(t.resolve(p) == ours(0, "ds/", true));
  }
  CHECK(t.resolve("/data") == ours(1, "", true));
  CHECK(t.resolve("/data/x/..") == ours(1, "", true));
}

TEST_CASE("mounts end at component boundaries") {
  MountTable t = basic_table();
  CHECK(t.resolve("/mnt/database") == kNotOurs);
  CHECK(t.resolve("/mnt/database/x") == kNotOurs);
  CHECK(t.resolve("/mnt/dat") == kNotOurs);
  CHECK(t.resolve("/mnt/data2/x") == kNotOurs);
  CHECK(t.resolve("/mnt") == kNotOurs);
  CHECK(t.resolve("/datax") == kNotOurs);
  CHECK(t.resolve("/mnt/data.d/x") == kNotOurs);
}

TEST_CASE("\"..\" is resolved lexically and never escapes the prefix") {
  MountTable t = basic_table();
  CHECK(t.resolve("/mnt/data/../etc/passwd") == kNotOurs);
  CHECK(t.resolve("/mnt/data/..") == kNotOurs);
  CHECK(t.resolve("/mnt/data/a/../..") == kNotOurs);
  CHECK(t.resolve("/mnt/data/../../../../etc") == kNotOurs);
  CHECK(t.resolve("/mnt/data/a/../../data/b") == ours(0, "ds/b"));
  CHECK(t.resolve("/mnt/data/a/../b") == ours(0, "ds/b"));
  CHECK(t.resolve("/mnt/data/a/b/../../c") == ours(0, "ds/c"));
  CHECK(t.resolve("/mnt/data/../../data/y") == ours(1, "y"));  // left one mount for another
  CHECK(t.resolve("/usr/../mnt/data/x") == ours(0, "ds/x"));
  // ".." at "/" stays at "/", as the kernel does.
  CHECK(t.resolve("/../../mnt/data/x") == ours(0, "ds/x"));
  CHECK(t.resolve("/data/..") == kNotOurs);
  // A file name that merely contains dots is a name.
  CHECK(t.resolve("/mnt/data/..a/...") == ours(0, "ds/..a/..."));
  CHECK(t.resolve("/mnt/data/.hidden") == ours(0, "ds/.hidden"));
}

TEST_CASE("relative paths are taken against an absolute cwd") {
  MountTable t = basic_table();
  CHECK(t.resolve("x/y", "/mnt/data") == ours(0, "ds/x/y"));
  CHECK(t.resolve(".", "/mnt/data") == ours(0, "ds/", true));
  CHECK(t.resolve("./x", "/mnt/data/dir/") == ours(0, "ds/dir/x"));
  CHECK(t.resolve("..", "/mnt/data") == kNotOurs);
  CHECK(t.resolve("..", "/mnt/data/dir") == ours(0, "ds/", true));
  CHECK(t.resolve("../data/x", "/mnt/data/a/..") == ours(0, "ds/x"));
  CHECK(t.resolve("data/x", "/mnt") == ours(0, "ds/x"));
  CHECK(t.resolve("../../data/z", "/mnt/data") == ours(1, "z"));
  CHECK(t.resolve("x", "/home/me") == kNotOurs);
  // An absolute path ignores cwd.
  CHECK(t.resolve("/mnt/data/x", "/home/me") == ours(0, "ds/x"));
  CHECK(t.resolve("/etc/x", "/mnt/data") == kNotOurs);
  // No usable cwd: nothing to resolve against.
  CHECK(t.resolve("x") == kNotOurs);
  CHECK(t.resolve("x", "mnt/data") == kNotOurs);
  CHECK(t.resolve("x", std::string_view("/mnt/data\0/x", 12)) == kNotOurs);
  // An unnormalized cwd is normalized too.
  CHECK(t.resolve("x", "//mnt/./data//d/") == ours(0, "ds/d/x"));
}

TEST_CASE("trailing slashes, empty components and \".\" are dropped") {
  MountTable t = basic_table();
  CHECK(t.resolve("/mnt/data/dir/") == ours(0, "ds/dir"));
  CHECK(t.resolve("/mnt/data/dir///") == ours(0, "ds/dir"));
  CHECK(t.resolve("//mnt//data///a//./b/.") == ours(0, "ds/a/b"));
  CHECK(t.resolve("/./mnt/./data/./x") == ours(0, "ds/x"));
}

TEST_CASE("an empty path, a NUL or an over-long path is not ours") {
  MountTable t = basic_table();
  CHECK(t.resolve("") == kNotOurs);
  CHECK(t.resolve("", "/mnt/data") == kNotOurs);
  CHECK(t.resolve(std::string_view("/mnt/data/a\0b", 13)) == kNotOurs);
  CHECK(t.resolve(std::string_view("/mnt/data/a\0", 12)) == kNotOurs);

  const std::string head = "/mnt/data/";
  std::string longest = head + std::string(mounts::kMaxPathLength - head.size(), 'a');
  REQUIRE(longest.size() == PATH_MAX - 1);
  CHECK(t.resolve(longest).ours());
  CHECK(t.resolve(longest + "a") == kNotOurs);
  CHECK(t.resolve(std::string(PATH_MAX * 2, '/') + "mnt/data/x") == kNotOurs);
  // Within the limit as written, shortened by normalization: fine.
  std::string dotted = "/mnt/data/";
  while (dotted.size() + 2 < mounts::kMaxPathLength) dotted += "./";
  CHECK(t.resolve(dotted + "x") == ours(0, "ds/x"));
  // Each part short enough, but cwd + path normalizes past the limit.
  std::string cwd = head + std::string(3000, 'c');
  CHECK(t.resolve(std::string(2000, 'p'), cwd) == kNotOurs);
  CHECK(t.resolve(std::string(20, 'p'), cwd) == ours(0, "ds/" + std::string(3000, 'c') + "/" + std::string(20, 'p')));
}

TEST_CASE("keys are raw bytes") {
  MountTable t = basic_table();
  CHECK(t.resolve("/mnt/data/été 2024/a+b=c&d.jpg") == ours(0, "ds/été 2024/a+b=c&d.jpg"));
  CHECK(t.resolve("/mnt/data/%41%2F/~x?y#z") == ours(0, "ds/%41%2F/~x?y#z"));
  CHECK(t.resolve("/mnt/data/\xff\xfe/\t") == ours(0, "ds/\xff\xfe/\t"));
  CHECK(t.resolve("/mnt/data/ lead and trail ") == ours(0, "ds/ lead and trail "));
  CHECK(t.local_path(0, "ds/été 2024/a+b=c&d.jpg") == "/mnt/data/été 2024/a+b=c&d.jpg");
}

TEST_CASE("the longest mount path wins when mounts nest") {
  // Config forbids nesting; the table must still be deterministic, in any order.
  std::vector<MountConfig> a = {mount("/mnt/data", "outer/"), mount("/mnt/data/special", "inner/")};
  std::vector<MountConfig> b = {a[1], a[0]};
  MountTable ta(a);
  MountTable tb(b);
  CHECK(ta.resolve("/mnt/data/special/x") == ours(1, "inner/x"));
  CHECK(tb.resolve("/mnt/data/special/x") == ours(0, "inner/x"));
  CHECK(ta.resolve("/mnt/data/special") == ours(1, "inner/", true));
  CHECK(ta.resolve("/mnt/data/specialty/x") == ours(0, "outer/specialty/x"));
  CHECK(ta.resolve("/mnt/data/special/..") == ours(0, "outer/", true));
  CHECK(ta.resolve("/mnt/data/x") == ours(0, "outer/x"));
  CHECK(ta.local_path(1, "inner/x") == "/mnt/data/special/x");

  // A mount at "/" takes everything the others do not.
  MountTable root({mount("/", "root/"), mount("/mnt/data", "ds/")});
  CHECK(root.resolve("/etc/passwd") == ours(0, "root/etc/passwd"));
  CHECK(root.resolve("/") == ours(0, "root/", true));
  CHECK(root.resolve("/..") == ours(0, "root/", true));
  CHECK(root.resolve("/mnt/data/x") == ours(1, "ds/x"));
  CHECK(root.local_path(0, "root/etc/passwd") == "/etc/passwd");
  CHECK(root.local_path(0, "root/") == "/");
  CHECK(root.maybe_ours("/anything"));
}

TEST_CASE("hand-built configs are made safe") {
  MountTable t({mount("relative/path", "r/"), mount("", "e/"), mount("/mnt/x/", "noslash"),
                mount("/mnt//y/./z/..", "y/"), mount(std::string("/mnt/\0n", 7), "n/")});
  CHECK(t.mounts().size() == 5);
  CHECK(t.resolve("relative/path/x", "/") == kNotOurs);
  CHECK(t.resolve("x", "/") == kNotOurs);
  CHECK(t.local_path(0, "r/x") == "");
  CHECK(t.local_path(1, "e/x") == "");
  CHECK(t.resolve("/mnt/x/a") == ours(2, "noslash/a"));
  CHECK(t.resolve("/mnt/x") == ours(2, "noslash/", true));
  CHECK(t.local_path(2, "noslash/a") == "/mnt/x/a");
  CHECK(t.resolve("/mnt/y/a") == ours(3, "y/a"));
  CHECK(t.resolve("/mnt") == kNotOurs);

  MountTable empty({});
  CHECK(empty.resolve("/mnt/data/x") == kNotOurs);
  CHECK_FALSE(empty.maybe_ours("/mnt/data/x"));
  CHECK(empty.local_path(0, "x") == "");
}

TEST_CASE("resolve_at resolves against a directory of ours") {
  MountTable t = basic_table();
  CHECK(t.resolve_at(0, "ds/dir", "x") == ours(0, "ds/dir/x"));
  CHECK(t.resolve_at(0, "ds/dir/", "x/y/") == ours(0, "ds/dir/x/y"));
  CHECK(t.resolve_at(0, "ds/", "x") == ours(0, "ds/x"));
  CHECK(t.resolve_at(0, "ds", "x") == ours(0, "ds/x"));
  CHECK(t.resolve_at(0, "ds/dir", ".") == ours(0, "ds/dir"));
  CHECK(t.resolve_at(0, "ds/dir", "..") == ours(0, "ds/", true));
  CHECK(t.resolve_at(0, "ds/", "..") == kNotOurs);
  CHECK(t.resolve_at(0, "ds/dir", "../../etc/passwd") == kNotOurs);
  CHECK(t.resolve_at(0, "ds/dir", "../../data/b") == ours(0, "ds/b"));
  CHECK(t.resolve_at(0, "ds/dir", "../../../data/b") == ours(1, "b"));
  CHECK(t.resolve_at(1, "", "x") == ours(1, "x"));
  CHECK(t.resolve_at(1, "a/b", "../c") == ours(1, "a/c"));
  // An absolute rel is resolve(rel), whatever the directory.
  CHECK(t.resolve_at(0, "ds/dir", "/data/q") == ours(1, "q"));
  CHECK(t.resolve_at(0, "ds/dir", "/etc/passwd") == kNotOurs);
  CHECK(t.resolve_at(-1, "", "/mnt/data/x") == ours(0, "ds/x"));
  // Bad directories and empty names.
  CHECK(t.resolve_at(0, "ds/dir", "") == kNotOurs);
  CHECK(t.resolve_at(-1, "ds/dir", "x") == kNotOurs);
  CHECK(t.resolve_at(2, "ds/dir", "x") == kNotOurs);
  CHECK(t.resolve_at(0, "other/dir", "x") == kNotOurs);
  CHECK(t.resolve_at(0, "ds/../etc", "x") == kNotOurs);
  CHECK(t.resolve_at(0, "ds/dir", std::string_view("x\0y", 3)) == kNotOurs);
}

TEST_CASE("local_path is the inverse of resolve") {
  MountTable t = basic_table();
  CHECK(t.local_path(0, "ds/") == "/mnt/data");
  CHECK(t.local_path(0, "ds") == "/mnt/data");
  CHECK(t.local_path(0, "ds/a/b.jpg") == "/mnt/data/a/b.jpg");
  CHECK(t.local_path(0, "ds/a/dir/") == "/mnt/data/a/dir");
  CHECK(t.local_path(1, "") == "/data");
  CHECK(t.local_path(1, "x/y") == "/data/x/y");
  // Keys resolve could not have produced.
  CHECK(t.local_path(0, "dsx/a") == "");
  CHECK(t.local_path(0, "other/a") == "");
  CHECK(t.local_path(0, "ds/../etc") == "");
  CHECK(t.local_path(0, "ds/a/./b") == "");
  CHECK(t.local_path(0, "ds/a//b") == "");
  CHECK(t.local_path(0, "ds//a") == "");
  CHECK(t.local_path(1, "..") == "");
  CHECK(t.local_path(0, std::string_view("ds/a\0b", 6)) == "");
  CHECK(t.local_path(0, "ds/" + std::string(PATH_MAX, 'k')) == "");
  CHECK(t.local_path(-1, "ds/a") == "");
  CHECK(t.local_path(2, "ds/a") == "");
  for (const char* p : {"/mnt/data", "/mnt/data/a", "/mnt/data/a b/c+d", "/data", "/data/z"}) {
    CAPTURE(p);
    Resolved r = t.resolve(p);
    REQUIRE(r.ours());
    CHECK(t.local_path(r.mount, r.key) == p);
  }
}

TEST_CASE("maybe_ours is a sound, allocation-free pre-check") {
  MountTable t({mount("/mnt/data", "ds/"), mount("/data", ""), mount("/srv/a/b/c", "c/")});
  // Certainly not ours.
  for (const char* p : {"/", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/etc/passwd", "/mnt",
                        "/mnt/", "/mnt/database", "/mnt/dat/x", "/mnt/other/x", "/datax", "/srv/a/b",
                        "/srv/a/b/cd", "/proc/self/maps", "/dev/shm/objcache-1000-default"}) {
    CAPTURE(p);
    CHECK_FALSE(t.maybe_ours(p));
    CHECK_FALSE(t.resolve(p).ours());
  }
  // Ours, or possibly ours.
  for (const char* p : {"/mnt/data", "/mnt/data/x", "//mnt/./data/", "/data/x/y", "/srv/a/b/c/d",
                        "/usr/../mnt/data/x", "/x/../y", "relative/path"}) {
    CAPTURE(p);
    CHECK(t.maybe_ours(p));
  }
  CHECK_FALSE(t.maybe_ours(std::string_view("/mnt/data/\0x", 12)));
  CHECK_FALSE(t.maybe_ours("/mnt/data/" + std::string(PATH_MAX, 'a')));

  const std::string long_outside = "/home/someone/.cache/torch/hub/checkpoints/" + std::string(300, 'w');
  const std::string long_inside = "/mnt/data/imagenet/train/n01440764/" + std::string(300, 'w');
  long before = g_allocs.load();
  bool a = t.maybe_ours(long_outside);
  bool b = t.maybe_ours(long_inside);
  bool c = t.maybe_ours("/usr/lib/python3/dist-packages/torch/__init__.py");
  bool d = t.maybe_ours("/a/b/../../mnt/data/x");
  long after = g_allocs.load();
  CHECK(after == before);
  CHECK_FALSE(a);
  CHECK(b);
  CHECK_FALSE(c);
  CHECK(d);
}

TEST_CASE("no exception escapes when memory runs out") {
  std::vector<MountConfig> cfg = {mount("/mnt/data/with/a/long/enough/path", "a/long/prefix/beyond/sso/")};
  MountTable t(cfg);
  const std::string p = "/mnt/data/with/a/long/enough/path/and/a/long/file/name.jpg";
  REQUIRE(t.resolve(p).ours());

  g_fail_allocs.store(true);
  Resolved r = t.resolve(p);
  Resolved rel = t.resolve("and/a/long/file/name.jpg", "/mnt/data/with/a/long/enough/path");
  Resolved at = t.resolve_at(0, "a/long/prefix/beyond/sso/and", "a/long/file/name.jpg");
  std::string lp = t.local_path(0, "a/long/prefix/beyond/sso/and/a/long/file/name.jpg");
  bool maybe = t.maybe_ours(p);
  MountTable built(std::move(cfg));
  g_fail_allocs.store(false);

  CHECK_FALSE(r.ours());
  CHECK_FALSE(rel.ours());
  CHECK_FALSE(at.ours());
  CHECK(lp.empty());
  CHECK(maybe);
  CHECK(built.mounts().empty());  // nothing half-built: everything passes through
  CHECK_FALSE(built.resolve(p).ours());
}

// ---- property test against a naive reference ------------------------------

namespace {

std::vector<std::string> split_normalize(const std::string& abs) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (cur == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!cur.empty() && cur != ".") {
      out.push_back(cur);
    }
    cur.clear();
  };
  for (char ch : abs) {
    if (ch == '/') {
      flush();
    } else {
      cur += ch;
    }
  }
  flush();
  return out;
}

// The obvious implementation: a vector of components, mounts compared
// component by component.
Resolved reference(const std::vector<MountConfig>& mounts, const std::string& path,
                   const std::string& cwd) {
  if (path.empty()) return {};
  if (path[0] != '/' && (cwd.empty() || cwd[0] != '/')) return {};
  std::vector<std::string> comps = split_normalize(path[0] == '/' ? path : cwd + "/" + path);
  int best = -1;
  std::size_t best_n = 0;
  for (std::size_t i = 0; i < mounts.size(); ++i) {
    std::vector<std::string> mc = split_normalize(mounts[i].path);
    if (mc.size() > comps.size()) continue;
    if (!std::equal(mc.begin(), mc.end(), comps.begin())) continue;
    if (best < 0 || mc.size() > best_n) {
      best = static_cast<int>(i);
      best_n = mc.size();
    }
  }
  if (best < 0) return {};
  Resolved r;
  r.mount = best;
  r.key = mounts[static_cast<std::size_t>(best)].source.prefix;
  for (std::size_t i = best_n; i < comps.size(); ++i) {
    r.key += comps[i];
    if (i + 1 < comps.size()) r.key += '/';
  }
  r.is_root = best_n == comps.size();
  return r;
}

bool contains(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("property: random paths never escape and round-trip") {
  const std::vector<MountConfig> cfg = {mount("/mnt/data", "ds/"), mount("/data", ""),
                                        mount("/mnt/data/a", "nested/"), mount("/mnt/database", "db/x/")};
  MountTable t(cfg);
  const std::vector<std::string> parts = {"a", "..", ".", "", "data", "mnt", "database", "b c", "é"};

  std::mt19937 rng(20240611);  // fixed: a failure reproduces
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  auto random_path = [&](bool absolute) {
    std::string p = absolute ? "/" : "";
    std::size_t n = 1 + pick(8);
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) p += '/';
      p += parts[pick(parts.size())];
    }
    if (pick(4) == 0) p += '/';
    return p;
  };

  int n_ours = 0;
  int n_roots = 0;
  int n_at = 0;
  const int kRuns = 20000;
  for (int i = 0; i < kRuns; ++i) {
    const bool absolute = pick(3) != 0;
    const std::string path = random_path(absolute);
    const std::string cwd = absolute && pick(2) == 0 ? std::string() : random_path(true);
    CAPTURE(path);
    CAPTURE(cwd);
    Resolved r = t.resolve(path, cwd);
    REQUIRE(r == reference(cfg, path, cwd));
    if (absolute) {
      // Sound always; exact without "..".
      if (r.ours()) REQUIRE(t.maybe_ours(path));
      if (!mounts::has_dotdot(path)) REQUIRE(t.maybe_ours(path) == r.ours());
    }
    if (!r.ours()) {
      REQUIRE(r.key.empty());
      continue;
    }
    ++n_ours;
    n_roots += r.is_root ? 1 : 0;
    const std::string& prefix = cfg[static_cast<std::size_t>(r.mount)].source.prefix;
    REQUIRE(r.key.starts_with(prefix));
    REQUIRE(r.is_root == (r.key == prefix));
    REQUIRE_FALSE(r.key.starts_with("../"));
    REQUIRE_FALSE(r.key.starts_with("/"));
    REQUIRE_FALSE(r.key == "..");
    REQUIRE_FALSE(contains(r.key, "//"));
    REQUIRE_FALSE(contains(r.key, "/./"));
    REQUIRE_FALSE(contains(r.key, "/../"));
    REQUIRE_FALSE(r.key.ends_with("/.."));
    REQUIRE_FALSE(r.key.ends_with("/."));
    REQUIRE(mounts::is_clean_relative(std::string_view(r.key).substr(prefix.size()).substr(
        0, r.is_root ? 0 : std::string::npos)));

    const std::string local = t.local_path(r.mount, r.key);
    REQUIRE_FALSE(local.empty());
    REQUIRE(t.resolve(local) == r);
    REQUIRE(t.resolve(local, "/elsewhere") == r);

    // From this directory, a random relative name resolves like the full path.
    const std::string rel = random_path(false);
    CAPTURE(rel);
    REQUIRE(t.resolve_at(r.mount, r.key, rel) == reference(cfg, rel, local));
    ++n_at;
  }
  MESSAGE("ours: " << n_ours << " of " << kRuns << ", roots: " << n_roots << ", resolve_at: " << n_at);
  CHECK(n_ours > kRuns / 20);  // the generator does hit the mounts
  CHECK(n_roots > 0);
}

namespace {

// 10,000 mount paths that stress the sorted lookup: siblings that share
// bytes but not components ("s1", "s10", "s1-x", "s1.x", "s1 x"), bytes
// above 0x7f, nesting at several depths (hand-built: config refuses it).
std::vector<MountConfig> many_mounts() {
  std::vector<MountConfig> out;
  for (int i = 0; out.size() < 10000; ++i) {
    const std::string base = "/data/s" + std::to_string(i);
    const std::string n = std::to_string(i);
    out.push_back(mount(base, "p" + n + "/"));
    if (i % 3 == 0) out.push_back(mount(base + "-x", "dash" + n + "/"));
    if (i % 5 == 0) out.push_back(mount(base + ".x", "dot" + n + "/"));
    if (i % 7 == 0) out.push_back(mount(base + " x", "space" + n + "/"));
    if (i % 11 == 0) out.push_back(mount(base + "/inner", "in" + n + "/"));
    if (i % 13 == 0) out.push_back(mount(base + "/inner/deeper/still", "deep" + n + "/"));
    if (i % 17 == 0) out.push_back(mount("/\xc3\xa9/" + n, "e" + n + "/"));
    if (i % 19 == 0) out.push_back(mount("/data/s" + n + "\xff", "ff" + n + "/"));
  }
  out.resize(10000);
  return out;
}

}  // namespace

TEST_CASE("10,000 mounts: every one resolves, and lookups agree with the reference") {
  const std::vector<MountConfig> cfg = many_mounts();
  MountTable t(cfg);
  REQUIRE(t.mounts().size() == 10000);
  // The reference of the property test, with each mount split once.
  std::vector<std::vector<std::string>> split(cfg.size());
  for (std::size_t i = 0; i < cfg.size(); ++i) split[i] = split_normalize(cfg[i].path);
  auto expect = [&](const std::string& path) {
    std::vector<std::string> comps = split_normalize(path);
    int best = -1;
    for (std::size_t i = 0; i < cfg.size(); ++i) {
      const auto& mc = split[i];
      if (mc.size() > comps.size() || !std::equal(mc.begin(), mc.end(), comps.begin())) continue;
      if (best < 0 || mc.size() > split[static_cast<std::size_t>(best)].size()) best = static_cast<int>(i);
    }
    return best;
  };

  long allocs = 0;
  for (std::size_t i = 0; i < cfg.size(); ++i) {
    const std::string& p = cfg[i].path;
    const std::string& prefix = cfg[i].source.prefix;
    const int m = static_cast<int>(i);
    CAPTURE(p);
    REQUIRE(t.resolve(p) == ours(m, prefix, true));
    REQUIRE(t.resolve(p + "/img 1.jpg") == ours(m, prefix + "img 1.jpg"));
    REQUIRE(t.resolve("/./" + p + "//sub/./f/") == ours(m, prefix + "sub/f"));
    REQUIRE(t.local_path(m, prefix + "sub/f") == p + "/sub/f");
    const std::string inside = p + "/img 1.jpg";
    const std::string messy = "//" + p + "/./x/";
    long before = g_allocs.load();
    const bool maybe = t.maybe_ours(inside);
    const bool maybe_messy = t.maybe_ours(messy);
    allocs += g_allocs.load() - before;
    REQUIRE(maybe);
    REQUIRE(maybe_messy);
    // Neighbours in byte order that are not below it (the reference is
    // slow: every 8th mount).
    if (i % 8 != 0) continue;
    for (const char* tail : {"0", "-", ".", "x", "\x01", "\xfe"}) {
      const std::string near = p + tail + "/f";
      CAPTURE(near);
      const int want = expect(near);
      REQUIRE(t.resolve(near).mount == want);
      before = g_allocs.load();
      const bool m_near = t.maybe_ours(near);
      allocs += g_allocs.load() - before;
      REQUIRE(m_near == (want >= 0));
    }
  }
  CHECK(allocs == 0);
  for (const char* p : {"/", "/data", "/data/s", "/data/x/s1", "/usr/lib/libc.so.6", "/\xc3\xa9", "/datas1"}) {
    CAPTURE(p);
    CHECK_FALSE(t.resolve(p).ours());
    CHECK_FALSE(t.maybe_ours(p));
  }
}

TEST_CASE("above(): the directories above mounts and their children toward them") {
  MountTable t({mount("/mnt/data", "ds/"), mount("/mnt/other/x", ""), mount("/srv/a", "a/")});
  auto a = t.above("/mnt/data/..");
  CHECK(a.path == "/mnt");
  CHECK(a.names == std::vector<std::string>{"data", "other"});
  CHECK(t.above("/").names == std::vector<std::string>{"mnt", "srv"});
  CHECK(t.above("..", "/mnt/other/x").names == std::vector<std::string>{"x"});
  CHECK(t.above("/mnt/other").path == "/mnt/other");
  // In a mount, beside one, or below nothing: not above.
  CHECK(t.above("/mnt/data").names.empty());
  CHECK(t.above("/mnt/data/x/..").names.empty());
  CHECK(t.above("/mnt/dat").names.empty());
  CHECK(t.above("/mnt/database").names.empty());
  CHECK(t.above("/usr").names.empty());
  MountTable root({mount("/", "")});
  CHECK(root.above("/x").names.empty());
}
