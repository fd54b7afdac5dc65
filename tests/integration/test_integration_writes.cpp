// SPDX-License-Identifier: Apache-2.0
// Writes through the Vfs against a real S3 server: staged files streamed
// and committed, read-modify-write, fsync then more writes, mkdir / rmdir /
// unlink / rename, and the errors of each. Every object read back is
// compared byte for byte with what was written.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "objcache/object_store.h"
#include "objcache/vfs.h"
#include "support/s3_server.h"
#include "support/temp_dir.h"

using namespace objcache;
using objcache::test::S3Server;
using objcache::test::TempDir;

namespace {

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t x = rng();
    std::memcpy(v.data() + i, &x, std::min<std::size_t>(8, n - i));
  }
  return v;
}

struct Fixture {
  S3Server srv;
  TempDir dir;
  Config cfg;
  std::unique_ptr<Vfs> vfs;
  std::unique_ptr<ObjectStore> store;

  explicit Fixture(bool writable = true) {
    cfg.cache.name = "w" + std::to_string(::getpid());
    cfg.cache.memory = 256ull << 20;
    cfg.cache.spill_dir = "";
    cfg.cache.staging_dir = dir.path() + "/staging";
    MountConfig m;
    m.path = "/mnt/w";
    m.source_text = "s3://test/ds/";
    m.source = SourceUri{"s3", "test", "ds/"};
    m.writable = writable;
    m.store = srv.store_config();
    m.store.retry_deadline = std::chrono::milliseconds(5000);
    m.prefetch = Prefetch::None;
    cfg.store = m.store;
    cfg.mounts.push_back(m);
    PageCacheOptions po;
    po.shm_dir = dir.path();
    auto v = Vfs::open(cfg, po);
    REQUIRE_MESSAGE(v.ok(), v.error().describe());
    vfs = std::move(*v);
    auto s = create_s3_store(srv.store_config(), "test");
    REQUIRE(s.ok());
    store = std::move(*s);
  }

  Resolved at(const std::string& rel) const { return vfs->mounts().resolve("/mnt/w/" + rel); }

  std::vector<std::byte> object(const std::string& key) {
    auto info = store->head(key);
    REQUIRE_MESSAGE(info.ok(), (key + ": " + info.error().describe()));
    std::vector<std::byte> out(info->size);
    if (info->size > 0) {
      auto r = store->get({key, 0, info->size, ""}, out);
      REQUIRE_MESSAGE(r.ok(), r.error().describe());
    }
    return out;
  }

  bool exists(const std::string& key) { return store->head(key).ok(); }

  // Writes data through a staged file in chunks of `chunk`, as a program
  // writing sequentially through its fd would, and commits.
  Result<void> write_file(const std::string& rel, const std::vector<std::byte>& data, std::size_t chunk,
                          int flags = O_WRONLY | O_CREAT | O_TRUNC) {
    auto f = vfs->open_for_write(at(rel), flags, "/mnt/w/" + rel);
    if (!f) return f.error();
    const int fd = (*f)->take_fd();
    for (std::size_t off = 0; off < data.size(); off += chunk) {
      const std::size_t n = std::min(chunk, data.size() - off);
      const ssize_t w = ::write(fd, data.data() + off, n);
      REQUIRE(w == static_cast<ssize_t>(n));
      (*f)->wrote(off, n);
    }
    ::close(fd);
    return (*f)->commit();
  }
};

}  // namespace

