// SPDX-License-Identifier: Apache-2.0
// Vfs: the façade over the parts that serve the mounts: paths to keys
// (MountTable), stat and listings (meta::MetadataCache), bytes (the
// fetcher over the page cache) and prefetch decisions (prefetch/). It owns
// them, wires them together, keeps their locks consistent across fork and
// turns what they return into the public API's answers.
#include "objcache/vfs.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <mutex>

#include "fetch/fetcher.h"
#include "meta/metadata_cache.h"
#include "meta/node_ids.h"
#include "prefetch/directory_prefetch.h"
#include "prefetch/readahead.h"
#include "store/store_set.h"
#include "upload/writes.h"
#include "util/exit_hooks.h"
#include "util/log.h"

namespace objcache {

namespace {

// What fork needs of a live Vfs: its locks held across it.
struct ForkLocks {
  virtual void lock_for_fork() = 0;
  virtual void unlock_after_fork() = 0;

 protected:
  ~ForkLocks() = default;
};

// Every live Vfs, so fork can hold their locks (pthread_atfork).
std::mutex g_live_mu;
std::vector<ForkLocks*> g_live;

}  // namespace

struct Vfs::Impl final : ForkLocks {
  // Declared in the order they are made; destroyed in reverse, so the
  // fetcher (which uses the stores and the cache) goes first.
  Config cfg;
  MountTable table;
  std::unique_ptr<PageCache> cache;
  store::StoreSet stores;
  meta::MetadataCache meta;
  fetch::Fetcher fetcher;
  prefetch::Readahead readahead;
  prefetch::DirectoryPrefetch dirs;
  upload::Writes writes;

  Impl(const Config& c, std::unique_ptr<PageCache> pc)
      : cfg(c),
        table(c.mounts),
        cache(std::move(pc)),
        stores(cfg.mounts),
        meta(cfg, *cache, stores),
        fetcher(*cache, [this](int m) { return stores.of(m); }, [this] { stores.shutdown_all(); },
                cfg.store.prefetch_concurrency),
        readahead(fetcher),
        dirs(cfg, *cache, meta, fetcher),
        writes(cfg, *cache, stores, meta, [this](const Node& n, std::uint64_t off, std::span<std::byte> out) {
          return read_node(n, off, out);
        }) {}

  Result<std::size_t> read_node(const Node& file, std::uint64_t offset, std::span<std::byte> out);
  bool valid(const Resolved& w) const {
    return w.ours() && w.mount < static_cast<int>(cfg.mounts.size());
  }

  fetch::FetchTarget target(const Node& file) const {
    const MountConfig& mc = cfg.mounts[static_cast<std::size_t>(file.mount)];
    return fetch::FetchTarget{file.mount, file.key, file.etag, file.size,
                              ObjectId::of(mc.source.bucket, file.key, file.etag)};
  }

  Prefetch prefetch_of(int m) const { return cfg.mounts[static_cast<std::size_t>(m)].prefetch; }

  // The fork handlers take every lock, the stores' first (the fetcher
  // makes stores outside its own lock, so this order never inverts).
  void lock_for_fork() override {
    stores.lock_for_fork();
    meta.lock_for_fork();
    dirs.lock_for_fork();
    fetcher.lock_for_fork();
  }
  void unlock_after_fork() override {
    fetcher.unlock_after_fork();
    dirs.unlock_after_fork();
    meta.unlock_after_fork();
    stores.unlock_after_fork();
  }
};

namespace {

void before_fork() {
  g_live_mu.lock();
  for (ForkLocks* v : g_live) v->lock_for_fork();
}

void after_fork() {
  for (ForkLocks* v : g_live) v->unlock_after_fork();
  g_live_mu.unlock();
}

}  // namespace

Result<std::unique_ptr<Vfs>> Vfs::open(const Config& cfg, const PageCacheOptions& opts) {
  try {
    auto pc = PageCache::open(cfg.cache, opts);
    if (!pc) return pc.error();
    auto impl = std::make_unique<Impl>(cfg, std::move(*pc));
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(before_fork, after_fork, after_fork); });
    {
      std::lock_guard<std::mutex> g(g_live_mu);
      g_live.push_back(impl.get());
    }
    return std::unique_ptr<Vfs>(new Vfs(std::move(impl)));
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("vfs: ") + e.what());
  }
}

