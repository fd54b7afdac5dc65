/* SPDX-License-Identifier: Apache-2.0 */
/* objcache's C ABI: objcache::Cache (cache.h) for other languages, with
 * opaque handles and no C++ type. Calls return 0 (or a count of bytes)
 * on success and a negative errno on failure (-ENOENT no such object,
 * -EACCES refused by the store, -EIO the store unreachable past
 * retry_deadline, ...); objcache_last_error() then says more, for this
 * thread. Thread-safe as cache.h is; nothing here aborts the program. */
#ifndef OBJCACHE_OBJCACHE_H
#define OBJCACHE_OBJCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "objcache/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct objcache_cache objcache_cache;
typedef struct objcache_file objcache_file;
typedef struct objcache_writer objcache_writer;
typedef struct objcache_lister objcache_lister;

#define OBJCACHE_ETAG_MAX 128 /* bytes of an ETag, with its NUL */

typedef struct objcache_stat_t {
  uint64_t size;   /* bytes; 0 for a prefix */
  int64_t mtime;   /* seconds since the epoch */
  int is_dir;      /* 1: a prefix of other keys, not an object */
  char etag[OBJCACHE_ETAG_MAX];
} objcache_stat_t;

typedef struct objcache_entry_t {
  const char* name; /* "s3://bucket/key" or the local path, as listed; valid until the next call */
  const char* key;  /* the same lifetime */
  uint64_t size;
  int64_t mtime;
} objcache_entry_t;

/* The library's version, "MAJOR.MINOR.PATCH". */
OBJCACHE_API const char* objcache_version(void);
/* What the last failing call of this thread said ("" if none). */
OBJCACHE_API const char* objcache_last_error(void);

/* Opens the cache a TOML configuration file describes; config_path NULL:
 * OBJCACHE_CONFIG, else ~/.config/objcache/config.toml, else
 * /etc/objcache/config.toml (-ENOENT when none exists). */
OBJCACHE_API int objcache_cache_open(const char* config_path, objcache_cache** out);
/* As objcache_cache_open, from TOML text. */
OBJCACHE_API int objcache_cache_open_toml(const char* toml_text, objcache_cache** out);
/* Handles made from the cache stay usable after it is closed. */
OBJCACHE_API void objcache_cache_close(objcache_cache* cache);

/* where: "s3://bucket/key", "oss://bucket/key" or a path under a mount. */
OBJCACHE_API int objcache_stat(objcache_cache* cache, const char* where, objcache_stat_t* out);
OBJCACHE_API int objcache_open(objcache_cache* cache, const char* where, objcache_file** out);
OBJCACHE_API uint64_t objcache_file_size(const objcache_file* f);
/* Copies the ETag (NUL-terminated) into buf; -ERANGE if it does not fit. */
OBJCACHE_API int objcache_file_etag(const objcache_file* f, char* buf, size_t len);
/* Bytes read (fewer only at the end of the object, 0 at or past it), or -errno. */
OBJCACHE_API int64_t objcache_pread(const objcache_file* f, void* buf, size_t len, uint64_t offset);
/* As pread at the file's position, which moves on. */
OBJCACHE_API int64_t objcache_read(objcache_file* f, void* buf, size_t len);
/* whence: SEEK_SET, SEEK_CUR, SEEK_END (0, 1, 2). The new position, or -EINVAL. */
OBJCACHE_API int64_t objcache_seek(objcache_file* f, int64_t offset, int whence);
OBJCACHE_API void objcache_close(objcache_file* f);

/* Every key under the prefix, in key order, a page of up to 1000 per request. */
OBJCACHE_API int objcache_list_open(objcache_cache* cache, const char* prefix, objcache_lister** out);
/* 1: *out holds the next entry; 0: the listing is done; or -errno. */
OBJCACHE_API int objcache_list_next(objcache_lister* l, objcache_entry_t* out);
OBJCACHE_API void objcache_list_close(objcache_lister* l);

/* Queues the objects for fetching in this order (Cache::prefetch); the
 * number queued, or -errno. */
OBJCACHE_API int64_t objcache_prefetch(objcache_cache* cache, const char* const* where, size_t count);
OBJCACHE_API void objcache_wait_prefetch(objcache_cache* cache);
/* Bytes of the object in RAM now. */
OBJCACHE_API uint64_t objcache_cached_bytes(objcache_cache* cache, const char* where);

/* Writes an object: it exists once objcache_writer_commit returns 0. */
OBJCACHE_API int objcache_writer_open(objcache_cache* cache, const char* where, objcache_writer** out);
OBJCACHE_API int objcache_write(objcache_writer* w, const void* buf, size_t len);
OBJCACHE_API int objcache_writer_commit(objcache_writer* w);
OBJCACHE_API void objcache_writer_abort(objcache_writer* w);
/* Frees the writer; without a commit, aborts it first. */
OBJCACHE_API void objcache_writer_close(objcache_writer* w);

#ifdef __cplusplus
}
#endif

#endif /* OBJCACHE_OBJCACHE_H */