TEST_CASE("a sequential write streams in parts and the object is byte-exact") {
  Fixture f;
  auto data = random_bytes(37 * 1024 * 1024 + 11, 1);  // five parts of 8 MiB, the last short
  REQUIRE(f.vfs->mkdir(f.at("ckpt")).ok());
  auto r = f.write_file("ckpt/model.bin", data, 1 << 20);
  REQUIRE_MESSAGE(r.ok(), r.error().describe());
  CHECK(f.object("ds/ckpt/model.bin") == data);
  const CacheStats st = f.vfs->cache().stats();
  CHECK(st.total.uploaded_bytes == data.size());
  CHECK(st.total.upload_requests >= 7);  // create, 5 parts, complete
  // Read back on this node: the pages were admitted, no GET.
  auto n = f.vfs->stat(f.at("ckpt/model.bin"));
  REQUIRE_MESSAGE(n.ok(), n.error().describe());
  CHECK(n->size == data.size());
  const auto gets_before = f.vfs->cache().stats().total.remote_requests;
  std::vector<std::byte> back(data.size());
  auto got = f.vfs->read(*n, 0, back);
  REQUIRE(got.ok());
  CHECK(*got == data.size());
  CHECK(back == data);
  CHECK(f.vfs->cache().stats().total.remote_requests == gets_before);
}

TEST_CASE("small files are one PUT; an empty file is an empty object") {
  Fixture f;
  auto data = random_bytes(1000, 2);
  REQUIRE(f.write_file("a.txt", data, 100).ok());
  CHECK(f.object("ds/a.txt") == data);
  REQUIRE(f.write_file("empty", {}, 1).ok());
  CHECK(f.object("ds/empty").empty());
}

TEST_CASE("non-sequential writes are uploaded whole at commit, never a mix") {
  Fixture f;
  auto data = random_bytes(20 * 1024 * 1024, 3);
  auto w = f.vfs->open_for_write(f.at("rand.bin"), O_RDWR | O_CREAT, "/mnt/w/rand.bin");
  REQUIRE(w.ok());
  const int fd = (*w)->take_fd();
  // Back to front, in 1 MiB blocks.
  for (std::size_t b = 20; b-- > 0;) {
    REQUIRE(::pwrite(fd, data.data() + b * (1 << 20), 1 << 20, static_cast<off_t>(b * (1 << 20))) == (1 << 20));
    (*w)->wrote(b * (1 << 20), 1 << 20);
  }
  ::close(fd);
  REQUIRE((*w)->commit().ok());
  CHECK(f.object("ds/rand.bin") == data);
}

TEST_CASE("writes the shim cannot see are caught: parts sent are checked against the file") {
  Fixture f;
  auto data = random_bytes(24 * 1024 * 1024, 4);
  auto w = f.vfs->open_for_write(f.at("stdio.bin"), O_WRONLY | O_CREAT | O_TRUNC, "/mnt/w/stdio.bin");
  REQUIRE(w.ok());
  (*w)->unseen_writes(StagedFile::Unseen::Buffered);
  const int fd = (*w)->take_fd();
  REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  (*w)->wrote(0, data.size());  // parts stream...
  // ...then bytes change under the first part without a report.
  std::memset(data.data() + 100, 0x5a, 1000);
  REQUIRE(::pwrite(fd, data.data() + 100, 1000, 100) == 1000);
  ::close(fd);
  REQUIRE((*w)->commit().ok());
  CHECK(f.object("ds/stdio.bin") == data);
}

TEST_CASE("read-modify-write: an object opened without O_TRUNC is staged first") {
  Fixture f;
  auto data = random_bytes(3 * 1024 * 1024, 5);
  REQUIRE(f.store->put("ds/rmw.bin", data).ok());
  auto w = f.vfs->open_for_write(f.at("rmw.bin"), O_RDWR, "/mnt/w/rmw.bin");
  REQUIRE_MESSAGE(w.ok(), w.error().describe());
  const int fd = (*w)->take_fd();
  const char patch[] = "PATCHED";
  REQUIRE(::pwrite(fd, patch, 7, 1000) == 7);
  (*w)->wrote(1000, 7);
  ::close(fd);
  REQUIRE((*w)->commit().ok());
  std::memcpy(data.data() + 1000, patch, 7);
  CHECK(f.object("ds/rmw.bin") == data);

  // O_APPEND adds at the end.
  auto a = f.vfs->open_for_write(f.at("rmw.bin"), O_WRONLY | O_APPEND, "/mnt/w/rmw.bin");
  REQUIRE(a.ok());
  const int afd = (*a)->take_fd();
  REQUIRE(::write(afd, "tail", 4) == 4);
  (*a)->wrote(data.size(), 4);
  ::close(afd);
  REQUIRE((*a)->commit().ok());
  for (char c : std::string("tail")) data.push_back(static_cast<std::byte>(c));
  CHECK(f.object("ds/rmw.bin") == data);
}