Vfs::Vfs(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Vfs::~Vfs() {
  std::lock_guard<std::mutex> g(g_live_mu);
  std::erase(g_live, impl_.get());
}

const MountTable& Vfs::mounts() const { return impl_->table; }
PageCache& Vfs::cache() { return *impl_->cache; }

std::uint64_t Vfs::ino_of(int mount, std::string_view key) { return meta::ino_of(mount, key); }
std::uint64_t Vfs::dev_of(int mount) { return meta::dev_of(mount); }

Result<Node> Vfs::stat(const Resolved& where) {
  try {
    Impl& v = *impl_;
    if (!where.ours() || where.mount >= static_cast<int>(v.cfg.mounts.size())) {
      return make_error(Status::InvalidArgument, "not under a mount");
    }
    if (where.is_root) return v.meta.dir_node(where.mount, where.key);
    std::string key = where.key;
    while (!key.empty() && key.back() == '/') key.pop_back();
    return v.meta.stat(where.mount, key);
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("stat: ") + e.what());
  }
}

Result<std::shared_ptr<const Listing>> Vfs::list(const Node& dir) {
  try {
    if (!dir.is_dir()) return make_error(Status::InvalidArgument, "not a directory: " + dir.key);
    auto l = impl_->meta.listing(dir.mount, dir.key, meta::Fill::Yes);
    if (l) impl_->dirs.listed(dir.mount, dir.key, **l);
    return l;
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("list: ") + e.what());
  }
}

Result<std::size_t> Vfs::read(const Node& file, std::uint64_t offset, std::span<std::byte> out) {
  return impl_->read_node(file, offset, out);
}

Result<std::size_t> Vfs::Impl::read_node(const Node& file, std::uint64_t offset, std::span<std::byte> out) {
  try {
    Impl& v = *this;
    if (file.is_dir()) return make_error(Status::InvalidArgument, "is a directory: " + file.key);
    if (offset >= file.size || out.empty()) return std::size_t{0};
    const std::uint64_t ps = v.cache->page_size();
    const fetch::FetchTarget t = v.target(file);
    const bool ahead = v.prefetch_of(file.mount) != Prefetch::None;
    const std::uint64_t end = std::min<std::uint64_t>(file.size, offset + out.size());
    std::size_t done = 0;
    for (std::uint64_t pos = offset; pos < end;) {
      const auto page = static_cast<std::uint32_t>(pos / ps);
      const auto in_page = static_cast<std::uint32_t>(pos - static_cast<std::uint64_t>(page) * ps);
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(end - pos, ps - in_page));
      auto got = v.fetcher.read_page(t, page, in_page, out.subspan(done, want));
      if (!got) {
        if (done > 0) return done;  // what was read before the error
        return got.error();
      }
      if (got->bytes == 0) break;
      if (ahead) v.readahead.after_read(t, page);
      done += got->bytes;
      pos += got->bytes;
    }
    return done;
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("read: ") + e.what());
  }
}

void Vfs::opened(const Node& file) {
  try {
    impl_->dirs.opened(file);
  } catch (const std::exception& e) {
    OC_WARN("prefetch after open: %s", e.what());
  }
}

bool Vfs::load(const Node& file) {
  try {
    if (file.is_dir() || file.size == 0) return true;
    auto t = std::make_shared<const fetch::FetchTarget>(impl_->target(file));
    return impl_->fetcher.enqueue(fill::Priority::Readahead, t, 0, impl_->fetcher.page_count(*t));
  } catch (const std::exception& e) {
    OC_WARN("load: %s", e.what());
    return false;
  }
}

FetchProgress Vfs::background_progress() { return impl_->fetcher.progress(); }
void Vfs::wait_background() { impl_->fetcher.drain(); }
void Vfs::cancel_background() { impl_->fetcher.cancel(); }

std::uint64_t Vfs::cached_bytes(const Node& file) {
  if (file.is_dir()) return 0;
  const fetch::FetchTarget t = impl_->target(file);
  std::uint64_t bytes = 0;
  for (std::uint32_t p = 0, n = impl_->fetcher.page_count(t); p < n; ++p) {
    if (impl_->cache->contains(t.id, p)) bytes += impl_->fetcher.page_ref(t, p).length;
  }
  return bytes;
}

void Vfs::evict(const Node& file) {
  if (file.is_dir()) return;
  const fetch::FetchTarget t = impl_->target(file);
  for (std::uint32_t p = 0, n = impl_->fetcher.page_count(t); p < n; ++p) {
    impl_->cache->unpin(t.id, p);  // a pinned page would keep its region forever
    impl_->cache->evict(t.id, p);
  }
}

// ---- writes ---------------------------------------------------------------------

namespace {

Error not_ours() { return make_error(Status::InvalidArgument, "not under a mount"); }

template <typename F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string(what) + ": " + e.what());
  }
}

}  // namespace

bool Vfs::writable(int mount) const { return impl_->writes.writable(mount); }

void Vfs::at_exit(std::function<void()> fn) { exit_hooks::add(exit_hooks::Phase::Flush, std::move(fn)); }

