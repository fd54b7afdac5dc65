// SPDX-License-Identifier: Apache-2.0
// load_config and parse_config: the README example, the defaults, every
// validation rule, and the exact shape of the messages users see
// ("FILE:LINE: key 'K': expected ..., got ...").
#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <random>
#include <string>

#include "objcache/config.h"
#include "support/env_guard.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace std::chrono_literals;
using objcache::test::TempDir;

namespace {

constexpr const char* kFile = "/etc/x.toml";

// The example of DESIGN.md's "Configuration" section, comments and all.
constexpr const char* kDesignExample = R"([cache]
name = "default"          # processes with the same name share pages
memory = "4GiB"           # RAM tier budget
spill_dir = "/var/tmp/objcache"   # SSD tier; "" disables it
spill_size = "64GiB"
page_size = "1MiB"        # unit of caching for large objects
eviction = "clock"        # "clock" | "none": "none" keeps what is
                          # cached and stops admitting when full
                          # (no thrashing when data > cache)

[store]                   # defaults for every mount
endpoint = "http://127.0.0.1:9000"
read_endpoint = ""        # optional, e.g. an accelerator endpoint
region = "us-east-1"
addressing = "path"       # "path" | "virtual"
credentials = "env"       # "env" | "anonymous" | "profile:NAME" | "file:PATH"
prefetch_concurrency = 32 # GETs in flight per node for prefetch
upload_concurrency = 16

[[mount]]
path = "/mnt/data/imagenet"         # local prefix, need not exist
source = "s3://bucket/imagenet/"    # oss:// accepted as a synonym
writable = false                    # true: files written here are
                                    # uploaded on close
metadata_ttl = "5m"                 # 0 = never revalidate (immutable)
prefetch = "directory"              # "none" | "file" | "directory"
)";

using objcache::test::EnvGuard;

Config parse_ok(const std::string& text) {
  auto r = parse_config(text, kFile);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
  return std::move(r).value();
}

std::string parse_error(const std::string& text) {
  auto r = parse_config(text, kFile);
  REQUIRE_MESSAGE(!r.ok(), "accepted:\n" << text);
  CHECK(r.status() == Status::ConfigError);
  return r.error().message;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A rule broken: the message starts with "FILE:LINE: key 'KEY': " and
// says the fragment somewhere.
struct Broken {
  const char* toml;
  int line;
  const char* key;
  const char* fragment;
};

void check_broken(const Broken& b) {
  CAPTURE(b.toml);
  std::string msg = parse_error(b.toml);
  CAPTURE(msg);
  std::string head = std::string(kFile) + ":" + std::to_string(b.line) + ": key '" + b.key + "': ";
  CHECK(msg.rfind(head, 0) == 0);
  CHECK(contains(msg, b.fragment));
  CHECK(msg.find('\n') == std::string::npos);
}

}  // namespace

TEST_CASE("the DESIGN.md example parses to its values") {
  Config c = parse_ok(kDesignExample);
  CHECK(c.path == kFile);
  CHECK(c.cache.name == "default");
  CHECK(c.cache.memory == 4ull << 30);
  CHECK(c.cache.spill_dir == "/var/tmp/objcache");
  CHECK(c.cache.spill_size == 64ull << 30);
  CHECK(c.cache.page_size == 1ull << 20);
  CHECK(c.cache.eviction == Eviction::Clock);
  CHECK(c.store.endpoint == "http://127.0.0.1:9000");
  CHECK(c.store.read_endpoint.empty());
  CHECK(c.store.region == "us-east-1");
  CHECK(c.store.addressing == Addressing::Path);
  CHECK(c.store.credentials == "env");
  CHECK(c.store.prefetch_concurrency == 32);
  CHECK(c.store.upload_concurrency == 16);
  CHECK(c.store.list_concurrency == 16);
  REQUIRE(c.mounts.size() == 1);
  const MountConfig& m = c.mounts[0];
  CHECK(m.path == "/mnt/data/imagenet");
  CHECK(m.source_text == "s3://bucket/imagenet/");
  CHECK(m.source.scheme == "s3");
  CHECK(m.source.bucket == "bucket");
  CHECK(m.source.prefix == "imagenet/");
  CHECK(m.writable == false);
  CHECK(m.metadata_ttl == 5min);
  CHECK(m.prefetch == Prefetch::Directory);
  CHECK(m.store.endpoint == "http://127.0.0.1:9000");
  CHECK(m.store.region == "us-east-1");
  CHECK(c.log.level == LogLevel::Warn);
}

TEST_CASE("load_config reads the example from a file") {
  TempDir dir;
  std::string path = dir.write("config.toml", kDesignExample);
  auto r = load_config(path);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
  CHECK(r->path == path);
  REQUIRE(r->mounts.size() == 1);
  CHECK(r->mounts[0].source.bucket == "bucket");
}