TEST_CASE("fsync makes what was written durable; later writes make a new version at close") {
  Fixture f;
  auto w = f.vfs->open_for_write(f.at("log.txt"), O_WRONLY | O_CREAT, "/mnt/w/log.txt");
  REQUIRE(w.ok());
  const int fd = (*w)->take_fd();
  REQUIRE(::write(fd, "one\n", 4) == 4);
  (*w)->wrote(0, 4);
  REQUIRE((*w)->sync().ok());
  auto first = f.object("ds/log.txt");
  CHECK(std::string(reinterpret_cast<const char*>(first.data()), first.size()) == "one\n");
  REQUIRE(::write(fd, "two\n", 4) == 4);
  (*w)->wrote(4, 4);
  ::close(fd);
  REQUIRE((*w)->commit().ok());
  auto second = f.object("ds/log.txt");
  CHECK(std::string(reinterpret_cast<const char*>(second.data()), second.size()) == "one\ntwo\n");
}

TEST_CASE("O_EXCL, a missing parent, a directory: the errors open(2) gives") {
  Fixture f;
  REQUIRE(f.store->put("ds/x", random_bytes(10, 6)).ok());
  CHECK(f.vfs->open_for_write(f.at("x"), O_WRONLY | O_CREAT | O_EXCL, "").status() == Status::AlreadyExists);
  CHECK(f.vfs->open_for_write(f.at("nodir/y"), O_WRONLY | O_CREAT, "").status() == Status::NotFound);
  CHECK(f.vfs->open_for_write(f.at("missing"), O_WRONLY, "").status() == Status::NotFound);
  REQUIRE(f.vfs->mkdir(f.at("d")).ok());
  CHECK(f.vfs->open_for_write(f.at("d"), O_WRONLY | O_CREAT, "").status() == Status::IsDirectory);
}

TEST_CASE("mkdir, rmdir, unlink") {
  Fixture f;
  REQUIRE(f.vfs->mkdir(f.at("a")).ok());
  CHECK(f.exists("ds/a/"));  // the marker
  CHECK(f.vfs->mkdir(f.at("a")).status() == Status::AlreadyExists);
  CHECK(f.vfs->mkdir(f.at("no/such")).status() == Status::NotFound);
  REQUIRE(f.vfs->mkdir(f.at("a/b")).ok());
  // At once on this node, whatever the TTL: the listing shows it.
  auto root = f.vfs->stat(f.at("a"));
  REQUIRE(root.ok());
  auto l = f.vfs->list(*root);
  REQUIRE(l.ok());
  REQUIRE((*l)->size() == 1);
  CHECK((**l)[0].name == "b");
  CHECK(f.vfs->rmdir(f.at("a")).status() == Status::NotEmpty);
  REQUIRE(f.write_file("a/b/file", random_bytes(10, 7), 10).ok());
  CHECK(f.vfs->rmdir(f.at("a/b")).status() == Status::NotEmpty);
  CHECK(f.vfs->unlink(f.at("a/b")).status() == Status::IsDirectory);
  CHECK(f.vfs->rmdir(f.at("a/b/file")).status() == Status::NotDirectory);
  REQUIRE(f.vfs->unlink(f.at("a/b/file")).ok());
  CHECK_FALSE(f.exists("ds/a/b/file"));
  CHECK(f.vfs->stat(f.at("a/b/file")).status() == Status::NotFound);
  CHECK(f.vfs->unlink(f.at("a/b/file")).status() == Status::NotFound);
  REQUIRE(f.vfs->rmdir(f.at("a/b")).ok());
  REQUIRE(f.vfs->rmdir(f.at("a")).ok());
  CHECK_FALSE(f.exists("ds/a/"));
  CHECK(f.vfs->stat(f.at("a")).status() == Status::NotFound);
}