Result<std::unique_ptr<StagedFile>> Vfs::open_for_write(const Resolved& where, int flags,
                                                        const std::string& local_path) {
  if (!impl_->valid(where)) return not_ours();
  return guarded("open for writing", [&] { return impl_->writes.open_for_write(where.mount, where.key, flags, local_path); });
}

Result<std::unique_ptr<StagedFile>> Vfs::create_object(const Resolved& where, const std::string& local_path) {
  if (!impl_->valid(where)) return not_ours();
  return guarded("create", [&] {
    return impl_->writes.open_for_write(where.mount, where.key, O_WRONLY | O_CREAT | O_TRUNC, local_path,
                                        upload::Writes::Parents::Implied);
  });
}

Result<ObjectStore*> Vfs::store(int mount) {
  if (mount < 0 || mount >= static_cast<int>(impl_->cfg.mounts.size())) return not_ours();
  return guarded("store", [&] { return impl_->stores.of(mount); });
}

Result<std::unique_ptr<StagedFile>> Vfs::resume_write(const std::string& data_path, int fd) {
  return guarded("resume a write", [&] { return impl_->writes.resume(data_path, fd); });
}

Result<void> Vfs::unlink(const Resolved& where) {
  if (!impl_->valid(where)) return not_ours();
  return guarded("unlink", [&] { return impl_->writes.unlink(where.mount, where.key); });
}

Result<void> Vfs::mkdir(const Resolved& where) {
  if (!impl_->valid(where)) return not_ours();
  return guarded("mkdir", [&] { return impl_->writes.mkdir(where.mount, where.key); });
}

Result<void> Vfs::rmdir(const Resolved& where) {
  if (!impl_->valid(where)) return not_ours();
  return guarded("rmdir", [&] { return impl_->writes.rmdir(where.mount, where.key); });
}

Result<void> Vfs::rename(const Resolved& from, const Resolved& to, bool no_replace) {
  if (!impl_->valid(from) || !impl_->valid(to)) {
    return make_error(Status::CrossDevice, "rename between a mount and a local path");
  }
  return guarded("rename", [&] { return impl_->writes.rename(from.mount, from.key, to.mount, to.key, no_replace); });
}

Result<void> Vfs::truncate(const Resolved& where, std::uint64_t size) {
  if (!impl_->valid(where)) return not_ours();
  return guarded("truncate", [&] { return impl_->writes.truncate(where.mount, where.key, size); });
}

namespace {

Vfs::StagedUpload to_public(const upload::StagedInfo& s) {
  Vfs::StagedUpload u;
  u.data_path = s.data_path;
  u.meta_path = s.meta_path;
  u.local_path = s.local_path;
  u.bucket = s.bucket;
  u.key = s.key;
  u.state = s.state;
  u.error = s.error;
  u.created = s.created;
  u.size = s.size;
  u.writer = s.writer;
  u.upload_id = s.upload_id;
  u.closed = s.closed;
  u.writer_alive = !s.closed && s.writer > 0 && (::kill(s.writer, 0) == 0 || errno == EPERM);
  return u;
}

upload::StagedInfo to_internal(const Vfs::StagedUpload& u) {
  upload::StagedInfo s;
  s.data_path = u.data_path;
  s.meta_path = u.meta_path;
  s.local_path = u.local_path;
  s.bucket = u.bucket;
  s.key = u.key;
  s.state = u.state;
  s.error = u.error;
  s.created = u.created;
  s.size = u.size;
  s.writer = u.writer;
  s.upload_id = u.upload_id;
  s.closed = u.closed;
  return s;
}

}  // namespace

Result<std::vector<Vfs::StagedUpload>> Vfs::staged_uploads() {
  return guarded("staged uploads", [&]() -> Result<std::vector<StagedUpload>> {
    auto list = impl_->writes.staged();
    if (!list) return list.error();
    std::vector<StagedUpload> out;
    for (const auto& s : *list) out.push_back(to_public(s));
    return out;
  });
}

Result<void> Vfs::retry_upload(const StagedUpload& u) {
  return guarded("retry upload", [&] { return impl_->writes.retry(to_internal(u)); });
}

Result<void> Vfs::discard_upload(const StagedUpload& u) {
  return guarded("discard upload", [&] { return impl_->writes.discard(to_internal(u)); });
}

std::uint64_t Vfs::pin(const Node& file, bool pinned) {
  if (file.is_dir()) return 0;
  const fetch::FetchTarget t = impl_->target(file);
  std::uint64_t bytes = 0;
  for (std::uint32_t p = 0, n = impl_->fetcher.page_count(t); p < n; ++p) {
    if (!impl_->cache->contains(t.id, p)) continue;
    if (pinned) impl_->cache->pin(t.id, p);
    else impl_->cache->unpin(t.id, p);
    bytes += impl_->fetcher.page_ref(t, p).length;
  }
  return bytes;
}

}  // namespace objcache