TEST_CASE("omitted tables and keys take config.h's defaults") {
  const CacheConfig cache;
  const StoreConfig store;
  const LogConfig log;
  for (const char* text : {"", "# nothing\n", "[cache]\n[store]\n[log]\n"}) {
    CAPTURE(text);
    Config c = parse_ok(text);
    CHECK(c.path == kFile);
    CHECK(c.cache.name == cache.name);
    CHECK(c.cache.memory == cache.memory);
    CHECK(c.cache.spill_dir == cache.spill_dir);
    CHECK(c.cache.spill_size == cache.spill_size);
    CHECK(c.cache.page_size == cache.page_size);
    CHECK(c.cache.eviction == cache.eviction);
    CHECK(c.store.endpoint == store.endpoint);
    CHECK(c.store.read_endpoint == store.read_endpoint);
    CHECK(c.store.region == store.region);
    CHECK(c.store.addressing == store.addressing);
    CHECK(c.store.credentials == store.credentials);
    CHECK(c.store.prefetch_concurrency == store.prefetch_concurrency);
    CHECK(c.store.upload_concurrency == store.upload_concurrency);
    CHECK(c.store.connect_timeout == store.connect_timeout);
    CHECK(c.store.stall_timeout == store.stall_timeout);
    CHECK(c.store.retry_deadline == store.retry_deadline);
    CHECK(c.mounts.empty());
    CHECK(c.log.level == log.level);
    CHECK(c.log.file == log.file);
  }
  Config c = parse_ok("[[mount]]\npath = \"/data\"\nsource = \"s3://bkt\"\n");
  REQUIRE(c.mounts.size() == 1);
  const MountConfig defaults;
  CHECK(c.mounts[0].writable == defaults.writable);
  CHECK(c.mounts[0].metadata_ttl == defaults.metadata_ttl);
  CHECK(c.mounts[0].prefetch == defaults.prefetch);
  CHECK(c.mounts[0].source.prefix.empty());
  CHECK(c.mounts[0].store.credentials == "env");
}

TEST_CASE("every key can be set") {
  EnvGuard home("HOME", "/home/tester");
  Config c = parse_ok(R"(
[cache]
name = "job-7"
memory = "512MiB"
spill_dir = ""
spill_size = 0
page_size = "4MiB"
eviction = "none"

[store]
endpoint = "https://oss-cn-hangzhou.aliyuncs.com"
read_endpoint = "http://accel.local:8080"
region = "oss-cn-hangzhou"
addressing = "virtual"
credentials = "file:~/.oss/credentials.json"
prefetch_concurrency = 1024
upload_concurrency = 1
list_concurrency = 3
connect_timeout = "250ms"
stall_timeout = 20
retry_deadline = "2m"

[[mount]]
path = "/mnt/out/"
source = "oss://results/run-1"
writable = true
metadata_ttl = 0
prefetch = "none"

[log]
level = "debug"
file = "~/objcache.log"
)");
  CHECK(c.cache.name == "job-7");
  CHECK(c.cache.memory == 512ull << 20);
  CHECK(c.cache.spill_dir.empty());
  CHECK(c.cache.spill_size == 0);
  CHECK(c.cache.page_size == 4ull << 20);
  CHECK(c.cache.eviction == Eviction::None);
  CHECK(c.store.endpoint == "https://oss-cn-hangzhou.aliyuncs.com");
  CHECK(c.store.read_endpoint == "http://accel.local:8080");
  CHECK(c.store.region == "oss-cn-hangzhou");
  CHECK(c.store.addressing == Addressing::Virtual);
  CHECK(c.store.credentials == "file:/home/tester/.oss/credentials.json");
  CHECK(c.store.prefetch_concurrency == 1024);
  CHECK(c.store.upload_concurrency == 1);
  CHECK(c.store.list_concurrency == 3);
  CHECK(c.store.connect_timeout == 250ms);
  CHECK(c.store.stall_timeout == 20s);
  CHECK(c.store.retry_deadline == 2min);
  REQUIRE(c.mounts.size() == 1);
  CHECK(c.mounts[0].path == "/mnt/out");
  CHECK(c.mounts[0].source.scheme == "oss");
  CHECK(c.mounts[0].source.bucket == "results");
  CHECK(c.mounts[0].source.prefix == "run-1/");
  CHECK(c.mounts[0].source_text == "oss://results/run-1");
  CHECK(c.mounts[0].writable);
  CHECK(c.mounts[0].metadata_ttl == 0ms);
  CHECK(c.mounts[0].prefetch == Prefetch::None);
  CHECK(c.mounts[0].store.credentials == "file:/home/tester/.oss/credentials.json");
  CHECK(c.log.level == LogLevel::Debug);
  CHECK(c.log.file == "/home/tester/objcache.log");
}

