// SPDX-License-Identifier: Apache-2.0
// The shim's configuration scanner and prefix matching (preload/prefixes.*):
// what it reads, what it refuses to vouch for (the engine then loads and the
// full parser reports), and that "not ours" from it is never wrong: on
// random paths, every kNone agrees with libcache's MountTable (neither in a
// mount nor a directory above one that the disk lacks). (Built like
// preload/: without _FILE_OFFSET_BITS=64.)
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "objcache/mount_table.h"
#include "prefixes.h"
#include "support/temp_dir.h"

using namespace objcache::preload;
using prefixes::Match;
using prefixes::Scan;

namespace {

Scan scan(const objcache::test::TempDir& dir, const std::string& text) {
  const std::string path = dir.path() + "/c.toml";
  std::ofstream(path, std::ios::trunc) << text;
  ::setenv("OBJCACHE_CONFIG", path.c_str(), 1);
  return prefixes::load();
}

const char* kPlain = R"(# objcache
[cache]
name = "t1"            # a comment
memory = "64MiB"
spill_dir = ""
page_size = '1MiB'

[store]
endpoint = "http://127.0.0.1:9000"
prefetch_concurrency = 32
addressing = "path"

[[mount]]
path = "/mnt//data/"
source = "s3://bucket/imagenet/"
writable = false
metadata_ttl = "5m"

[[ mount ]]
path = '/srv/objcache-b'
source = "s3://bucket/b/"
)";

}  // namespace

TEST_CASE("a plain configuration: its mounts, matched exactly for absolute paths") {
  objcache::test::TempDir dir;
  REQUIRE(scan(dir, kPlain) == Scan::kMounts);
  CHECK(prefixes::match("/mnt/data") == Match::kMaybe);
  CHECK(prefixes::match("/mnt/data/") == Match::kMaybe);
  CHECK(prefixes::match("/mnt/data/train/x.jpg") == Match::kMaybe);
  CHECK(prefixes::match("//mnt/./data//x") == Match::kMaybe);
  CHECK(prefixes::match("/srv/objcache-b/k") == Match::kMaybe);
  CHECK(prefixes::match("/mnt/datax") == Match::kNone);
  CHECK(prefixes::match("/mnt/dat") == Match::kNone);
  CHECK(prefixes::match("/mnt") == Match::kNone);  // above, but absolute without "..": the disk's
  CHECK(prefixes::match("/etc/passwd") == Match::kNone);
  CHECK(prefixes::match("/srv/objcache") == Match::kNone);
  CHECK(prefixes::match("/mnt/other/../data/x") == Match::kMaybe);
  CHECK(prefixes::match("/mnt/data/../other") == Match::kNone);
  CHECK(prefixes::match("") == Match::kNone);
}

TEST_CASE("no configuration, or one without mounts: nothing to match") {
  objcache::test::TempDir dir;
  CHECK(scan(dir, "") == Scan::kNoMounts);
  CHECK(scan(dir, "[cache]\nname = \"x\"\n") == Scan::kNoMounts);
  ::unsetenv("OBJCACHE_CONFIG");
  const std::string home = dir.path() + "/home";
  ::mkdir(home.c_str(), 0700);
  ::setenv("HOME", home.c_str(), 1);
  // No ~/.config/objcache/config.toml; /etc/objcache/config.toml decides.
  struct stat st {};
  if (::stat("/etc/objcache/config.toml", &st) != 0) CHECK(prefixes::load() == Scan::kNoMounts);
  ::setenv("OBJCACHE_CONFIG", (dir.path() + "/missing.toml").c_str(), 1);
  CHECK(prefixes::load() == Scan::kUnsure);  // named but missing: the full parser says so
}

