// SPDX-License-Identifier: Apache-2.0
// cachectl as a user runs it (check, stats, its command line): the built binary,
// real configs, a real S3 server. Exit status and messages are part of the contract.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "objcache/page_cache.h"

#include "support/process.h"
#include "support/s3_server.h"

using namespace objcache;
using objcache::test::CommandResult;
using objcache::test::S3Server;
using objcache::test::S3ServerOptions;
using objcache::test::TempDir;

namespace {

std::string cachectl() { return objcache::test::build_dir() + "/tools/cachectl"; }

std::string config_for(const std::string& endpoint, const std::string& creds,
                       const std::string& bucket = "test") {
  return "[cache]\nname = \"check\"\nmemory = \"64MiB\"\nspill_dir = \"\"\n\n"
         "[store]\nendpoint = \"" + endpoint + "\"\ncredentials = \"" + creds +
         "\"\nretry_deadline = \"2s\"\n\n"
         "[[mount]]\npath = \"/mnt/data\"\nsource = \"s3://" + bucket + "/imagenet/\"\n";
}

CommandResult check(const std::string& config) {
  return objcache::test::run_command({cachectl(), "--config", config, "check"});
}

}  // namespace

TEST_CASE("check passes on a good config and masks the key id") {
  S3Server srv;
  TempDir dir;
  std::string creds = srv.credentials_file(S3Server::kSecretKey);
  auto cfg = dir.write("ok.toml", config_for(srv.endpoint(), "file:" + creds));
  auto r = check(cfg);
  CAPTURE(r.out);
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("all 1 mounts ok") != std::string::npos);
  CHECK(r.out.find("/mnt/data") != std::string::npos);
  CHECK(r.out.find(srv.endpoint()) != std::string::npos);
  CHECK(r.out.find("memory = 64MiB") != std::string::npos);
}

TEST_CASE("check reports a wrong secret with the server's message, and exits 1") {
  S3ServerOptions o;
  o.verify_signatures = true;
  S3Server srv(o);
  TempDir dir;
  std::string creds = srv.credentials_file("wrong-secret-xyz");
  auto r = check(dir.write("bad.toml", config_for(srv.endpoint(), "file:" + creds)));
  CAPTURE(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("FAILED") != std::string::npos);
  CHECK(r.out.find("403") != std::string::npos);
  CHECK(r.out.find("SignatureDoesNotMatch") != std::string::npos);
  CHECK(r.out.find("wrong-secret-xyz") == std::string::npos);
  CHECK(r.err.find("wrong-secret-xyz") == std::string::npos);
}

TEST_CASE("check reports a missing bucket") {
  S3Server srv;
  TempDir dir;
  std::string creds = srv.credentials_file(S3Server::kSecretKey);
  auto r = check(dir.write("nb.toml", config_for(srv.endpoint(), "file:" + creds, "nobucket")));
  CAPTURE(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("NoSuchBucket") != std::string::npos);
}

TEST_CASE("check reports an unreachable endpoint") {
  TempDir dir;
  std::string ep = "http://127.0.0.1:" + std::to_string(objcache::test::unused_port());
  auto r = check(dir.write("down.toml", config_for(ep, "anonymous")));
  CAPTURE(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("FAILED") != std::string::npos);
  CHECK(r.out.find("127.0.0.1") != std::string::npos);
  CHECK(r.out.find("gave up after") != std::string::npos);
}

TEST_CASE("check names the file, line and key of a bad config, and exits 2") {
  TempDir dir;
  auto cfg = dir.write("broken.toml", "[cache]\nname = \"x\"\nmemory = \"lots\"\n");
  auto r = check(cfg);
  CAPTURE(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(cfg + ":3") != std::string::npos);
  CHECK(r.err.find("cache.memory") != std::string::npos);
  CHECK(r.out.empty());

  auto unknown = dir.write("unknown.toml", "[store]\nregin = \"eu\"\n");
  auto u = check(unknown);
  CHECK(u.exit_code == 2);
  CHECK(u.err.find(unknown + ":2") != std::string::npos);
  CHECK(u.err.find("regin") != std::string::npos);

  auto missing = check(dir.file("absent.toml"));
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("absent.toml") != std::string::npos);
}

TEST_CASE("check refuses a credentials file others can read") {
  S3Server srv;
  TempDir dir;
  std::string creds = dir.write("creds", "[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n", 0644);
  auto r = check(dir.write("perm.toml", config_for(srv.endpoint(), "file:" + creds)));
  CAPTURE(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("chmod 600") != std::string::npos);
}