TEST_CASE("sizes and durations may be plain integers of bytes and seconds") {
  Config c = parse_ok(R"(
[cache]
memory = 1073741824
page_size = 65536
spill_size = 1000000
[store]
connect_timeout = 3
retry_deadline = 600
[[mount]]
path = "/d"
source = "s3://bkt/p/"
metadata_ttl = 86400
)");
  CHECK(c.cache.memory == 1ull << 30);
  CHECK(c.cache.page_size == 64ull << 10);
  CHECK(c.cache.spill_size == 1000000);
  CHECK(c.store.connect_timeout == 3s);
  CHECK(c.store.retry_deadline == 10min);
  CHECK(c.mounts[0].metadata_ttl == 24h);
}

TEST_CASE("each [[mount]] gets [store] with its own overrides") {
  Config c = parse_ok(R"(
[store]
endpoint = "http://127.0.0.1:9000"
region = "us-east-1"
credentials = "env"
prefetch_concurrency = 8

[[mount]]
path = "/mnt/a"
source = "s3://bucket-a/"

[[mount]]
path = "/mnt/b"
source = "oss://bucket-b/x/"
endpoint = "https://OSS.example.com/"
read_endpoint = "http://accel:80"
region = "oss-cn-beijing"
addressing = "virtual"
credentials = "profile:oss"
)");
  REQUIRE(c.mounts.size() == 2);
  const StoreConfig& a = c.mounts[0].store;
  CHECK(a.endpoint == "http://127.0.0.1:9000");
  CHECK(a.read_endpoint.empty());
  CHECK(a.region == "us-east-1");
  CHECK(a.addressing == Addressing::Path);
  CHECK(a.credentials == "env");
  CHECK(a.prefetch_concurrency == 8);
  const StoreConfig& b = c.mounts[1].store;
  CHECK(b.endpoint == "https://OSS.example.com");  // scheme lowered, trailing '/' dropped
  CHECK(b.read_endpoint == "http://accel:80");
  CHECK(b.region == "oss-cn-beijing");
  CHECK(b.addressing == Addressing::Virtual);
  CHECK(b.credentials == "profile:oss");
  CHECK(b.prefetch_concurrency == 8);    // not a per-mount key: [store]'s value
  CHECK(c.store.region == "us-east-1");  // [store] itself is untouched
  CHECK(c.mounts[1].source.scheme == "oss");
}

TEST_CASE("mounts: inline-table form, normalized paths, siblings") {
  Config c = parse_ok(R"(mount = [
  { path = "/mnt//a/", source = "s3://bkt/a" },
  { path = "/mnt/ab", source = "s3://bkt/ab" },
  { path = "/srv/a", source = "s3://bkt/a" },
]
)");
  REQUIRE(c.mounts.size() == 3);
  CHECK(c.mounts[0].path == "/mnt/a");
  CHECK(c.mounts[1].path == "/mnt/ab");  // a sibling sharing a prefix of characters is not nested
  CHECK(parse_ok("mount = []\n").mounts.empty());
}

