// SPDX-License-Identifier: Apache-2.0
// The C ABI (objcache/objcache.h): each function a few lines over
// cache.h. The one place Status becomes an errno for C callers, and where
// a failure's message is kept for objcache_last_error.
#include "objcache/objcache.h"

#include <errno.h>
#include <stdlib.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "objcache/cache.h"

struct objcache_cache {
  std::unique_ptr<objcache::Cache> cache;
};
struct objcache_file {
  objcache::File file;
};
struct objcache_writer {
  objcache::Writer writer;
};
struct objcache_lister {
  objcache::Lister lister;
  std::vector<objcache::ListEntry> page;
  std::size_t next = 0;
};

namespace {

thread_local std::string t_last_error;

int fail(const objcache::Error& e) {
  t_last_error = e.describe();
  const int n = objcache::to_errno(e.status);
  return -(n != 0 ? n : EIO);
}

int fail(int err, const char* what) {
  t_last_error = what;
  return -err;
}

// Runs f, turning an escaping exception (bad_alloc) into -ENOMEM: no
// exception crosses the C ABI.
template <typename R, typename F>
R guarded(F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return static_cast<R>(fail(ENOMEM, "out of memory"));
  } catch (const std::exception& e) {
    t_last_error = e.what();
    return static_cast<R>(-EIO);
  }
}

// Where the cache's segment lives: OBJCACHE_SHM_DIR as for the shim
// (tests keep theirs in a temp dir), else /dev/shm.
objcache::PageCacheOptions options() {
  objcache::PageCacheOptions o;
  if (const char* d = secure_getenv("OBJCACHE_SHM_DIR"); d != nullptr) o.shm_dir = d;
  return o;
}

int finish_open(objcache::Result<std::unique_ptr<objcache::Cache>> c, objcache_cache** out) {
  if (!c) return fail(c.error());
  *out = new objcache_cache{std::move(*c)};
  return 0;
}

}  // namespace