TEST_CASE("cachectl explains itself") {
  auto h = objcache::test::run_command({cachectl(), "--help"});
  CHECK(h.exit_code == 0);
  CHECK(h.out.find("check") != std::string::npos);
  auto bad = objcache::test::run_command({cachectl(), "frobnicate"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("unknown command 'frobnicate'") != std::string::npos);
}

TEST_CASE("stats reports what the processes of the cache counted") {
  TempDir dir;
  std::string cfg = dir.write("stats.toml",
                              "[cache]\nname = \"statstest\"\nmemory = \"32MiB\"\nspill_dir = \"\"\n\n"
                              "[[mount]]\npath = \"/mnt/a\"\nsource = \"s3://bucket/a/\"\n\n"
                              "[[mount]]\npath = \"/mnt/b\"\nsource = \"s3://bucket/b/\"\n");
  std::vector<std::pair<std::string, std::string>> env = {{"OBJCACHE_SHM_DIR", dir.path()}};

  // Before any process used the cache: zeros, same fields.
  auto empty = objcache::test::run_command({cachectl(), "--config", cfg, "stats", "--json"}, env);
  CHECK(empty.exit_code == 0);
  auto ej = nlohmann::json::parse(empty.out);
  CHECK(ej["ram_hits"] == 0);
  CHECK(ej["mounts"].size() == 2);

  auto loaded = load_config(cfg);
  REQUIRE(loaded.ok());
  PageCacheOptions po;
  po.shm_dir = dir.path();
  auto pc = PageCache::open(loaded->cache, po);
  REQUIRE(pc.ok());
  auto fill = [](std::span<std::byte> d) -> Result<std::size_t> {
    std::memset(d.data(), 7, d.size());
    return d.size();
  };
  std::vector<std::byte> out(1000);
  for (int i = 0; i < 3; ++i) {
    REQUIRE((*pc)->read(PageRef{ObjectId::of("bucket", "a/" + std::to_string(i), "e"), 0, 1000, 0}, 0, out, fill).ok());
  }
  REQUIRE((*pc)->read(PageRef{ObjectId::of("bucket", "a/0", "e"), 0, 1000, 0}, 0, out, fill).ok());
  REQUIRE((*pc)->read(PageRef{ObjectId::of("bucket", "a/1", "e"), 0, 1000, 1}, 0, out, fill).ok());

  auto js = objcache::test::run_command({cachectl(), "--config", cfg, "stats", "--json"}, env);
  CAPTURE(js.out);
  CAPTURE(js.err);
  REQUIRE(js.exit_code == 0);
  auto j = nlohmann::json::parse(js.out);
  for (const char* f : {"ram_hits", "spill_hits", "misses", "served_bytes", "remote_bytes", "remote_requests",
                        "prefetched_bytes", "evictions", "errors", "ram_used_bytes", "ram_capacity_bytes",
                        "spill_used_bytes"}) {
    CAPTURE(f);
    CHECK(j[f].is_number_integer());
  }
  CHECK(j["ram_hits"] == 2);
  CHECK(j["misses"] == 3);
  CHECK(j["remote_requests"] == 3);
  CHECK(j["served_bytes"] == 5000);
  CHECK(j["ram_used_bytes"].get<std::uint64_t>() >= 3000);
  REQUIRE(j["mounts"].size() == 2);
  CHECK(j["mounts"][0]["path"] == "/mnt/a");
  CHECK(j["mounts"][0]["misses"] == 3);
  CHECK(j["mounts"][0]["ram_hits"] == 1);
  CHECK(j["mounts"][1]["ram_hits"] == 1);

  auto prom = objcache::test::run_command({cachectl(), "--config", cfg, "stats", "--prometheus"}, env);
  CHECK(prom.exit_code == 0);
  CHECK(prom.out.find("objcache_ram_hits_total{cache=\"statstest\"} 2") != std::string::npos);
  CHECK(prom.out.find("objcache_misses_total{cache=\"statstest\",mount=\"/mnt/a\"} 3") != std::string::npos);

  auto text = objcache::test::run_command({cachectl(), "--config", cfg, "stats"}, env);
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("hit ratio 40.0%") != std::string::npos);
  CHECK(text.out.find("/mnt/b <- s3://bucket/b/") != std::string::npos);
}

