// SPDX-License-Identifier: Apache-2.0
// The value parsers of libcache/config/units.cpp: sizes, durations,
// sources, the enum names, formatting, the internal string checks, and
// where find_config_path looks.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "config/checks.h"
#include "objcache/config.h"
#include "support/env_guard.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace std::chrono_literals;
using objcache::test::TempDir;

namespace {

using objcache::test::EnvGuard;

std::string size_error(const std::string& text) {
  auto r = parse_size(text);
  REQUIRE_MESSAGE(!r.ok(), "parse_size accepted \"" << text << "\"");
  return r.error().message;
}

std::string duration_error(const std::string& text) {
  auto r = parse_duration(text);
  REQUIRE_MESSAGE(!r.ok(), "parse_duration accepted \"" << text << "\"");
  return r.error().message;
}

std::string source_error(const std::string& text) {
  auto r = parse_source(text);
  REQUIRE_MESSAGE(!r.ok(), "parse_source accepted \"" << text << "\"");
  return r.error().message;
}

}  // namespace

TEST_CASE("parse_size reads binary, decimal and bare byte counts") {
  struct Case {
    const char* text;
    std::uint64_t bytes;
  };
  const Case cases[] = {
      {"512MiB", 512ull << 20},
      {"4GiB", 4ull << 30},
      {"1.5GiB", 3ull << 29},
      {"100KB", 100000},
      {"4096", 4096},
      {"4096B", 4096},
      {"4096 B", 4096},
      {"  64 mib ", 64ull << 20},
      {"1kib", 1024},
      {"1KIB", 1024},
      {"1kb", 1000},
      {"2MB", 2000000},
      {"3GB", 3000000000ull},
      {"1TB", 1000000000000ull},
      {"1TiB", 1ull << 40},
      {"0", 0},
      {"0B", 0},
      {"0.5KiB", 512},
      {"4096.0", 4096},
      {"0.3GiB", 322122547},  // 322122547.2: the fraction of a byte is dropped
      {"18446744073709551615", std::numeric_limits<std::uint64_t>::max()},
      {"16777215TiB", 16777215ull << 40},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto r = parse_size(c.text);
    REQUIRE(r.ok());
    CHECK(*r == c.bytes);
  }
}

TEST_CASE("parse_size refuses what is not a size and says what is accepted") {
  for (const char* bad : {"", "   ", "lots", "GiB", ".5GiB", "5.GiB", "+4GiB", "1e9", "4GiB extra", "4 G"}) {
    CAPTURE(bad);
    std::string msg = size_error(bad);
    CHECK(msg.find(R"(expected a size like "512MiB" or "4GiB")") != std::string::npos);
    CHECK(msg.find(std::string("got \"") + bad + "\"") != std::string::npos);
  }
  CHECK(size_error("-1").find("not negative") != std::string::npos);
  CHECK(size_error("-1GiB").find("not negative") != std::string::npos);
  std::string unit = size_error("4XB");
  for (const char* u : {"B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"}) {
    CHECK(unit.find(u) != std::string::npos);
  }
  CHECK(size_error("1.5").find("whole bytes") != std::string::npos);
  CHECK(size_error("1.5B").find("whole bytes") != std::string::npos);
  CHECK(size_error("18446744073709551616").find("16EiB") != std::string::npos);
  CHECK(size_error("16777216TiB").find("16EiB") != std::string::npos);
  CHECK(size_error("99999999999999999999999999GiB").find("16EiB") != std::string::npos);
  CHECK(parse_size("x").status() == Status::InvalidArgument);
}

TEST_CASE("parse_duration reads ms, s, m, h, d and bare seconds") {
  struct Case {
    const char* text;
    std::chrono::milliseconds ms;
  };
  const Case cases[] = {
      {"30s", 30s},  {"5m", 5min},     {"1h", 1h},       {"250ms", 250ms}, {"0", 0ms},
      {"1d", 24h},   {"10", 10s},      {"1.5s", 1500ms}, {"0.5m", 30s},    {"2 H", 2h},
      {" 7 S ", 7s}, {"0.0001s", 0ms}, {"0ms", 0ms},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto r = parse_duration(c.text);
    REQUIRE(r.ok());
    CHECK(r->count() == c.ms.count());
  }
}

