// SPDX-License-Identifier: Apache-2.0
// The library API (objcache/cache.h, cache_stream.h, objcache.h) against a
// real S3 server: every call, its errors (ENOENT, EACCES, EIO within the
// deadline), writers committed and aborted, listings of more than one
// page, prefetch in the caller's order, iostreams, many threads and a
// forked child; every byte compared with a local mirror of the bucket.
#include <doctest/doctest.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <random>
#include <set>
#include <thread>

#include "objcache/cache.h"
#include "objcache/cache_stream.h"
#include "objcache/object_store.h"
#include "objcache/objcache.h"
#include "objcache/vfs.h"
#include "support/s3_server.h"
#include "support/temp_dir.h"

using namespace objcache;
using objcache::test::S3Server;
using objcache::test::S3ServerOptions;
using objcache::test::TempDir;

namespace {

std::string random_text(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::span<std::byte> bytes(std::string& s) { return std::as_writable_bytes(std::span<char>(s)); }
std::span<const std::byte> cbytes(const std::string& s) { return std::as_bytes(std::span<const char>(s)); }

struct Fixture {
  S3Server srv;
  TempDir dir;
  Config cfg;
  PageCacheOptions po;
  std::unique_ptr<ObjectStore> store;

  explicit Fixture(S3ServerOptions o = {}) : srv(o) {
    cfg.cache.name = "api" + std::to_string(::getpid());
    cfg.cache.memory = 128ull << 20;
    cfg.cache.page_size = 256ull << 10;
    cfg.cache.spill_dir = "";
    cfg.cache.staging_dir = dir.path() + "/staging";
    cfg.store = srv.store_config();
    cfg.store.retry_deadline = std::chrono::milliseconds(3000);
    po.shm_dir = dir.path();
    auto s = create_s3_store(srv.store_config(), "test");
    REQUIRE(s.ok());
    store = std::move(*s);
  }

  std::unique_ptr<Cache> cache() {
    auto c = Cache::open(cfg, po);
    REQUIRE_MESSAGE(c.ok(), c.error().describe());
    return std::move(*c);
  }

  // Puts the object and its local mirror under dir/mirror/KEY.
  std::string put(const std::string& key, const std::string& data) {
    auto r = store->put(key, cbytes(data));
    REQUIRE_MESSAGE(r.ok(), r.error().describe());
    return data;
  }

  std::string object(const std::string& key) {
    auto info = store->head(key);
    REQUIRE_MESSAGE(info.ok(), (key + ": " + info.error().describe()));
    std::string out(info->size, '\0');
    if (info->size > 0) {
      auto r = store->get({key, 0, info->size, ""}, bytes(out));
      REQUIRE(r.ok());
    }
    return out;
  }

  MountConfig mount(const std::string& path, const std::string& prefix, bool writable) const {
    MountConfig m;
    m.path = path;
    m.source_text = "s3://test/" + prefix;
    m.source = SourceUri{"s3", "test", prefix};
    m.writable = writable;
    m.store = cfg.store;
    m.prefetch = Prefetch::None;
    return m;
  }
};

std::string read_all(File& f) {
  std::string out(f.size(), '\0');
  auto r = f.pread(0, bytes(out));
  REQUIRE_MESSAGE(r.ok(), r.error().describe());
  out.resize(*r);
  return out;
}

}  // namespace

TEST_CASE("open s3://bucket/key with no mount: size, etag, pread, read, seek, same bytes as the mirror") {
  Fixture f;
  const std::string data = f.put("data/blob.bin", random_text(1'000'003, 1));  // four pages, the last short
  auto cache = f.cache();
  auto file = cache->open("s3://test/data/blob.bin");
  REQUIRE_MESSAGE(file.ok(), file.error().describe());
  CHECK(file->size() == data.size());
  CHECK(file->etag() == f.store->head("data/blob.bin")->etag);
  CHECK(file->key() == "data/blob.bin");
  CHECK(file->bucket() == "test");
  CHECK(read_all(*file) == data);

  std::string part(1000, '\0');
  auto r = file->pread(262'000, bytes(part));  // across a page boundary
  REQUIRE(r.ok());
  CHECK(*r == 1000);
  CHECK(part == data.substr(262'000, 1000));
  r = file->pread(data.size() - 10, bytes(part));
  REQUIRE(r.ok());
  CHECK(*r == 10);
  r = file->pread(data.size() + 5, bytes(part));
  REQUIRE(r.ok());
  CHECK(*r == 0);

  // read/seek/tell as a sequential reader uses them.
  std::string seq;
  std::string chunk(70'000, '\0');
  for (;;) {
    auto n = file->read(bytes(chunk));
    REQUIRE(n.ok());
    if (*n == 0) break;
    seq.append(chunk, 0, *n);
  }
  CHECK(seq == data);
  CHECK(file->tell() == data.size());
  CHECK(*file->seek(-100, Whence::End) == data.size() - 100);
  CHECK(*file->seek(40, Whence::Current) == data.size() - 60);
  CHECK(*file->seek(7) == 7);
  CHECK_FALSE(file->seek(-8, Whence::Current).ok());
  auto n = file->read(bytes(part));
  REQUIRE(n.ok());
  CHECK(part == data.substr(7, 1000));

  // A second open is served from shared memory: no GET.
  const auto gets = cache->stats().total.remote_requests;
  auto again = cache->open("oss://test/data/blob.bin");  // oss:// names the same object
  REQUIRE(again.ok());
  CHECK(read_all(*again) == data);
  CHECK(cache->stats().total.remote_requests == gets);
  CHECK(cache->cached_bytes("s3://test/data/blob.bin") == data.size());
}

TEST_CASE("a mounted path and its URI read the same bytes and share the cached pages") {
  Fixture f;
  const std::string data = f.put("ds/train/a.bin", random_text(300'000, 2));
  f.cfg.mounts.push_back(f.mount("/mnt/api-ds", "ds/", false));
  auto cache = f.cache();
  auto byp = cache->open("/mnt/api-ds/train/a.bin");
  REQUIRE_MESSAGE(byp.ok(), byp.error().describe());
  CHECK(read_all(*byp) == data);
  const auto gets = cache->stats().total.remote_requests;
  auto byu = cache->open("s3://test/ds/train/a.bin");
  REQUIRE(byu.ok());
  CHECK(read_all(*byu) == data);
  CHECK(cache->stats().total.remote_requests == gets);  // the same pages: no GET

  auto st = cache->stat("/mnt/api-ds/train");
  REQUIRE(st.ok());
  CHECK(st->is_dir);
  CHECK(cache->open("/mnt/api-ds/train").status() == Status::IsDirectory);
  CHECK(cache->open("/elsewhere/x").status() == Status::NotFound);
  // A path the URI mounts live at is not a path of the configuration.
  CHECK(cache->open("/.objcache-uri/test/ds/train/a.bin").status() == Status::NotFound);
  // A read-only mount refuses a writer.
  CHECK(cache->create("/mnt/api-ds/train/new.bin").status() == Status::ReadOnly);
}

TEST_CASE("errors: a missing key is NotFound (ENOENT), a bad bucket name InvalidArgument") {
  Fixture f;
  auto cache = f.cache();
  auto r = cache->open("s3://test/no/such/key");
  CHECK(r.status() == Status::NotFound);
  CHECK(to_errno(r.status()) == ENOENT);
  CHECK(cache->stat("s3://test/no/such/key").status() == Status::NotFound);
  CHECK(cache->open("s3:///key").status() == Status::InvalidArgument);
  CHECK(cache->open("s3://bad bucket/key").status() == Status::InvalidArgument);
}

TEST_CASE("errors: a wrong secret is AccessDenied (EACCES)") {
  S3ServerOptions o;
  o.verify_signatures = true;
  Fixture f(o);
  f.put("k.bin", "hello");
  f.cfg.store.credentials = "file:" + f.srv.credentials_file("not-the-secret");
  auto cache = f.cache();
  auto r = cache->open("s3://test/k.bin");
  CHECK(r.status() == Status::AccessDenied);
  CHECK(to_errno(r.status()) == EACCES);
}

TEST_CASE("errors: a store that is down is IoError (EIO) within retry_deadline") {
  Fixture f;
  f.cfg.store.endpoint = "http://127.0.0.1:" + std::to_string(objcache::test::unused_port());
  f.cfg.store.retry_deadline = std::chrono::milliseconds(1500);
  auto cache = f.cache();
  const auto start = std::chrono::steady_clock::now();
  auto r = cache->open("s3://test/k.bin");
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  CHECK(to_errno(r.status()) == EIO);
  CHECK(took < std::chrono::milliseconds(1500 + 3000));
}

TEST_CASE("a writer's object exists when commit returns; abort leaves none; replace keeps readers on their version") {
  Fixture f;
  auto cache = f.cache();
  const std::string data = random_text(9'000'001, 3);  // more than one 8 MiB part
  {
    auto w = cache->create("s3://test/out/deep/model.bin");  // no directory needs to exist
    REQUIRE_MESSAGE(w.ok(), w.error().describe());
    for (std::size_t off = 0; off < data.size(); off += 1 << 20) {
      auto r = w->write(std::string_view(data).substr(off, 1 << 20));
      REQUIRE_MESSAGE(r.ok(), r.error().describe());
    }
    CHECK(w->size() == data.size());
    auto c = w->commit();
    REQUIRE_MESSAGE(c.ok(), c.error().describe());
    CHECK(f.object("out/deep/model.bin") == data);
    CHECK_FALSE(w->commit().ok());  // once
  }
  auto back = cache->open("s3://test/out/deep/model.bin");
  REQUIRE(back.ok());
  CHECK(read_all(*back) == data);

  {
    auto w = cache->create("s3://test/out/aborted.bin");
    REQUIRE(w.ok());
    REQUIRE(w->write("some bytes").ok());
    w->abort();
    CHECK_FALSE(w->write("more").ok());
  }
  CHECK(f.store->head("out/aborted.bin").status() == Status::NotFound);
  {
    auto w = cache->create("s3://test/out/dropped.bin");
    REQUIRE(w.ok());
    REQUIRE(w->write("some bytes").ok());
  }  // destroyed without commit: aborted
  CHECK(f.store->head("out/dropped.bin").status() == Status::NotFound);

  // An empty object is an object.
  auto e = cache->create("s3://test/out/empty");
  REQUIRE(e.ok());
  REQUIRE(e->commit().ok());
  CHECK(f.store->head("out/empty")->size == 0);

  // Replacing an object: the open File stays on its version.
  auto w = cache->create("s3://test/out/deep/model.bin");
  REQUIRE(w.ok());
  REQUIRE(w->write("v2").ok());
  REQUIRE(w->commit().ok());
  auto v2 = cache->open("s3://test/out/deep/model.bin");
  REQUIRE(v2.ok());
  CHECK(read_all(*v2) == "v2");
  CHECK(v2->etag() != back->etag());
  // The staging directory is empty again.
  auto left = Vfs::open(f.cfg, f.po);
  REQUIRE(left.ok());
  CHECK((*left)->staged_uploads()->empty());
}

TEST_CASE("a writer on a writable mount's path") {
  Fixture f;
  f.cfg.mounts.push_back(f.mount("/mnt/api-w", "w/", true));
  auto cache = f.cache();
  auto w = cache->create("/mnt/api-w/ckpt.bin");
  REQUIRE_MESSAGE(w.ok(), w.error().describe());
  REQUIRE(w->write("checkpoint").ok());
  REQUIRE(w->commit().ok());
  CHECK(f.object("w/ckpt.bin") == "checkpoint");
  auto r = cache->open("/mnt/api-w/ckpt.bin");
  REQUIRE(r.ok());
  CHECK(read_all(*r) == "checkpoint");
}

TEST_CASE("list pages through more than 1000 keys, in key order, names as asked") {
  Fixture f;
  std::set<std::string> want;
  std::vector<std::thread> ts;
  std::mutex mu;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      auto s = create_s3_store(f.srv.store_config(), "test");
      for (int i = t; i < 1005; i += 4) {
        char k[32];
        std::snprintf(k, sizeof k, "many/%05d", i);
        auto r = (*s)->put(k, cbytes(std::string(k)));
        std::lock_guard<std::mutex> g(mu);
        if (r.ok()) want.insert(k);
      }
    });
  }
  for (auto& t : ts) t.join();
  REQUIRE(want.size() == 1005);
  f.put("many-not/x", "x");  // shares the prefix's name, not its directory
  f.cfg.mounts.push_back(f.mount("/mnt/api-l", "", false));
  auto cache = f.cache();

  auto l = cache->list("s3://test/many/");
  REQUIRE(l.ok());
  std::vector<std::string> got;
  int pages = 0;
  while (!l->done()) {
    auto p = l->next();
    REQUIRE_MESSAGE(p.ok(), p.error().describe());
    if (p->empty()) break;
    ++pages;
    for (const ListEntry& e : *p) {
      CHECK(e.name == "s3://test/" + e.key);
      CHECK(e.size == e.key.size());
      got.push_back(e.key);
    }
  }
  CHECK(pages >= 2);
  CHECK(got == std::vector<std::string>(want.begin(), want.end()));

  // A local path lists its directory's keys as local paths.
  auto lp = cache->list("/mnt/api-l/many");
  REQUIRE(lp.ok());
  std::size_t n = 0;
  while (!lp->done()) {
    auto p = lp->next();
    REQUIRE(p.ok());
    for (const ListEntry& e : *p) {
      CHECK(e.name == "/mnt/api-l/" + e.key);
      ++n;
    }
  }
  CHECK(n == 1005);
  // A URI prefix is a key prefix, not a directory: "many-" names many-not/x.
  auto dash = cache->list("s3://test/many-");
  REQUIRE(dash.ok());
  auto p = dash->next();
  REQUIRE(p.ok());
  REQUIRE(p->size() == 1);
  CHECK((*p)[0].key == "many-not/x");
  CHECK(dash->done());
}

TEST_CASE("prefetch fetches in the caller's order, one GET in flight at prefetch_concurrency = 1") {
  Fixture f;
  std::vector<std::string> keys;
  std::map<std::string, std::string> mirror;
  for (int i = 0; i < 24; ++i) {
    const std::string k = "pf/" + std::to_string(i) + ".bin";
    mirror[k] = f.put(k, random_text(20'000 + static_cast<std::size_t>(i), static_cast<std::uint64_t>(i)));
    keys.push_back("s3://test/" + k);
  }
  std::shuffle(keys.begin(), keys.end(), std::mt19937(7));
  keys.push_back("s3://test/pf/missing.bin");  // skipped
  f.cfg.store.prefetch_concurrency = 1;
  auto cache = f.cache();
  auto q = cache->prefetch(keys);
  REQUIRE_MESSAGE(q.ok(), q.error().describe());
  CHECK(*q == 24);
  // Watch the cache fill: the poll at which each key is first seen cached
  // never goes down along the prefetch order.
  std::vector<int> seen_at(24, -1);
  int polls = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  // poll: the fetcher's progress in shared memory has no event to wait on
  while (std::count(seen_at.begin(), seen_at.end(), -1) > 0 && std::chrono::steady_clock::now() < deadline) {
    ++polls;
    for (std::size_t i = 0; i < 24; ++i) {
      if (seen_at[i] < 0 && cache->cached_bytes(keys[i]) > 0) seen_at[i] = polls;
    }
    std::this_thread::yield();
  }
  cache->wait_prefetch();
  CHECK(std::is_sorted(seen_at.begin(), seen_at.end()));
  CHECK(std::count(seen_at.begin(), seen_at.end(), -1) == 0);
  // Everything is served from memory now.
  const auto gets = cache->stats().total.remote_requests;
  for (std::size_t i = 0; i < 24; ++i) {
    auto file = cache->open(keys[i]);
    REQUIRE(file.ok());
    CHECK(read_all(*file) == mirror[keys[i].substr(10)]);
  }
  CHECK(cache->stats().total.remote_requests == gets);
}

TEST_CASE("istream and ostream over File and Writer") {
  Fixture f;
  auto cache = f.cache();
  const std::string data = random_text(700'000, 5);
  {
    auto w = cache->create("s3://test/stream/ckpt.bin");
    REQUIRE(w.ok());
    WriterOStream os(std::move(*w));
    os << "header " << 42 << '\n';
    os.write(data.data(), static_cast<std::streamsize>(data.size()));
    for (int i = 0; i < 1000; ++i) os.put(static_cast<char>(i));
    REQUIRE(os.commit().ok());
  }
  std::string want = "header 42\n" + data;
  for (int i = 0; i < 1000; ++i) want.push_back(static_cast<char>(i));
  CHECK(f.object("stream/ckpt.bin") == want);

  auto file = cache->open("s3://test/stream/ckpt.bin");
  REQUIRE(file.ok());
  FileIStream is(std::move(*file));
  std::string word;
  int n = 0;
  is >> word >> n;
  CHECK(word == "header");
  CHECK(n == 42);
  CHECK(is.get() == '\n');
  std::string body(data.size(), '\0');
  is.read(body.data(), static_cast<std::streamsize>(body.size()));
  CHECK(is.gcount() == static_cast<std::streamsize>(data.size()));
  CHECK(body == data);
  is.seekg(-1000, std::ios_base::end);
  std::string tail(1000, '\0');
  is.read(tail.data(), 1000);
  CHECK(tail == want.substr(want.size() - 1000));
  CHECK(is.get() == std::char_traits<char>::eof());
  is.clear();
  is.seekg(3);
  CHECK(is.tellg() == 3);
  CHECK(is.get() == 'd');
  // Whole-stream copy as code using rdbuf() does it.
  std::ostringstream all;
  is.seekg(0);
  all << is.rdbuf();
  CHECK(all.str() == want);
}

TEST_CASE("many threads pread one File and open others; a forked child reads through the parent's Cache") {
  Fixture f;
  std::vector<std::string> data;
  for (int i = 0; i < 8; ++i) data.push_back(f.put("mt/" + std::to_string(i), random_text(400'000, 100 + static_cast<std::uint64_t>(i))));
  auto cache = f.cache();
  auto shared = cache->open("s3://test/mt/0");
  REQUIRE(shared.ok());
  std::atomic<int> bad{0};  // relaxed: read after join
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      std::string buf(4096, '\0');
      for (std::uint64_t off = static_cast<std::uint64_t>(t) * 1000; off < 400'000; off += 37'000) {
        auto r = shared->pread(off, bytes(buf));
        if (!r || data[0].compare(off, *r, buf, 0, *r) != 0) bad.fetch_add(1, std::memory_order_relaxed);
      }
      auto own = cache->open("s3://test/mt/" + std::to_string(t));
      if (!own || read_all(*own) != data[static_cast<std::size_t>(t)]) bad.fetch_add(1, std::memory_order_relaxed);
    });
  }
  for (auto& t : ts) t.join();
  CHECK(bad.load() == 0);

#if defined(__SANITIZE_THREAD__)
  // The fork half is not run under TSan: the fork handlers take every
  // metadata shard lock at once, past TSan's deadlock detector's 64 held
  // locks per thread (a CHECK failure in the runtime, not a report), and
  // TSan cannot start threads in the child of a multi-threaded fork.
  return;
#endif
  const std::string fresh = f.put("mt/fresh", random_text(123'456, 9));
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto c = cache->open("s3://test/mt/fresh");  // a GET made by the child's own fetcher
    int ok = c.ok() ? 1 : 0;
    if (ok) {
      std::string out(c->size(), '\0');
      auto r = c->pread(0, bytes(out));
      ok = r.ok() && out == fresh;
    }
    auto w = cache->create("s3://test/mt/from-child");
    ok = ok && w.ok() && w->write("child").ok() && w->commit().ok();
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(f.object("mt/from-child") == "child");
  // The child's fetch is in the node's cache: the parent makes no GET.
  const auto gets = cache->stats().total.remote_requests;
  auto p = cache->open("s3://test/mt/fresh");
  REQUIRE(p.ok());
  CHECK(read_all(*p) == fresh);
  CHECK(cache->stats().total.remote_requests == gets + 0);
}

TEST_CASE("the C ABI: open, read, seek, stat, list, prefetch, write, errors as negative errno") {
  Fixture f;
  const std::string data = f.put("c/one.bin", random_text(50'000, 11));
  f.put("c/two.bin", "two");
  const std::string toml = "[cache]\nname = \"" + f.cfg.cache.name + "c\"\nmemory = \"64MiB\"\nspill_dir = \"\"\n" +
                           "staging_dir = \"" + f.dir.path() + "/staging\"\n[store]\nendpoint = \"" +
                           f.srv.endpoint() + "\"\ncredentials = \"file:" +
                           f.srv.credentials_file(S3Server::kSecretKey) + "\"\nretry_deadline = \"3s\"\n";
  const std::string path = f.dir.path() + "/c.toml";
  std::ofstream(path) << toml;
  objcache_cache* c = nullptr;
  REQUIRE(objcache_cache_open(path.c_str(), &c) == 0);
  CHECK(std::string(objcache_version()) == "0.1.0");

  objcache_file* file = nullptr;
  CHECK(objcache_open(c, "s3://test/c/none", &file) == -ENOENT);
  CHECK(std::string(objcache_last_error()).find("NotFound") != std::string::npos);
  REQUIRE(objcache_open(c, "s3://test/c/one.bin", &file) == 0);
  CHECK(objcache_file_size(file) == data.size());
  char etag[OBJCACHE_ETAG_MAX];
  REQUIRE(objcache_file_etag(file, etag, sizeof etag) == 0);
  CHECK(std::string(etag) == f.store->head("c/one.bin")->etag);
  std::string buf(data.size() + 10, '\0');
  CHECK(objcache_pread(file, buf.data(), buf.size(), 0) == static_cast<int64_t>(data.size()));
  CHECK(buf.substr(0, data.size()) == data);
  CHECK(objcache_seek(file, 100, SEEK_SET) == 100);
  CHECK(objcache_read(file, buf.data(), 10) == 10);
  CHECK(buf.substr(0, 10) == data.substr(100, 10));
  CHECK(objcache_seek(file, -5, SEEK_END) == static_cast<int64_t>(data.size() - 5));
  CHECK(objcache_seek(file, 0, 9) == -EINVAL);
  objcache_close(file);

  objcache_stat_t st;
  REQUIRE(objcache_stat(c, "s3://test/c/one.bin", &st) == 0);
  CHECK(st.size == data.size());
  CHECK(st.is_dir == 0);
  REQUIRE(objcache_stat(c, "s3://test/c/", &st) == 0);
  CHECK(st.is_dir == 1);

  objcache_lister* l = nullptr;
  REQUIRE(objcache_list_open(c, "s3://test/c/", &l) == 0);
  std::vector<std::string> names;
  objcache_entry_t e;
  int r;
  while ((r = objcache_list_next(l, &e)) == 1) names.emplace_back(e.name);
  CHECK(r == 0);
  objcache_list_close(l);
  CHECK(names == std::vector<std::string>{"s3://test/c/one.bin", "s3://test/c/two.bin"});

  const char* keys[] = {"s3://test/c/two.bin", "s3://test/c/one.bin"};
  CHECK(objcache_prefetch(c, keys, 2) == 2);
  objcache_wait_prefetch(c);
  CHECK(objcache_cached_bytes(c, "s3://test/c/two.bin") == 3);

  objcache_writer* w = nullptr;
  REQUIRE(objcache_writer_open(c, "s3://test/c/w.bin", &w) == 0);
  CHECK(objcache_write(w, "abc", 3) == 0);
  CHECK(objcache_writer_commit(w) == 0);
  objcache_writer_close(w);
  CHECK(f.object("c/w.bin") == "abc");
  REQUIRE(objcache_writer_open(c, "s3://test/c/x.bin", &w) == 0);
  CHECK(objcache_write(w, "abc", 3) == 0);
  objcache_writer_close(w);  // no commit: aborted
  CHECK(f.store->head("c/x.bin").status() == Status::NotFound);
  objcache_cache_close(c);
  ::unlink(("/dev/shm/objcache-" + std::to_string(::getuid()) + "-" + f.cfg.cache.name + "c").c_str());

  CHECK(objcache_cache_open("/nonexistent/objcache.toml", &c) < 0);
  CHECK(objcache_cache_open_toml("[cache]\nmemory = \"lots\"\n", &c) == -EINVAL);
  CHECK(std::string(objcache_last_error()).find("cache.memory") != std::string::npos);
}

TEST_CASE("Cache::open_file reads a configuration with only [cache] and [store]") {
  Fixture f;
  f.put("of/x", "xyz");
  const std::string path = f.dir.path() + "/o.toml";
  std::ofstream(path) << "[cache]\nname = \"" << f.cfg.cache.name << "o\"\nmemory = \"32MiB\"\nspill_dir = \"\"\n"
                      << "[store]\nendpoint = \"" << f.srv.endpoint() << "\"\ncredentials = \"file:"
                      << f.srv.credentials_file(S3Server::kSecretKey) << "\"\n";
  auto c = Cache::open_file(path, f.po);
  REQUIRE_MESSAGE(c.ok(), c.error().describe());
  auto file = (*c)->open("s3://test/of/x");
  REQUIRE(file.ok());
  CHECK(read_all(*file) == "xyz");
  CHECK(Cache::open_file(f.dir.path() + "/none.toml").status() != Status::Ok);
}