TEST_CASE("a usage error exits 2 and names what was wrong, on stderr") {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{}, "name a COMMAND"},
      {{"--bogus", "stats"}, "cachectl: unknown option '--bogus'"},
      {{"stats", "--bogus"}, "cachectl stats: unknown option '--bogus'"},
      {{"pin", "--bogus", "/mnt/data"}, "cachectl pin: unknown option '--bogus'"},
      {{"check", "extra"}, "cachectl check: unexpected argument 'extra'"},
      {{"load"}, "cachectl load: give at least one PATH"},
      {{"load", "--json"}, "cachectl load: give at least one PATH"},
      {{"evict"}, "cachectl evict: give at least one PATH"},
      {{"stats", "--watch", "x"}, "got 'x'"},
      {{"stats", "--watch", "0"}, "got '0'"},
      {{"stats", "--watch"}, "--watch"},
      {{"stats", "--json", "--prometheus"}, "--json excludes --prometheus"},
      {{"--config"}, "--config"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv{cachectl()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = objcache::test::run_command(argv);
    CAPTURE(c.want);
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.want) != std::string::npos);
    if (c.args.size() > 1 && c.args[1] == "--watch") CHECK(r.err.find("cachectl stats: --watch") == 0);
    CHECK(r.err.find("usage: cachectl") != std::string::npos);
    CHECK(r.out.empty());
  }
}

TEST_CASE("--help and -h print a command's usage on stdout and exit 0") {
  auto top = objcache::test::run_command({cachectl(), "-h"});
  CHECK(top.exit_code == 0);
  CHECK(top.out.rfind("usage: cachectl [--config FILE] COMMAND [ARGS]\n", 0) == 0);
  CHECK(top.err.empty());
  for (const char* cmd : {"check", "stats", "load", "ls", "evict", "pin", "unpin", "verify"}) {
    CAPTURE(cmd);
    CHECK(top.out.find(std::string("\n  ") + cmd + " ") != std::string::npos);
    for (const char* flag : {"--help", "-h"}) {
      auto r = objcache::test::run_command({cachectl(), "--config", "/nonexistent.toml", cmd, flag});
      CAPTURE(flag);
      CHECK(r.exit_code == 0);
      CHECK(r.out.rfind(std::string("usage: cachectl [--config FILE] ") + cmd, 0) == 0);
      CHECK(r.err.empty());
    }
  }
  auto stats = objcache::test::run_command({cachectl(), "stats", "--help"});
  CHECK(stats.out.rfind("usage: cachectl [--config FILE] stats [--json | --prometheus] [--watch SECONDS]\n", 0) == 0);
  CHECK(stats.out.find("working set") != std::string::npos);
  auto load = objcache::test::run_command({cachectl(), "load", "--help"});
  CHECK(load.out.rfind("usage: cachectl [--config FILE] load [--json] PATH...\n", 0) == 0);
  CHECK(load.out.find("Ctrl-C") != std::string::npos);
}

TEST_CASE("--config=FILE is the same as --config FILE") {
  TempDir dir;
  std::string cfg = dir.write("eq.toml",
                              "[cache]\nname = \"configequals\"\nmemory = \"32MiB\"\nspill_dir = \"\"\n\n"
                              "[[mount]]\npath = \"/mnt/a\"\nsource = \"s3://bucket/a/\"\n");
  std::vector<std::pair<std::string, std::string>> env = {{"OBJCACHE_SHM_DIR", dir.path()},
                                                          {"OBJCACHE_CONFIG", dir.file("absent.toml")}};
  for (const std::vector<std::string>& config : {std::vector<std::string>{"--config=" + cfg},
                                                  std::vector<std::string>{"--config", cfg}}) {
    std::vector<std::string> argv{cachectl()};
    argv.insert(argv.end(), config.begin(), config.end());
    argv.insert(argv.end(), {"stats", "--json"});
    auto r = objcache::test::run_command(argv, env);
    CAPTURE(config.front());
    CAPTURE(r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["cache"] == "configequals");
    CHECK(j["mounts"][0]["path"] == "/mnt/a");
  }
  auto broken = dir.write("broken.toml", "[cache]\nmemory = \"lots\"\n");
  auto b = objcache::test::run_command({cachectl(), "--config=" + broken, "check"});
  CHECK(b.exit_code == 2);
  CHECK(b.err.find(broken + ":2") != std::string::npos);
}