TEST_CASE("each validation rule names file, line and key") {
  const Broken cases[] = {
      // [cache]
      {"[cache]\nname = \"\"\n", 2, "cache.name", "(it names a /dev/shm file), got \"\""},
      {"[cache]\n\nname = \"my cache\"\n", 3, "cache.name", "got \"my cache\""},
      {"[cache]\nname = \"../x\"\n", 2, "cache.name", "letters, digits"},
      {"[cache]\nname = 5\n", 2, "cache.name", "got 5"},
      {"[cache]\n\n\n\n\n\nmemory = \"lots\"\n", 7, "cache.memory",
       R"(expected a size like "512MiB" or "4GiB", got "lots")"},
      {"[cache]\nmemory = \"8MiB\"\n", 2, "cache.memory", "at least 16MiB, got \"8MiB\""},
      {"[cache]\nmemory = 16777215\n", 2, "cache.memory", "at least 16MiB, got 16777215"},
      {"[cache]\nmemory = -1\n", 2, "cache.memory", "got -1"},
      {"[cache]\nmemory = 1.5\n", 2, "cache.memory", "got 1.5"},
      {"[cache]\nmemory = true\n", 2, "cache.memory", "got true"},
      {"[cache]\nmemory = \"4QB\"\n", 2, "cache.memory", "KiB, MiB, GiB, TiB"},
      {"[cache]\nmemory = 99999999999999999999\n", 2, "cache.memory", "beyond 64 bits"},
      {"[cache]\nmemory = \"16MiB\"\npage_size = \"8MiB\"\n", 2, "cache.memory", "4 x 8MiB = 32MiB"},
      {"[cache]\npage_size = \"1000000\"\n", 2, "cache.page_size", "power of two from 64KiB to 64MiB"},
      {"[cache]\npage_size = \"32KiB\"\n", 2, "cache.page_size", "got \"32KiB\""},
      {"[cache]\npage_size = \"128MiB\"\n", 2, "cache.page_size", "got \"128MiB\""},
      {"[cache]\npage_size = 0\n", 2, "cache.page_size", "got 0"},
      {"[cache]\nspill_dir = \"/ssd\"\nspill_size = \"0GiB\"\n", 3, "cache.spill_size", "above 0"},
      {"[cache]\nspill_size = 0\n", 2, "cache.spill_size", "above 0"},  // the default spill_dir is set
      {"[cache]\nspill_dir = \"var/tmp\"\n", 2, "cache.spill_dir", "absolute path, got \"var/tmp\""},
      {"[cache]\neviction = \"lru\"\n", 2, "cache.eviction", R"(expected "clock" or "none", got "lru")"},
      {"[cache]\neviction = \"Clock\"\n", 2, "cache.eviction", "got \"Clock\""},
      // [store]
      {"[store]\nendpoint = \"127.0.0.1:9000\"\n", 2, "store.endpoint", "http(s)://host[:port]"},
      {"[store]\nendpoint = \"http://h:9000/bucket\"\n", 2, "store.endpoint", "no path"},
      {"[store]\nread_endpoint = \"s3://x\"\n", 2, "store.read_endpoint", "got \"s3://x\""},
      {"[store]\nregion = \"us east\"\n", 2, "store.region", "like \"us-east-1\""},
      {"[store]\naddressing = \"host\"\n", 2, "store.addressing", R"(expected "path" or "virtual")"},
      {"[store]\ncredentials = \"keys\"\n", 2, "store.credentials",
       R"(expected "env", "anonymous", "profile:NAME" or "file:PATH", got "keys")"},
      {"[store]\ncredentials = \"profile:\"\n", 2, "store.credentials", "NAME is empty"},
      {"[store]\ncredentials = \"file:keys.json\"\n", 2, "store.credentials", "PATH absolute"},
      {"[store]\nprefetch_concurrency = 0\n", 2, "store.prefetch_concurrency", "from 1 to 1024, got 0"},
      {"[store]\nupload_concurrency = 1025\n", 2, "store.upload_concurrency", "from 1 to 1024, got 1025"},
      {"[store]\nlist_concurrency = 0\n", 2, "store.list_concurrency", "from 1 to 1024, got 0"},
      {"[store]\nupload_concurrency = \"16\"\n", 2, "store.upload_concurrency", "got \"16\""},
      {"[store]\nconnect_timeout = 0\n", 2, "store.connect_timeout", "above 0"},
      {"[store]\nstall_timeout = \"0ms\"\n", 2, "store.stall_timeout", "above 0"},
      {"[store]\nretry_deadline = \"forever\"\n", 2, "store.retry_deadline", "got \"forever\""},
      {"[store]\nretry_deadline = \"5y\"\n", 2, "store.retry_deadline", "ms, s, m, h, d"},
      {"[store]\nconnect_timeout = -3\n", 2, "store.connect_timeout", "got -3"},
      // [[mount]]
      {"[[mount]]\nsource = \"s3://bkt\"\n", 1, "mount[1].path", "needs one"},
      {"[[mount]]\npath = \"/d\"\n", 1, "mount[1].source", "needs one"},
      {"[[mount]]\npath = \"d\"\nsource = \"s3://bkt\"\n", 2, "mount[1].path", "absolute path"},
      {"[[mount]]\npath = \"/\"\nsource = \"s3://bkt\"\n", 2, "mount[1].path", "not \"/\" itself"},
      {"[[mount]]\npath = \"/a/../b\"\nsource = \"s3://bkt\"\n", 2, "mount[1].path", "\"..\""},
      {"[[mount]]\npath = \"/a/./b\"\nsource = \"s3://bkt\"\n", 2, "mount[1].path", "\"..\""},
      {"[[mount]]\npath = \"/a\"\nsource = \"gs://bkt\"\n", 3, "mount[1].source",
       "s3:// or its synonym oss://"},
      {"[[mount]]\npath = \"/a\"\nsource = \"s3://BKT\"\n", 3, "mount[1].source", "bucket name"},
      {"[[mount]]\npath = \"/a\"\nsource = \"s3://bkt//x\"\n", 3, "mount[1].source", "//"},
      {"[[mount]]\npath = \"/a\"\nsource = \"s3://bkt\"\nwritable = \"yes\"\n", 4, "mount[1].writable",
       "expected true or false, got \"yes\""},
      {"[[mount]]\npath = \"/a\"\nsource = \"s3://bkt\"\nmetadata_ttl = \"-1s\"\n", 4,
       "mount[1].metadata_ttl", "not negative"},
      {"[[mount]]\npath = \"/a\"\nsource = \"s3://bkt\"\n\n[[mount]]\npath = \"/b\"\nsource = \"s3://bkt\"\n"
       "prefetch = \"all\"\n",
       8, "mount[2].prefetch", R"(expected "none", "file" or "directory", got "all")"},
      {"[[mount]]\npath = \"/a\"\nsource = \"s3://bkt\"\nendpoint = \"http://x/y\"\n", 4, "mount[1].endpoint",
       "no path"},
      {"[[mount]]\npath = \"/a\"\nsource = \"s3://bkt\"\ncredentials = \"root\"\n", 4, "mount[1].credentials",
       "got \"root\""},
      {"[[mount]]\npath = \"/mnt/a\"\nsource = \"s3://bkt\"\n[[mount]]\npath = \"/mnt/a/\"\nsource = "
       "\"s3://bkt\"\n",
       5, "mount[2].path", "no other [[mount]] has, got \"/mnt/a/\" (mount[1] at line 2 has it too)"},
      {"[[mount]]\npath = \"/mnt/a\"\nsource = \"s3://bkt\"\n[[mount]]\npath = \"/mnt/a/b\"\nsource = "
       "\"s3://bkt\"\n",
       5, "mount[2].path", "(inside mount[1] \"/mnt/a\" at line 2)"},
      {"[[mount]]\npath = \"/mnt/a/b\"\nsource = \"s3://bkt\"\n[[mount]]\npath = \"/mnt/a\"\nsource = "
       "\"s3://bkt\"\n",
       5, "mount[2].path", "(mount[1] \"/mnt/a/b\" at line 2 is inside it)"},
      {"mount = [1]\n", 1, "mount[1]", "expected a table with path and source, got 1"},
      {"mount = 3\n", 1, "mount", "expected an array of tables [[mount]], got 3"},
      {"[mount]\npath = \"/a\"\n", 1, "mount", "got a table"},
      {"cache = 1\n", 1, "cache", "expected a table [cache], got 1"},
      // [log]
      {"[log]\nlevel = \"trace\"\n", 2, "log.level",
       R"(expected "error", "warn", "info" or "debug", got "trace")"},
      {"[log]\nfile = \"objcache.log\"\n", 2, "log.file", "absolute path"},
  };
  for (const Broken& b : cases) check_broken(b);
}