TEST_CASE("parse_duration refuses what is not a duration") {
  for (const char* bad : {"", "s", "soon", "1e3", "1h30m", "5 minutes"}) {
    CAPTURE(bad);
    CHECK(duration_error(bad).find(R"(expected a duration like "30s")") != std::string::npos);
  }
  CHECK(duration_error("-5s").find("not negative") != std::string::npos);
  std::string unit = duration_error("5y");
  CHECK(unit.find("ms, s, m, h, d") != std::string::npos);
  CHECK(unit.find(R"(got "5y")") != std::string::npos);
  CHECK(duration_error("9999999999999999999d").find("too long") != std::string::npos);
  CHECK(duration_error("99999999999999999999999").find("too long") != std::string::npos);
}

TEST_CASE("parse_source splits s3:// and oss:// into bucket and prefix") {
  auto a = parse_source("s3://bucket/imagenet/");
  REQUIRE(a.ok());
  CHECK(a->scheme == "s3");
  CHECK(a->bucket == "bucket");
  CHECK(a->prefix == "imagenet/");

  auto b = parse_source("oss://my-bucket.v2/a/b");
  REQUIRE(b.ok());
  CHECK(b->scheme == "oss");
  CHECK(b->bucket == "my-bucket.v2");
  CHECK(b->prefix == "a/b/");

  for (const char* whole : {"s3://bucket", "s3://bucket/"}) {
    CAPTURE(whole);
    auto c = parse_source(whole);
    REQUIRE(c.ok());
    CHECK(c->bucket == "bucket");
    CHECK(c->prefix.empty());
  }
  auto upper = parse_source("S3://abc/x");
  REQUIRE(upper.ok());
  CHECK(upper->scheme == "s3");
  CHECK(parse_source("s3://" + std::string(63, 'a')).ok());
  CHECK(parse_source("s3://b-1.x/keys with spaces/").ok());
}

TEST_CASE("parse_source refuses bad schemes, buckets and prefixes") {
  for (const char* bad : {"bucket/prefix", "http://bucket/x", "gs://bucket/x", "s3:/bucket/x", "s3://"}) {
    CAPTURE(bad);
    CHECK(source_error(bad).find(R"(expected a source like "s3://bucket/prefix/")") != std::string::npos);
  }
  std::string long_bucket = "s3://" + std::string(64, 'a');
  for (const std::string& bad : {std::string("s3://ab"), std::string("s3://Bucket/x"),
                                 std::string("s3://-bucket"), std::string("s3://bucket-"),
                                 std::string("s3://bu..cket"), std::string("s3://bu_cket"), long_bucket}) {
    CAPTURE(bad);
    CHECK(source_error(bad).find("bucket name is 3 to 63 characters") != std::string::npos);
  }
  CHECK(source_error("s3://bucket//x").find("//") != std::string::npos);
  CHECK(source_error("s3://bucket/a//b").find("//") != std::string::npos);
  CHECK(source_error("s3://bucket/./x").find(R"("." or "..")") != std::string::npos);
  CHECK(source_error("s3://bucket/a/..").find(R"("." or "..")") != std::string::npos);
  CHECK(source_error("s3://bucket/" + std::string(1100, 'k')).find("1024") != std::string::npos);
}

TEST_CASE("enum names are the words of the TOML file") {
  CHECK(to_string(Eviction::Clock) == "clock");
  CHECK(to_string(Eviction::None) == "none");
  CHECK(to_string(Addressing::Path) == "path");
  CHECK(to_string(Addressing::Virtual) == "virtual");
  CHECK(to_string(Prefetch::None) == "none");
  CHECK(to_string(Prefetch::File) == "file");
  CHECK(to_string(Prefetch::Directory) == "directory");
  CHECK(to_string(LogLevel::Error) == "error");
  CHECK(to_string(LogLevel::Warn) == "warn");
  CHECK(to_string(LogLevel::Info) == "info");
  CHECK(to_string(LogLevel::Debug) == "debug");
}

TEST_CASE("format_size is short, and exact values read back") {
  CHECK(format_size(0) == "0B");
  CHECK(format_size(100) == "100B");
  CHECK(format_size(1023) == "1023B");
  CHECK(format_size(1024) == "1KiB");
  CHECK(format_size(1536) == "1.5KiB");
  CHECK(format_size(1500) == "1.46KiB");
  CHECK(format_size(512ull << 20) == "512MiB");
  CHECK(format_size(4ull << 30) == "4GiB");
  CHECK(format_size((1ull << 20) - 1) == "1MiB");  // rounds up into the next unit
  CHECK(format_size(1ull << 50) == "1024TiB");     // TiB is the largest unit parse_size knows
  CHECK(format_size(std::numeric_limits<std::uint64_t>::max()) == "16777216TiB");
  for (std::uint64_t v : {0ull, 7ull, 1024ull, 1536ull, 3ull << 29, 64ull << 30, 5ull << 40}) {
    CAPTURE(v);
    auto back = parse_size(format_size(v));
    REQUIRE(back.ok());
    CHECK(*back == v);
  }
}

TEST_CASE("format_duration uses the largest exact unit") {
  CHECK(format_duration(0ms) == "0s");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(30s) == "30s");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(5min) == "5m");
  CHECK(format_duration(1h) == "1h");
  CHECK(format_duration(24h) == "1d");
  CHECK(format_duration(-5s) == "-5s");
  CHECK(format_duration(std::chrono::milliseconds::min()).front() == '-');
  for (std::chrono::milliseconds d : {0ms, 1ms, 999ms, 61000ms, 7200000ms, 172800000ms}) {
    CAPTURE(d.count());
    auto back = parse_duration(format_duration(d));
    REQUIRE(back.ok());
    CHECK(back->count() == d.count());
  }
}

