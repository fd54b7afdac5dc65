// SPDX-License-Identifier: Apache-2.0
// cachectl as a user runs it (check, stats, uploads, its command line): the built
// binary, real configs, a real S3 server. Exit status and messages are part of the
// contract.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "objcache/object_store.h"
#include "objcache/page_cache.h"
#include "objcache/vfs.h"

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

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t x = rng();
    std::memcpy(v.data() + i, &x, std::min<std::size_t>(8, n - i));
  }
  return v;
}

// A node with the writable mount /mnt/w over s3://test/ds/ of srv: its
// config file, its segment (in dir) and its staging directory (the
// default, <spill_dir>/staging), and the bucket seen directly.
struct WriteNode {
  S3Server srv;
  TempDir dir;
  std::string config;
  std::vector<std::pair<std::string, std::string>> env;
  std::unique_ptr<ObjectStore> store;

  WriteNode() {
    config = dir.write("w.toml", text(srv.endpoint()));
    env = {{"OBJCACHE_SHM_DIR", dir.path()}};
    auto st = create_s3_store(srv.store_config(), "test");
    REQUIRE(st.ok());
    store = std::move(*st);
  }

  std::string text(const std::string& endpoint) const {
    return "[cache]\nname = \"uploads\"\nmemory = \"32MiB\"\nspill_dir = \"" + dir.file("spill") +
           "\"\nspill_size = \"64MiB\"\n\n[store]\nendpoint = \"" + endpoint + "\"\ncredentials = \"file:" +
           srv.credentials_file(S3Server::kSecretKey) + "\"\nretry_deadline = \"2s\"\n\n"
           "[[mount]]\npath = \"/mnt/w\"\nsource = \"s3://test/ds/\"\nwritable = true\nprefetch = \"none\"\n";
  }
  std::string staging() const { return dir.file("spill") + "/staging"; }

  CommandResult run(std::vector<std::string> args, const std::string& cfg = {}) const {
    args.insert(args.begin(), {cachectl(), "--config", cfg.empty() ? config : cfg});
    return objcache::test::run_command(args, env);
  }

  std::unique_ptr<Vfs> vfs(const Config& cfg) const {
    PageCacheOptions po;
    po.shm_dir = dir.path();
    auto v = Vfs::open(cfg, po);
    REQUIRE_MESSAGE(v.ok(), v.error().describe());
    return std::move(*v);
  }

  bool exists(const std::string& key) const { return store->head(key).ok(); }
  std::vector<std::byte> object(const std::string& key) const {
    auto info = store->head(key);
    REQUIRE_MESSAGE(info.ok(), (key + ": " + info.error().describe()));
    std::vector<std::byte> out(info->size);
    if (info->size > 0) REQUIRE(store->get({key, 0, info->size, ""}, out).ok());
    return out;
  }

  // A staged file as the library leaves one (the sidecar format of
  // libcache/upload/staging_dir.cpp), written here to choose its writer.
  std::string stage_by_hand(const std::string& name, const std::string& rel, pid_t writer, const std::string& state,
                            const std::vector<std::byte>& data, std::int64_t created = 0) const {
    ::mkdir(dir.file("spill").c_str(), 0700);
    ::mkdir(staging().c_str(), 0700);
    const std::string base = staging() + "/" + name;
    const int fd = ::open((base + ".data").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fd);
    nlohmann::json j{{"version", 1}, {"bucket", "test"}, {"key", "ds/" + rel}, {"path", "/mnt/w/" + rel},
                     {"created", created != 0 ? created
                                              : std::chrono::duration_cast<std::chrono::seconds>(
                                                    std::chrono::system_clock::now().time_since_epoch())
                                                    .count()},
                     {"writer", writer}, {"state", state}, {"error", ""}, {"upload_id", ""}};
    const std::string meta = j.dump();
    std::FILE* f = std::fopen((base + ".json").c_str(), "w");
    REQUIRE(f != nullptr);
    REQUIRE(std::fwrite(meta.data(), 1, meta.size(), f) == meta.size());
    std::fclose(f);
    return base + ".data";
  }
};

// The pid of a process that has exited (and been reaped).
pid_t dead_pid() {
  const pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  REQUIRE(p > 0);
  int status = 0;
  REQUIRE(::waitpid(p, &status, 0) == p);
  return p;
}