TEST_CASE("a third mount nested in the first is caught after an unrelated second") {
  std::string msg = parse_error(R"([[mount]]
path = "/data"
source = "s3://bkt/a/"
[[mount]]
path = "/other"
source = "s3://bkt/b/"
[[mount]]
path = "/data/sub"
source = "s3://bkt/c/"
)");
  CHECK(msg.rfind("/etc/x.toml:8: key 'mount[3].path': ", 0) == 0);
  CHECK(contains(msg, "inside mount[1] \"/data\" at line 2"));
}

TEST_CASE("overlap is caught whatever sorts between the two paths") {
  auto mounts = [](std::initializer_list<const char*> paths) {
    std::string text;
    for (const char* p : paths) text += "[[mount]]\npath = \"" + std::string(p) + "\"\nsource = \"s3://bkt\"\n";
    return text;
  };
  // "/mnt/a-b" and "/mnt/a.b" sort between "/mnt/a" and "/mnt/a/c" in byte order.
  CHECK(contains(parse_error(mounts({"/mnt/a", "/mnt/a-b", "/mnt/a.b", "/mnt/a/c"})),
                 "/etc/x.toml:11: key 'mount[4].path': expected a path outside every other [[mount]], got "
                 "\"/mnt/a/c\" (inside mount[1] \"/mnt/a\" at line 2)"));
  // Of several mounts inside a new one, the first in the file is named.
  CHECK(contains(parse_error(mounts({"/mnt/a/y", "/mnt/a-b", "/mnt/a/x", "/mnt/a"})),
                 "/etc/x.toml:11: key 'mount[4].path': expected a path outside every other [[mount]], got "
                 "\"/mnt/a\" (mount[1] \"/mnt/a/y\" at line 2 is inside it)"));
  CHECK(contains(parse_error(mounts({"/mnt/a/x/y", "/mnt/a-b", "/mnt/a/x"})), "(mount[1] \"/mnt/a/x/y\""));
  CHECK(parse_ok(mounts({"/mnt/a/c", "/mnt/a-b", "/mnt/a.b", "/mnt/ab", "/mnt/a b", "/mnt/\xc3\xa9"}))
            .mounts.size() == 6);
}