TEST_CASE("mount paths are normalized") {
  using config::normalize_mount_path;
  CHECK(*normalize_mount_path("/mnt/data") == "/mnt/data");
  CHECK(*normalize_mount_path("/mnt//data/") == "/mnt/data");
  CHECK(*normalize_mount_path("//mnt///data//") == "/mnt/data");
  CHECK(*normalize_mount_path("/mnt/.data/..x") == "/mnt/.data/..x");
  for (const char* bad :
       {"", "mnt/data", "/", "///", "/mnt/./data", "/mnt/../data", "/mnt/data/..", "~/data"}) {
    CAPTURE(bad);
    auto r = normalize_mount_path(bad);
    REQUIRE(!r.ok());
    CHECK(r.error().message.find("expected an absolute path") != std::string::npos);
  }
  CHECK(!normalize_mount_path(std::string("/mnt/a\0b", 8)).ok());
}

TEST_CASE("endpoints are http(s)://host[:port] and come back normalized") {
  using config::check_endpoint;
  CHECK(*check_endpoint("") == "");
  CHECK(*check_endpoint("http://127.0.0.1:9000") == "http://127.0.0.1:9000");
  CHECK(*check_endpoint("https://s3.example.com") == "https://s3.example.com");
  CHECK(*check_endpoint("HTTP://Minio:9000/") == "http://Minio:9000");
  CHECK(*check_endpoint("http://[::1]:9000") == "http://[::1]:9000");
  for (const char* bad : {"127.0.0.1:9000", "ftp://host", "http://", "http://host/path", "http://host:",
                          "http://host:0", "http://host:65536", "http://host:9x", "http://user@host",
                          "http://host?x=1", "http://ho st", "http://[::1", "http://[::1]x"}) {
    CAPTURE(bad);
    auto r = check_endpoint(bad);
    REQUIRE(!r.ok());
    CHECK(r.error().message.find("http(s)://host[:port]") != std::string::npos);
  }
}