const nlohmann::json* staged_with(const nlohmann::json& list, const std::string& key) {
  for (const auto& e : list) {
    if (e["key"] == key) return &e;
  }
  return nullptr;
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
  // Two LISTs and a HEAD of the metadata layer: in remote_requests, and on their own.
  (*pc)->count_metadata(PageCache::MetaRequest::List);
  (*pc)->count_metadata(PageCache::MetaRequest::List);
  (*pc)->count_metadata(PageCache::MetaRequest::Head);

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
  CHECK(j["remote_requests"] == 6);
  CHECK(j["list_requests"] == 2);
  CHECK(j["head_requests"] == 1);
  CHECK(!j["mounts"][0].contains("list_requests"));  // not any one mount's
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
  CHECK(prom.out.find("objcache_list_requests_total{cache=\"statstest\"} 2") != std::string::npos);
  CHECK(prom.out.find("objcache_list_requests_total{cache=\"statstest\",mount") == std::string::npos);

  auto text = objcache::test::run_command({cachectl(), "--config", cfg, "stats"}, env);
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("hit ratio 40.0%") != std::string::npos);
  CHECK(text.out.find("metadata   2 LIST and 1 HEAD requests") != std::string::npos);
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
      {{"uploads", "--retry", "--discard"}, "--retry excludes --discard"},
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
  for (const char* cmd : {"check", "stats", "load", "ls", "evict", "pin", "unpin", "verify", "uploads"}) {
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
  auto uploads = objcache::test::run_command({cachectl(), "uploads", "--help"});
  CHECK(uploads.out.rfind("usage: cachectl [--config FILE] uploads [--json] [--retry | --discard] [PATH...]\n", 0) == 0);
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

TEST_CASE("uploads lists a file whose upload failed; --retry uploads it byte-exact and it is gone") {
  WriteNode n;
  auto cfg = load_config(n.config);
  REQUIRE_MESSAGE(cfg.ok(), cfg.error().describe());
  // As test_integration_writes does: the mount's root is listed while the
  // store answers, then a Vfs whose endpoint nothing listens on writes a
  // new file there and its upload fails.
  auto good = n.vfs(*cfg);
  auto root = good->stat(good->mounts().resolve("/mnt/w"));
  REQUIRE(root.ok());
  REQUIRE(good->list(*root).ok());
  Config down = *cfg;
  down.mounts[0].store.endpoint = "http://127.0.0.1:" + std::to_string(objcache::test::unused_port());
  down.mounts[0].store.retry_deadline = std::chrono::milliseconds(1500);
  auto bad = n.vfs(down);
  const auto data = random_bytes(300000, 21);
  {
    auto w = bad->open_for_write(bad->mounts().resolve("/mnt/w/lost.bin"), O_WRONLY | O_CREAT, "/mnt/w/lost.bin");
    REQUIRE_MESSAGE(w.ok(), w.error().describe());
    const int fd = (*w)->take_fd();
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    (*w)->wrote(0, data.size());
    ::close(fd);
    REQUIRE_FALSE((*w)->commit().ok());
  }

  auto list = n.run({"uploads"});
  CAPTURE(list.out);
  CAPTURE(list.err);
  CHECK(list.exit_code == 0);
  CHECK(list.out.find("/mnt/w/lost.bin  s3://test/ds/lost.bin") != std::string::npos);
  CHECK(list.out.find("failed") != std::string::npos);
  CHECK(list.out.find("last error: ") != std::string::npos);
  CHECK(list.out.find("being written") == std::string::npos);  // its writer closed it
  CHECK(list.out.find("1 staged file, " + format_size(data.size()) + ", in " + n.staging()) != std::string::npos);

  auto js = n.run({"uploads", "--json"});
  REQUIRE(js.exit_code == 0);
  auto j = nlohmann::json::parse(js.out);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 1);
  CHECK(j[0]["path"] == "/mnt/w/lost.bin");
  CHECK(j[0]["object"] == "s3://test/ds/lost.bin");
  CHECK(j[0]["bucket"] == "test");
  CHECK(j[0]["key"] == "ds/lost.bin");
  CHECK(j[0]["size_bytes"] == data.size());
  CHECK(j[0]["age_seconds"].is_number_integer());
  CHECK(j[0]["created"].is_number_integer());
  CHECK(j[0]["state"] == "failed");
  CHECK_FALSE(j[0]["error"].get<std::string>().empty());
  CHECK(j[0]["writer"] == ::getpid());
  CHECK(j[0]["writer_alive"] == true);
  CHECK(j[0]["being_written"] == false);
  const std::string staged = j[0]["staged_path"].get<std::string>();
  struct stat st {};
  REQUIRE(::stat(staged.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto stats = n.run({"stats", "--json"});
  REQUIRE(stats.exit_code == 0);
  auto sj = nlohmann::json::parse(stats.out);
  CHECK(sj["staged_bytes"] == data.size());
  CHECK(sj["staged_files"] == 1);
  CHECK(sj["uploads_failed"] == 1);
  CHECK(sj["mounts"][0]["uploads_failed"] == 1);
  CHECK(sj["uploaded_bytes"] == 0);

  // Retried against a store that still does not answer: exit 1, the file
  // stays staged, with the new error.
  auto down_cfg = n.dir.write("down.toml", n.text(down.mounts[0].store.endpoint));
  auto again = n.run({"uploads", "--retry"}, down_cfg);
  CAPTURE(again.out);
  CHECK(again.exit_code == 1);
  CHECK(again.out.find("FAILED     /mnt/w/lost.bin -> s3://test/ds/lost.bin") != std::string::npos);
  auto kept = nlohmann::json::parse(n.run({"uploads", "--json"}).out);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0]["error"].get<std::string>().find(down.mounts[0].store.endpoint) != std::string::npos);
  CHECK_FALSE(n.exists("ds/lost.bin"));

  auto retry = n.run({"uploads", "--retry"});
  CAPTURE(retry.out);
  CAPTURE(retry.err);
  CHECK(retry.exit_code == 0);
  CHECK(retry.out.find("uploaded   /mnt/w/lost.bin -> s3://test/ds/lost.bin") != std::string::npos);
  CHECK(retry.out.find("uploaded 1 file (") != std::string::npos);
  CHECK(n.object("ds/lost.bin") == data);
  CHECK(::access(staged.c_str(), F_OK) != 0);
  CHECK(nlohmann::json::parse(n.run({"uploads", "--json"}).out).empty());
  CHECK(n.run({"uploads"}).out.find("no staged files in " + n.staging()) != std::string::npos);
  auto after = nlohmann::json::parse(n.run({"stats", "--json"}).out);
  CHECK(after["staged_bytes"] == 0);
  CHECK(after["uploaded_bytes"] == data.size());
  CHECK(after["mounts"][0]["uploaded_bytes"] == data.size());
  CHECK(after["upload_requests"].get<std::uint64_t>() >= 1);
  auto prom = n.run({"stats", "--prometheus"});
  CHECK(prom.out.find("objcache_uploaded_bytes{cache=\"uploads\"} " + std::to_string(data.size()) + "\n") !=
        std::string::npos);
  CHECK(prom.out.find("objcache_uploads_failed_total{cache=\"uploads\",mount=\"/mnt/w\"} ") != std::string::npos);
  CHECK(prom.out.find("objcache_staged_bytes{cache=\"uploads\"} 0\n") != std::string::npos);
  CHECK(n.run({"stats"}).out.find("uploaded   " + format_size(data.size())) != std::string::npos);
}