TEST_CASE("anything the scanner cannot vouch for loads the engine (kUnsure)") {
  objcache::test::TempDir dir;
  const std::string mount = "[[mount]]\npath = \"/mnt/a\"\nsource = \"s3://b/a/\"\n";
  for (const std::string& text : {
           std::string("name = \"top-level key\"\n") + mount,
           std::string("[cache]\nname = \"\"\"multi\nline\"\"\"\n") + mount,
           std::string("[cache]\nname = [\"an\", \"array\"]\n") + mount,
           std::string("[cache]\nname = { inline = 1 }\n") + mount,
           std::string("[cache]\nmemory = lots\n") + mount,
           std::string("[cache]\nname.dotted = 1\n") + mount,
           std::string("[cache]\n\"quoted\" = 1\n") + mount,
           std::string("[cache]\nname = \"a\"\nname = \"b\"\n") + mount,
           std::string("[cache]\n[cache]\n") + mount,
           std::string("[caches]\n") + mount,
           std::string("[mount]\npath = \"/mnt/a\"\n"),
           std::string("[[mount]]\nsource = \"s3://b/a/\"\n"),
           std::string("[[mount]]\npath = \"/mnt/a\"\npath = \"/mnt/b\"\n"),
           std::string("[[mount]]\npath = \"/mnt/\\u0061\"\n"),
           std::string("[[mount]]\npath = \"relative\"\n"),
           std::string("[[mount]]\npath = \"/mnt/../etc\"\n"),
           std::string("[[mount]]\npath = \"/\"\n"),
           std::string("[[mount]]\npath = 3\n"),
           std::string("[[mount]]\npath = \"/mnt/caf\xc3\xa9\"\n"),
           std::string("[[mount]]\npath = \"/mnt/a\" junk\n"),
           mount + "[[mount]]\npath = \"/mnt/a/b\"\n",
           mount + "[[mount]]\npath = \"/mnt//a\"\n",
           std::string("[[mount]]\npath = \"/mnt/a\nsource = \"x\"\n"),
       }) {
    CAPTURE(text);
    CHECK(scan(dir, text) == Scan::kUnsure);
  }
}

TEST_CASE("relative paths and \"..\": against the current directory, above-mount directories the disk lacks") {
  objcache::test::TempDir dir;
  const std::string m = dir.path() + "/m/data";
  REQUIRE(scan(dir, "[[mount]]\npath = \"" + m + "\"\nsource = \"s3://b/\"\n") == Scan::kMounts);
  char old[4096];
  REQUIRE(::getcwd(old, sizeof old) != nullptr);
  REQUIRE(::chdir(dir.path().c_str()) == 0);
  prefixes::refresh_cwd();
  CHECK(prefixes::match("m/data/x") == Match::kMaybe);
  CHECK(prefixes::match("./m//data") == Match::kMaybe);
  CHECK(prefixes::match("x") == Match::kNone);
  CHECK(prefixes::match("m") == Match::kMaybe);  // above the mount, not on disk: the engine shows it
  CHECK(prefixes::match(".") == Match::kNone);   // above it too, but on disk
  REQUIRE(::mkdir((dir.path() + "/m").c_str(), 0700) == 0);
  CHECK(prefixes::match("m") == Match::kNone);   // now the disk's
  CHECK(prefixes::match("../x") == Match::kNone);
  REQUIRE(::chdir(old) == 0);
  prefixes::refresh_cwd();
}

TEST_CASE("kNone is never wrong: random paths against libcache's MountTable") {
  objcache::test::TempDir dir;
  const std::vector<std::string> paths = {"/mnt/data", "/mnt/data-2", "/mnt/d", "/srv/x/y/z", "/a"};
  std::string text;
  std::vector<objcache::MountConfig> mounts;
  for (const std::string& p : paths) {
    text += "[[mount]]\npath = \"" + p + "\"\nsource = \"s3://b/\"\n";
    objcache::MountConfig mc;
    mc.path = p;
    mounts.push_back(mc);
  }
  REQUIRE(scan(dir, text) == Scan::kMounts);
  const objcache::MountTable table(mounts);
  char cwd[4096];
  REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
  REQUIRE(::chdir("/") == 0);  // "/" exists: only paths in a mount, or above one the disk lacks, are ours
  prefixes::refresh_cwd();
  const std::vector<std::string> parts = {"mnt", "data", "data-2", "d", "srv", "x", "y", "z", "a",
                                          ".", "..", "", "dat", "data2", "q"};
  std::mt19937 rng(7);
  int none = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string p = rng() % 3 != 0 ? "/" : "";
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k) {
      if (k > 0) p += "/";
      p += parts[rng() % parts.size()];
    }
    if (rng() % 5 == 0) p += "/";
    if (p.empty()) continue;
    if (prefixes::match(p.c_str()) != Match::kNone) continue;
    ++none;
    CAPTURE(p);
    CHECK_FALSE(table.resolve(p, "/").ours());
    const objcache::MountTable::Above a = table.above(p, "/");
    struct stat st {};
    const bool shown = !a.names.empty() && ::lstat(a.path.c_str(), &st) != 0;
    // Above-mount directories count only through ".." or a relative path (dispatch's pre-check).
    const bool dotdot = p[0] != '/' || p.find("..") != std::string::npos;
    CHECK_FALSE((shown && dotdot));
  }
  CHECK(none > 1000);
  REQUIRE(::chdir(cwd) == 0);
  prefixes::refresh_cwd();
}