TEST_CASE("rename: an object is copied then deleted; RENAME_NOREPLACE; a directory") {
  Fixture f;
  auto data = random_bytes(100000, 8);
  REQUIRE(f.write_file("tmp.bin", data, 4096).ok());
  REQUIRE(f.write_file("other.bin", random_bytes(10, 9), 10).ok());
  CHECK(f.vfs->rename(f.at("tmp.bin"), f.at("other.bin"), /*no_replace=*/true).status() == Status::AlreadyExists);
  REQUIRE(f.vfs->rename(f.at("tmp.bin"), f.at("other.bin"), false).ok());
  CHECK(f.object("ds/other.bin") == data);
  CHECK_FALSE(f.exists("ds/tmp.bin"));
  CHECK(f.vfs->stat(f.at("tmp.bin")).status() == Status::NotFound);
  auto n = f.vfs->stat(f.at("other.bin"));
  REQUIRE(n.ok());
  CHECK(n->size == data.size());

  REQUIRE(f.vfs->mkdir(f.at("src")).ok());
  REQUIRE(f.write_file("src/a", random_bytes(10, 10), 10).ok());
  REQUIRE(f.vfs->mkdir(f.at("src/sub")).ok());
  REQUIRE(f.write_file("src/sub/b", random_bytes(20, 11), 10).ok());
  REQUIRE(f.vfs->rename(f.at("src"), f.at("dst"), false).ok());
  CHECK(f.exists("ds/dst/a"));
  CHECK(f.exists("ds/dst/sub/b"));
  CHECK_FALSE(f.exists("ds/src/a"));
  CHECK(f.vfs->stat(f.at("src")).status() == Status::NotFound);
  CHECK(f.vfs->rename(f.at("dst"), f.at("dst/inside"), false).status() == Status::InvalidArgument);
}

TEST_CASE("rename of a file still being written is free: one upload, to the new name") {
  Fixture f;
  auto data = random_bytes(2 * 1024 * 1024, 12);
  auto w = f.vfs->open_for_write(f.at("ckpt.tmp"), O_WRONLY | O_CREAT | O_TRUNC, "/mnt/w/ckpt.tmp");
  REQUIRE(w.ok());
  const int fd = (*w)->take_fd();
  REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  (*w)->wrote(0, data.size());
  REQUIRE((*w)->rename(0, "ds/ckpt").ok());
  ::close(fd);
  const auto before = f.vfs->cache().stats().total.upload_requests;
  REQUIRE((*w)->commit().ok());
  CHECK(f.vfs->cache().stats().total.upload_requests == before + 1);  // one PUT, no copy, no delete
  CHECK(f.object("ds/ckpt") == data);
  CHECK_FALSE(f.exists("ds/ckpt.tmp"));
}

TEST_CASE("a read-only mount refuses every change with ReadOnly") {
  Fixture f(/*writable=*/false);
  REQUIRE(f.store->put("ds/x", random_bytes(10, 13)).ok());
  CHECK(f.vfs->open_for_write(f.at("x"), O_WRONLY, "").status() == Status::ReadOnly);
  CHECK(f.vfs->open_for_write(f.at("new"), O_WRONLY | O_CREAT, "").status() == Status::ReadOnly);
  CHECK(f.vfs->mkdir(f.at("d")).status() == Status::ReadOnly);
  CHECK(f.vfs->unlink(f.at("x")).status() == Status::ReadOnly);
  CHECK(f.vfs->rmdir(f.at("x")).status() == Status::ReadOnly);
  CHECK(f.vfs->rename(f.at("x"), f.at("y"), false).status() == Status::ReadOnly);
  CHECK(f.vfs->truncate(f.at("x"), 0).status() == Status::ReadOnly);
  CHECK(f.exists("ds/x"));
}