TEST_CASE("10,000 mounts load, and overlap among them is still caught") {
  constexpr int kMounts = 10000;
  std::string text = "[store]\nendpoint = \"http://127.0.0.1:9000\"\n";  // lines 1-2
  for (int i = 0; i < kMounts; ++i) {  // mount i+1 starts at line 3 + 4 i
    std::string n = std::to_string(i);
    text += "[[mount]]\npath = \"/mnt/bench/d" + n + "\"\nsource = \"s3://bkt/p" + n + "/\"\n";
    text += i % 2 == 0 ? "prefetch = \"file\"\n" : "metadata_ttl = \"1m\"\n";
  }
  Config c = parse_ok(text);
  REQUIRE(c.mounts.size() == kMounts);
  for (int i = 0; i < kMounts; ++i) {
    const MountConfig& m = c.mounts[static_cast<std::size_t>(i)];
    REQUIRE(m.path == "/mnt/bench/d" + std::to_string(i));
    REQUIRE(m.source.prefix == "p" + std::to_string(i) + "/");
    REQUIRE(m.prefetch == (i % 2 == 0 ? Prefetch::File : Prefetch::Directory));
    REQUIRE(m.store.endpoint == "http://127.0.0.1:9000");
  }
  auto one_more = [&](const std::string& path) {
    return parse_error(text + "[[mount]]\npath = \"" + path + "\"\nsource = \"s3://bkt\"\n");
  };
  const std::string last = "/etc/x.toml:" + std::to_string(3 + 4 * kMounts + 1) + ": key 'mount[10001].path': ";
  CHECK(one_more("/mnt/bench/d0/x") == last + "expected a path outside every other [[mount]], got "
                                             "\"/mnt/bench/d0/x\" (inside mount[1] \"/mnt/bench/d0\" at line 4)");
  CHECK(one_more("/mnt/bench/d9999") ==
        last + "expected a path no other [[mount]] has, got \"/mnt/bench/d9999\" (mount[10000] at line " +
            std::to_string(3 + 4 * 9999 + 1) + " has it too)");
  CHECK(one_more("/mnt/bench") ==
        last + "expected a path outside every other [[mount]], got \"/mnt/bench\" (mount[1] \"/mnt/bench/d0\" "
               "at line 4 is inside it)");
  CHECK(parse_ok(text + "[[mount]]\npath = \"/mnt/bench/d1-0\"\nsource = \"s3://bkt\"\n").mounts.size() ==
        kMounts + 1);
}

TEST_CASE("a mount may not be at or above a directory the programs under the shim need") {
  auto mount_at = [](const std::string& path, const std::string& before = "") {
    return before + "[[mount]]\npath = \"" + path + "\"\nsource = \"s3://bkt\"\n";
  };
  constexpr const char* kNeed = "expected a path that hides no directory the programs under the shim need";
  for (const char* system : {"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
                             "/sys", "/dev", "/dev/shm", "/run", "/tmp", "/var/tmp"}) {
    const std::string shown = system;
    CAPTURE(shown);
    CHECK(parse_error(mount_at(system)) == std::string("/etc/x.toml:2: key 'mount[1].path': ") + kNeed +
                                               ", got \"" + system + "\" (it would hide the system directory " +
                                               system + ")");
  }
  // Above one, however written.
  CHECK(contains(parse_error(mount_at("/var")), "got \"/var\" (it would hide the system directory /var/tmp)"));
  CHECK(contains(parse_error(mount_at("//usr/")), "got \"//usr/\" (it would hide the system directory /usr)"));
  // The configuration's own places: spill_dir, the file's directory, log.file's, credentials files'.
  const Broken own[] = {
      {"[cache]\nspill_dir = \"/ssd/objcache\"\n[[mount]]\npath = \"/ssd\"\nsource = \"s3://bkt\"\n", 4,
       "mount[1].path", "(it would hide cache.spill_dir \"/ssd/objcache\")"},
      {"[cache]\nspill_dir = \"/ssd//x/../objcache/\"\n[[mount]]\npath = \"/ssd/objcache\"\nsource = \"s3://bkt\"\n",
       4, "mount[1].path", "(it would hide cache.spill_dir \"/ssd//x/../objcache/\")"},
      // Without a spill_dir, written files wait in /var/tmp/objcache/staging.
      {"[cache]\nspill_dir = \"\"\n[[mount]]\npath = \"/var/tmp/objcache\"\nsource = \"s3://bkt\"\n", 4,
       "mount[1].path", "(it would hide the staging directory \"/var/tmp/objcache/staging\")"},
      // Below /var/tmp is fine, but not the default spill_dir itself.
      {"[[mount]]\npath = \"/var/tmp/objcache\"\nsource = \"s3://bkt\"\n", 2, "mount[1].path",
       "(it would hide cache.spill_dir \"/var/tmp/objcache\")"},
      {"[[mount]]\npath = \"/srv\"\nsource = \"s3://bkt\"\n[log]\nfile = \"/srv/logs/objcache.log\"\n", 2,
       "mount[1].path", "(it would hide log.file \"/srv/logs/objcache.log\")"},
      {"[[mount]]\npath = \"/keys\"\nsource = \"s3://bkt\"\n[[mount]]\npath = \"/mnt/a\"\nsource = "
       "\"s3://bkt\"\ncredentials = \"file:/keys/oss.json\"\n",
       2, "mount[1].path", "(it would hide the credentials file \"/keys/oss.json\")"},
      // The first mount in the file that hides something is reported.
      {"[[mount]]\npath = \"/mnt/a\"\nsource = \"s3://bkt\"\n[[mount]]\npath = \"/proc\"\nsource = "
       "\"s3://bkt\"\n[[mount]]\npath = \"/dev\"\nsource = \"s3://bkt\"\n",
       5, "mount[2].path", "got \"/proc\" (it would hide the system directory /proc)"},
  };
  for (const Broken& b : own) check_broken(b);
  const std::string home_file = "/home/u/.config/objcache/config.toml";
  auto r = parse_config(mount_at("/home/u/.config"), home_file);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == home_file + ":2: key 'mount[1].path': " + kNeed +
                                 ", got \"/home/u/.config\" (it would hide the configuration file \"" + home_file +
                                 "\")");
  // Below them, or beside them, is fine.
  for (const char* fine : {"/tmp/x", "/var/tmp/data", "/etc/objcache-data", "/usr/local/data", "/mnt", "/home",
                           "/var/lib/data", "/devices", "/tmpdata", "/ssd"}) {
    const std::string shown = fine;
    CAPTURE(shown);
    CHECK(parse_ok(mount_at(fine)).mounts.size() == 1);
  }
  CHECK(parse_ok(mount_at("/home/u/data")).mounts.size() == 1);
  CHECK(parse_config(mount_at("/home/u/.config/objcache/data"), home_file).ok());
}