TEST_CASE("uploads never takes a file a live writer is writing; --discard removes one whose writer is gone") {
  WriteNode n;
  const auto live = random_bytes(1000, 22);
  const auto gone = random_bytes(2000, 23);
  const auto synced = random_bytes(3000, 24);
  n.stage_by_hand("1-live", "sub/live.bin", ::getpid(), "writing", live);
  const std::string gone_path = n.stage_by_hand("2-gone", "sub/gone.bin", dead_pid(), "writing", gone);
  // A failed fsync: state "failed", but its writer (this process) still
  // holds the file open and will upload it at close.
  const std::string synced_path = n.stage_by_hand("3-synced", "synced.bin", ::getpid(), "failed", synced);
  const int held = ::open(synced_path.c_str(), O_RDWR);
  REQUIRE(held >= 0);
  // Made in 2001 by a pid that is now this process: the pid was reused, so
  // its writer is gone.
  n.stage_by_hand("0-reused", "sub/reused.bin", ::getpid(), "writing", gone, 1000000000);

  auto list = n.run({"uploads"});
  CAPTURE(list.out);
  CHECK(list.exit_code == 0);
  const std::string me = std::to_string(::getpid());
  CHECK(list.out.find("being written by pid " + me) != std::string::npos);
  CHECK(list.out.find("writer pid " + me + " is gone") != std::string::npos);
  CHECK(list.out.find("4 staged files") != std::string::npos);
  CHECK(list.out.find("2 still being written") != std::string::npos);
  auto j = nlohmann::json::parse(n.run({"uploads", "--json"}).out);
  REQUIRE(j.size() == 4);
  CHECK((*staged_with(j, "ds/sub/reused.bin"))["being_written"] == false);
  CHECK((*staged_with(j, "ds/sub/live.bin"))["being_written"] == true);
  CHECK((*staged_with(j, "ds/sub/gone.bin"))["being_written"] == false);
  CHECK((*staged_with(j, "ds/sub/gone.bin"))["writer_alive"] == false);
  CHECK((*staged_with(j, "ds/synced.bin"))["being_written"] == true);

  // Named by its path under the mount, the live one is still not retried.
  auto retry = n.run({"uploads", "--retry", "/mnt/w/sub/live.bin", "/mnt/w/synced.bin"});
  CAPTURE(retry.out);
  CHECK(retry.exit_code == 0);
  CHECK(retry.out.find("skipped    /mnt/w/sub/live.bin -> s3://test/ds/sub/live.bin: being written by pid " + me) !=
        std::string::npos);
  CHECK(retry.out.find("skipped    /mnt/w/synced.bin") != std::string::npos);
  CHECK(retry.out.find("uploaded 0 files") != std::string::npos);
  CHECK_FALSE(n.exists("ds/sub/live.bin"));
  CHECK_FALSE(n.exists("ds/synced.bin"));

  // A PATH under no mount that is no staged file is an error.
  auto stray = n.run({"uploads", "--retry", n.dir.file("nothing")});
  CHECK(stray.exit_code == 1);
  CHECK(stray.err.find("is under no mount") != std::string::npos);

  // Everything under /mnt/w/sub: the live one is skipped, the gone one
  // removed after it is named.
  auto discard = n.run({"uploads", "--discard", "/mnt/w/sub"});
  CAPTURE(discard.out);
  CHECK(discard.exit_code == 0);
  CHECK(discard.out.find("discarding /mnt/w/sub/gone.bin -> s3://test/ds/sub/gone.bin (" + format_size(gone.size())) !=
        std::string::npos);
  CHECK(discard.out.find("discarding /mnt/w/sub/reused.bin") != std::string::npos);
  CHECK(discard.out.find("skipped    /mnt/w/sub/live.bin") != std::string::npos);
  CHECK(discard.out.find("discarded 2 files") != std::string::npos);
  CHECK(::access(gone_path.c_str(), F_OK) != 0);
  CHECK_FALSE(n.exists("ds/sub/gone.bin"));
  auto left = nlohmann::json::parse(n.run({"uploads", "--json"}).out);
  CHECK(left.size() == 2);
  CHECK(staged_with(left, "ds/sub/live.bin") != nullptr);

  // Once its writer closed it, the file of the failed fsync is ours; named
  // by its staged path.
  ::close(held);
  auto now = n.run({"uploads", "--retry", synced_path});
  CAPTURE(now.out);
  CAPTURE(now.err);
  CHECK(now.exit_code == 0);
  CHECK(now.out.find("uploaded   /mnt/w/synced.bin -> s3://test/ds/synced.bin") != std::string::npos);
  CHECK(n.object("ds/synced.bin") == synced);
  CHECK(nlohmann::json::parse(n.run({"stats", "--json"}).out)["staged_bytes"] == live.size());
}