TEST_CASE("a failed upload keeps the staged file; it is listed, retried and then gone") {
  Fixture f;
  // The mount's root is listed (and cached, node-wide) while the store
  // answers; then a configuration whose endpoint nothing listens on opens a
  // new file there (answered from the listing, no request) and its upload
  // fails within the deadline.
  auto root = f.vfs->stat(f.vfs->mounts().resolve("/mnt/w"));
  REQUIRE(root.ok());
  REQUIRE(f.vfs->list(*root).ok());
  f.cfg.mounts[0].store.endpoint = "http://127.0.0.1:" + std::to_string(objcache::test::unused_port());
  f.cfg.mounts[0].store.retry_deadline = std::chrono::milliseconds(1500);
  PageCacheOptions po;
  po.shm_dir = f.dir.path();
  auto bad = Vfs::open(f.cfg, po);
  REQUIRE(bad.ok());
  auto data = random_bytes(300000, 14);
  auto w = (*bad)->open_for_write((*bad)->mounts().resolve("/mnt/w/lost.bin"), O_WRONLY | O_CREAT, "/mnt/w/lost.bin");
  REQUIRE_MESSAGE(w.ok(), w.error().describe());
  const int fd = (*w)->take_fd();
  REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  (*w)->wrote(0, data.size());
  ::close(fd);
  auto c = (*w)->commit();
  REQUIRE_FALSE(c.ok());
  CHECK(to_errno(c.status()) == EIO);
  w->reset();
  auto staged = (*bad)->staged_uploads();
  REQUIRE(staged.ok());
  REQUIRE(staged->size() == 1);
  CHECK((*staged)[0].key == "ds/lost.bin");
  CHECK((*staged)[0].state == "failed");
  CHECK((*staged)[0].size == data.size());
  CHECK_FALSE((*staged)[0].error.empty());
  struct stat st {};
  REQUIRE(::stat((*staged)[0].data_path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // The good configuration uploads it.
  auto again = f.vfs->staged_uploads();
  REQUIRE(again.ok());
  REQUIRE(again->size() == 1);
  REQUIRE(f.vfs->retry_upload((*again)[0]).ok());
  CHECK(f.object("ds/lost.bin") == data);
  CHECK(f.vfs->staged_uploads()->empty());
}

TEST_CASE("a staged file is resumed by the next program image of its process (exec keeps the fd)") {
  Fixture f;
  auto w = f.vfs->open_for_write(f.at("out.log"), O_WRONLY | O_CREAT | O_TRUNC, "/mnt/w/out.log");
  REQUIRE(w.ok());
  const int fd = (*w)->take_fd();
  REQUIRE(::write(fd, "before exec\n", 12) == 12);
  (*w)->wrote(0, 12);
  REQUIRE((*w)->sync().ok());  // what the shim does before exec
  const std::string path = (*w)->staged_path();
  // The new image: a new Vfs of the same configuration, the same pid, the fd.
  PageCacheOptions po;
  po.shm_dir = f.dir.path();
  auto again = Vfs::open(f.cfg, po);
  REQUIRE(again.ok());
  CHECK((*again)->resume_write(path + "x", fd).status() == Status::InvalidArgument);  // not a staged file
  const int other = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  CHECK((*again)->resume_write(path, other).status() == Status::InvalidArgument);  // fd on another file
  ::close(other);
  auto r = (*again)->resume_write(path, fd);
  REQUIRE_MESSAGE(r.ok(), r.error().describe());
  CHECK((*r)->key() == "ds/out.log");
  CHECK((*r)->take_fd() == fd);
  REQUIRE(::write(fd, "after exec\n", 11) == 11);
  (*r)->wrote(12, 11);
  ::close(fd);
  REQUIRE((*r)->commit().ok());
  auto body = f.object("ds/out.log");
  CHECK(std::string(reinterpret_cast<const char*>(body.data()), body.size()) == "before exec\nafter exec\n");
  struct stat st {};
  CHECK(::stat(path.c_str(), &st) != 0);  // the staged file is gone
  w->reset();  // the old image's StagedFile, never committed: nothing happens
  CHECK(f.object("ds/out.log").size() == 23);
}