TEST_CASE("credential specs, regions, cache names and local paths") {
  using namespace config;
  EnvGuard home("HOME", "/home/tester");
  CHECK(*check_credentials("env") == "env");
  CHECK(*check_credentials("anonymous") == "anonymous");
  CHECK(*check_credentials("profile:prod-1") == "profile:prod-1");
  CHECK(*check_credentials("file:/etc/objcache/keys.json") == "file:/etc/objcache/keys.json");
  CHECK(*check_credentials("file:~/.aws/credentials") == "file:/home/tester/.aws/credentials");
  for (const char* bad : {"", "ENV", "environment", "profile:", "profile:a b", "profile:[x]",
                          "file:", "file:relative/keys", "file:~user/keys"}) {
    CAPTURE(bad);
    auto r = check_credentials(bad);
    REQUIRE(!r.ok());
    CHECK(r.error().message.find(R"("profile:NAME" or "file:PATH")") != std::string::npos);
  }
  {
    EnvGuard no_home("HOME", nullptr);
    CHECK(!check_credentials("file:~/keys").ok());
  }

  CHECK(check_region("").ok());
  CHECK(check_region("us-east-1").ok());
  CHECK(check_region("oss-cn-hangzhou").ok());
  CHECK(!check_region("us east").ok());
  CHECK(!check_region("a/b").ok());

  CHECK(check_cache_name("default").ok());
  CHECK(check_cache_name("job_1.v-2").ok());
  CHECK(!check_cache_name("").ok());
  CHECK(!check_cache_name("a/b").ok());
  CHECK(!check_cache_name("a b").ok());
  CHECK(!check_cache_name(std::string(201, 'x')).ok());

  CHECK(*check_local_path("", Tilde::Keep) == "");
  CHECK(*check_local_path("/var/tmp", Tilde::Keep) == "/var/tmp");
  CHECK(!check_local_path("~/x", Tilde::Keep).ok());
  CHECK(*check_local_path("~/x.log", Tilde::Expand) == "/home/tester/x.log");
  CHECK(!check_local_path("var/tmp", Tilde::Expand).ok());
}

TEST_CASE("quote escapes and shortens what it shows") {
  using config::quote;
  CHECK(quote("lots") == "\"lots\"");
  CHECK(quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(quote("a\nb\x01") == "\"a\\nb\\x01\"");
  std::string q = quote(std::string(500, 'x'));
  CHECK(q.size() < 100);
  CHECK(q.find("...") != std::string::npos);
}

TEST_CASE("find_config_path: OBJCACHE_CONFIG, then HOME, then /etc") {
  TempDir dir;
  SUBCASE("OBJCACHE_CONFIG wins, even when the file is missing") {
    std::string missing = dir.file("nope.toml");
    EnvGuard env("OBJCACHE_CONFIG", missing.c_str());
    auto p = find_config_path();
    REQUIRE(p.has_value());
    CHECK(*p == missing);
  }
  SUBCASE("OBJCACHE_CONFIG names an existing file") {
    std::string file = dir.write("mine.toml", "");
    EnvGuard env("OBJCACHE_CONFIG", file.c_str());
    dir.write(".config/objcache/config.toml", "");
    EnvGuard home("HOME", dir.path().c_str());
    CHECK(find_config_path() == file);
  }
  SUBCASE("the user's file under HOME") {
    EnvGuard env("OBJCACHE_CONFIG", nullptr);
    std::string file = dir.write(".config/objcache/config.toml", "");
    EnvGuard home("HOME", dir.path().c_str());
    CHECK(find_config_path() == file);
  }
  SUBCASE("an empty OBJCACHE_CONFIG counts as unset") {
    EnvGuard env("OBJCACHE_CONFIG", "");
    std::string file = dir.write(".config/objcache/config.toml", "");
    EnvGuard home("HOME", dir.path().c_str());
    CHECK(find_config_path() == file);
  }
  SUBCASE("nothing under HOME: /etc/objcache/config.toml if it exists, else none") {
    EnvGuard env("OBJCACHE_CONFIG", nullptr);
    EnvGuard home("HOME", dir.path().c_str());
    std::optional<std::string> expected;
    if (::access("/etc/objcache/config.toml", F_OK) == 0) expected = "/etc/objcache/config.toml";
    CHECK(find_config_path() == expected);
  }
  SUBCASE("no HOME at all") {
    EnvGuard env("OBJCACHE_CONFIG", nullptr);
    EnvGuard home("HOME", nullptr);
    std::optional<std::string> expected;
    if (::access("/etc/objcache/config.toml", F_OK) == 0) expected = "/etc/objcache/config.toml";
    CHECK(find_config_path() == expected);
  }
}