TEST_CASE("unknown keys and tables are errors that list what is known") {
  std::string store = parse_error("[store]\nregion = \"x\"\nregin = \"us-east-1\"\n");
  CHECK(store ==
        "/etc/x.toml:3: unknown key 'store.regin' (known keys: endpoint, read_endpoint, region, addressing, "
        "credentials, prefetch_concurrency, upload_concurrency, list_concurrency, connect_timeout, stall_timeout, "
        "retry_deadline)");

  std::string cache = parse_error("[cache]\nmemroy = \"1GiB\"\n");
  CHECK(cache.rfind("/etc/x.toml:2: unknown key 'cache.memroy' (known keys: name, memory, ", 0) == 0);

  std::string mount = parse_error("[[mount]]\npath = \"/a\"\nsource = \"s3://bkt\"\nmetadata_tll = \"1m\"\n");
  CHECK(mount.rfind("/etc/x.toml:4: unknown key 'mount[1].metadata_tll' (known keys: path, source, ", 0) ==
        0);
  CHECK(contains(mount, "credentials"));
  // A [store]-only key is unknown in a mount: concurrency is per node.
  CHECK(contains(parse_error("[[mount]]\npath = \"/a\"\nsource = \"s3://bkt\"\nupload_concurrency = 2\n"),
                 "unknown key 'mount[1].upload_concurrency'"));

  std::string log = parse_error("[log]\nlevel = \"info\"\npath = \"/x\"\n");
  CHECK(log == "/etc/x.toml:3: unknown key 'log.path' (known keys: level, file)");

  CHECK(parse_error("\n[stroe]\nregion = \"x\"\n") ==
        "/etc/x.toml:2: unknown table 'stroe' (known tables: cache, store, mount, log)");
  CHECK(parse_error("memory = \"4GiB\"\n").rfind("/etc/x.toml:1: unknown key 'memory'", 0) == 0);
  CHECK(parse_error("[cache.extra]\nx = 1\n").rfind("/etc/x.toml:1: unknown key 'cache.extra'", 0) == 0);
  CHECK(contains(parse_error("[cache]\n\"odd key\" = 1\n"), "unknown key 'cache.\"odd key\"'"));

  // The first unknown key in the file is the one reported.
  std::string first = parse_error("[store]\nregion = \"x\"\nzzz = 1\naaa = 2\n");
  CHECK(first.rfind("/etc/x.toml:3: unknown key 'store.zzz'", 0) == 0);
}

TEST_CASE("TOML syntax errors give the line and a one-line reason") {
  struct Case {
    const char* toml;
    int line;
    const char* fragment;
  };
  const Case cases[] = {
      {"[cache]\nname = \"x\"\nmemory = \n", 3, "missing value"},
      {"[cache]\nname = \"x\"\nname = \"y\"\n", 3, "already exists"},
      {"\n\n[cache\nname = \"x\"\n", 3, "invalid key"},
      {"[cache]\nname = \"unterminated\nmemory = 1\n", 2, "string"},
      {"[store]\nendpoint = http://x\n", 2, ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.toml);
    std::string msg = parse_error(c.toml);
    CAPTURE(msg);
    CHECK(msg.rfind("/etc/x.toml:" + std::to_string(c.line) + ": TOML syntax error: ", 0) == 0);
    CHECK(contains(msg, c.fragment));
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(msg.find("[error]") == std::string::npos);
    CHECK(msg.size() < 300);
  }
}

TEST_CASE("load_config reports a file it cannot read") {
  TempDir dir;
  std::string missing = dir.file("missing.toml");
  auto r = load_config(missing);
  REQUIRE(!r.ok());
  CHECK(r.status() == Status::ConfigError);
  CHECK(r.error().message == missing + ": cannot read: No such file or directory");

  auto d = load_config(dir.path());
  REQUIRE(!d.ok());
  CHECK(d.error().message == dir.path() + ": cannot read: Is a directory");

  std::string big = dir.write("big.toml", std::string(5u << 20, '#'));
  auto b = load_config(big);
  REQUIRE(!b.ok());
  CHECK(contains(b.error().message, big + ": cannot read: larger than 4MiB"));
}