extern "C" {

const char* objcache_version(void) { return OBJCACHE_VERSION; }

const char* objcache_last_error(void) { return t_last_error.c_str(); }

int objcache_cache_open(const char* config_path, objcache_cache** out) {
  if (out == nullptr) return fail(EINVAL, "out is NULL");
  return guarded<int>([&] {
    std::string path;
    if (config_path != nullptr) {
      path = config_path;
    } else {
      auto found = objcache::find_config_path();
      if (!found) return fail(ENOENT, "no configuration: OBJCACHE_CONFIG, ~/.config/objcache/config.toml, /etc/objcache/config.toml");
      path = *found;
    }
    return finish_open(objcache::Cache::open_file(path, options()), out);
  });
}

int objcache_cache_open_toml(const char* toml_text, objcache_cache** out) {
  if (out == nullptr || toml_text == nullptr) return fail(EINVAL, "NULL argument");
  return guarded<int>([&] {
    auto cfg = objcache::parse_config(toml_text, "<toml>");
    if (!cfg) return fail(cfg.error());
    return finish_open(objcache::Cache::open(*cfg, options()), out);
  });
}

void objcache_cache_close(objcache_cache* cache) { delete cache; }

int objcache_stat(objcache_cache* cache, const char* where, objcache_stat_t* out) {
  if (cache == nullptr || where == nullptr || out == nullptr) return fail(EINVAL, "NULL argument");
  return guarded<int>([&] {
    auto st = cache->cache->stat(where);
    if (!st) return fail(st.error());
    out->size = st->size;
    out->mtime = st->mtime;
    out->is_dir = st->is_dir ? 1 : 0;
    std::memset(out->etag, 0, sizeof out->etag);
    std::strncpy(out->etag, st->etag.c_str(), sizeof out->etag - 1);
    return 0;
  });
}

int objcache_open(objcache_cache* cache, const char* where, objcache_file** out) {
  if (cache == nullptr || where == nullptr || out == nullptr) return fail(EINVAL, "NULL argument");
  return guarded<int>([&] {
    auto f = cache->cache->open(where);
    if (!f) return fail(f.error());
    *out = new objcache_file{std::move(*f)};
    return 0;
  });
}

uint64_t objcache_file_size(const objcache_file* f) { return f == nullptr ? 0 : f->file.size(); }

int objcache_file_etag(const objcache_file* f, char* buf, size_t len) {
  if (f == nullptr || buf == nullptr) return fail(EINVAL, "NULL argument");
  const std::string& e = f->file.etag();
  if (e.size() + 1 > len) return fail(ERANGE, "buffer too small for the ETag");
  std::memcpy(buf, e.c_str(), e.size() + 1);
  return 0;
}

int64_t objcache_pread(const objcache_file* f, void* buf, size_t len, uint64_t offset) {
  if (f == nullptr || (buf == nullptr && len > 0)) return fail(EINVAL, "NULL argument");
  return guarded<int64_t>([&]() -> int64_t {
    auto r = f->file.pread(offset, {static_cast<std::byte*>(buf), len});
    if (!r) return fail(r.error());
    return static_cast<int64_t>(*r);
  });
}

int64_t objcache_read(objcache_file* f, void* buf, size_t len) {
  if (f == nullptr || (buf == nullptr && len > 0)) return fail(EINVAL, "NULL argument");
  return guarded<int64_t>([&]() -> int64_t {
    auto r = f->file.read({static_cast<std::byte*>(buf), len});
    if (!r) return fail(r.error());
    return static_cast<int64_t>(*r);
  });
}

int64_t objcache_seek(objcache_file* f, int64_t offset, int whence) {
  if (f == nullptr) return fail(EINVAL, "NULL argument");
  objcache::Whence w;
  switch (whence) {
    case 0: w = objcache::Whence::Set; break;
    case 1: w = objcache::Whence::Current; break;
    case 2: w = objcache::Whence::End; break;
    default: return fail(EINVAL, "whence is not SEEK_SET, SEEK_CUR or SEEK_END");
  }
  auto r = f->file.seek(offset, w);
  if (!r) return fail(r.error());
  return static_cast<int64_t>(*r);
}

void objcache_close(objcache_file* f) { delete f; }

int objcache_list_open(objcache_cache* cache, const char* prefix, objcache_lister** out) {
  if (cache == nullptr || prefix == nullptr || out == nullptr) return fail(EINVAL, "NULL argument");
  return guarded<int>([&] {
    auto l = cache->cache->list(prefix);
    if (!l) return fail(l.error());
    *out = new objcache_lister{std::move(*l), {}, 0};
    return 0;
  });
}

int objcache_list_next(objcache_lister* l, objcache_entry_t* out) {
  if (l == nullptr || out == nullptr) return fail(EINVAL, "NULL argument");
  return guarded<int>([&] {
    if (l->next >= l->page.size()) {
      l->page.clear();
      l->next = 0;
      if (l->lister.done()) return 0;
      auto p = l->lister.next();
      if (!p) return fail(p.error());
      l->page = std::move(*p);
      if (l->page.empty()) return 0;
    }
    const objcache::ListEntry& e = l->page[l->next++];
    out->name = e.name.c_str();
    out->key = e.key.c_str();
    out->size = e.size;
    out->mtime = e.mtime;
    return 1;
  });
}

void objcache_list_close(objcache_lister* l) { delete l; }

int64_t objcache_prefetch(objcache_cache* cache, const char* const* where, size_t count) {
  if (cache == nullptr || (where == nullptr && count > 0)) return fail(EINVAL, "NULL argument");
  return guarded<int64_t>([&]() -> int64_t {
    std::vector<std::string> keys;
    keys.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      if (where[i] != nullptr) keys.emplace_back(where[i]);
    }
    auto r = cache->cache->prefetch(keys);
    if (!r) return fail(r.error());
    return static_cast<int64_t>(*r);
  });
}

void objcache_wait_prefetch(objcache_cache* cache) {
  if (cache != nullptr) cache->cache->wait_prefetch();
}

uint64_t objcache_cached_bytes(objcache_cache* cache, const char* where) {
  if (cache == nullptr || where == nullptr) return 0;
  return guarded<uint64_t>([&] { return cache->cache->cached_bytes(where); });
}

int objcache_writer_open(objcache_cache* cache, const char* where, objcache_writer** out) {
  if (cache == nullptr || where == nullptr || out == nullptr) return fail(EINVAL, "NULL argument");
  return guarded<int>([&] {
    auto w = cache->cache->create(where);
    if (!w) return fail(w.error());
    *out = new objcache_writer{std::move(*w)};
    return 0;
  });
}

int objcache_write(objcache_writer* w, const void* buf, size_t len) {
  if (w == nullptr || (buf == nullptr && len > 0)) return fail(EINVAL, "NULL argument");
  return guarded<int>([&] {
    auto r = w->writer.write(std::span<const std::byte>(static_cast<const std::byte*>(buf), len));
    if (!r) return fail(r.error());
    return 0;
  });
}

int objcache_writer_commit(objcache_writer* w) {
  if (w == nullptr) return fail(EINVAL, "NULL argument");
  return guarded<int>([&] {
    auto r = w->writer.commit();
    if (!r) return fail(r.error());
    return 0;
  });
}

void objcache_writer_abort(objcache_writer* w) {
  if (w != nullptr) w->writer.abort();
}

void objcache_writer_close(objcache_writer* w) { delete w; }

}  // extern "C"