TEST_CASE("check writes a probe key to a writable mount and deletes it; a read-only mount is not written") {
  WriteNode n;
  auto cfg = n.dir.write("two.toml", n.text(n.srv.endpoint()) +
                                         "\n[[mount]]\npath = \"/mnt/r\"\nsource = \"s3://test/ro/\"\n");
  auto r = check(cfg);
  CAPTURE(r.out);
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  char host[256] = {};
  REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  const std::string key = std::string("ds/.objcache-check-") + host + "-";
  CHECK(r.out.find("ok: can write: PUT and DELETE of s3://test/" + key) != std::string::npos);
  CHECK(r.out.find("read-only: no write tried") != std::string::npos);
  CHECK(r.out.find("all 2 mounts ok") != std::string::npos);
  ListRequest req;
  req.prefix = "";
  auto page = n.store->list(req);
  REQUIRE(page.ok());
  CHECK(page->objects.empty());  // the probe was deleted
}

TEST_CASE("check on a writable mount whose bucket does not exist reports the failed write, and exits 1") {
  S3Server srv;
  TempDir dir;
  std::string creds = srv.credentials_file(S3Server::kSecretKey);
  auto r = check(dir.write("nbw.toml", config_for(srv.endpoint(), "file:" + creds, "nobucket") + "writable = true\n"));
  CAPTURE(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("FAILED: cannot write: PUT s3://nobucket/imagenet/.objcache-check-") != std::string::npos);
  const std::size_t put = r.out.find("cannot write: PUT");
  CHECK(r.out.find("NoSuchBucket", put) != std::string::npos);
  CHECK(r.out.find("1 of 1 mounts failed") != std::string::npos);
}