TEST_CASE("load_config names the file it read in its messages") {
  TempDir dir;
  std::string path = dir.write("objcache.toml", "[cache]\n# the budget\nmemory = \"lots\"\n");
  auto r = load_config(path);
  REQUIRE(!r.ok());
  CHECK(r.error().message ==
        path + R"(:3: key 'cache.memory': expected a size like "512MiB" or "4GiB", got "lots")");
}

TEST_CASE("a file that is not UTF-8 is refused with its line and column, before toml11 reads it") {
  // The fuzzer's find: a bad byte in a literal string made toml11 3.7 read past its buffer.
  std::string fuzz = "'" + std::string(23, ':') + "\xC5'" + std::string(17, ':') + " ";
  CHECK(parse_error(fuzz) == "/etc/x.toml:1: not UTF-8 (byte 0xC5 at column 25); a TOML file must be UTF-8");
  CHECK(parse_error("[cache]\nname = '''a\n\xFF'''\n") ==
        "/etc/x.toml:3: not UTF-8 (byte 0xFF at column 1); a TOML file must be UTF-8");
  CHECK(contains(parse_error("# caf\xC3\n"), ":1: not UTF-8 (byte 0xC3 at column 6)"));  // cut short
  CHECK(contains(parse_error("# \xC0\xAF\n"), ":1: not UTF-8 (byte 0xC0"));              // overlong
  CHECK(contains(parse_error("# \xED\xA0\x80\n"), ":1: not UTF-8 (byte 0xED"));          // surrogate
  CHECK(contains(parse_error("# \xF4\x90\x80\x80\n"), ":1: not UTF-8 (byte 0xF4"));      // > U+10FFFF
  CHECK(contains(parse_error("\n\n# \xE2\x82"), ":3: not UTF-8 (byte 0xE2 at column 3)"));  // at the end
  // Valid multi-byte text still reads: the error is about the key, not the bytes.
  CHECK(contains(parse_error("[cache]\nname = 'caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80'\nbogus = 1\n"),
                 "unknown key 'cache.bogus'"));
}

TEST_CASE("absurdly deep nesting is refused, not a stack overflow") {
  std::string arrays = "a = " + std::string(200000, '[') + std::string(200000, ']') + "\n";
  CHECK(contains(parse_error(arrays), "/etc/x.toml:1: TOML nested more than 64 levels deep"));
  std::string tables = "a = ";
  for (int i = 0; i < 100000; ++i) tables += "{b=";
  CHECK(contains(parse_error(tables + "1"), "nested more than"));
  std::string dotted = "\n";
  for (int i = 0; i < 100000; ++i) dotted += "a.";
  CHECK(contains(parse_error(dotted + "b = 1\n"), "/etc/x.toml:2: TOML nested"));
  std::string header = "[";
  for (int i = 0; i < 100000; ++i) header += "a.";
  CHECK(contains(parse_error(header + "b]\n"), "nested more than"));

  // Brackets and dots inside strings and comments do not count.
  std::string quiet = "# " + std::string(500, '[') + "\n[cache]\nname = \"" + std::string(100, '.') +
                      "\"\n[store]\nregion = '" + std::string(100, '{') + "'\n";
  CHECK(!contains(parse_error(quiet), "nested"));
  // Many floats on one line are not a dotted key.
  std::string floats = "a = [";
  for (int i = 0; i < 200; ++i) floats += "1.5, ";
  CHECK(contains(parse_error(floats + "]\n"), "unknown key 'a'"));
}

TEST_CASE("parse_config never throws, whatever the bytes") {
  std::mt19937 rng(12345);
  const std::string base = kDesignExample;
  const std::string alphabet = "[]{}\"'=.,#\n \\x0aZ-_:/\x01\xff";
  for (int round = 0; round < 1500; ++round) {
    std::string text = base;
    int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      std::size_t pos = rng() % (text.size() + 1);
      switch (rng() % 3) {
        case 0: text.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        case 1:
          if (pos < text.size()) text.erase(pos, 1 + rng() % 8);
          break;
        default:
          if (pos < text.size()) text[pos] = alphabet[rng() % alphabet.size()];
      }
    }
    CAPTURE(text);
    Result<Config> r = Error();
    CHECK_NOTHROW(r = parse_config(text, kFile));
    if (!r.ok()) {
      CHECK(r.status() == Status::ConfigError);
      CHECK(r.error().message.rfind(kFile, 0) == 0);
      CHECK(r.error().message.find('\n') == std::string::npos);
    }
  }
}

TEST_CASE("cache.staging_dir: an absolute path, or an error naming the key") {
  auto ok = parse_config("[cache]\nstaging_dir = \"/local/ssd/staging\"\n", "s.toml");
  REQUIRE_MESSAGE(ok.ok(), ok.error().describe());
  CHECK(ok->cache.staging_dir == "/local/ssd/staging");
  auto bad = parse_config("[cache]\nstaging_dir = \"relative\"\n", "s.toml");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("s.toml:2: key 'cache.staging_dir'") != std::string::npos);
}
