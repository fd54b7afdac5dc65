// SPDX-License-Identifier: Apache-2.0
// What Cache, File, Writer and Lister share: the Vfs that serves them and
// the way a URI or a local path becomes (mount, key). A URI's bucket gets a
// mount of its own (at a path no program names, writable, readahead on);
// a bucket first seen after open makes a new generation: a Vfs over the
// same cache with one more mount. Files keep the generation they were
// opened in, so nothing is torn down under a reader. Internal to api/.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/config.h"
#include "objcache/page_cache.h"
#include "objcache/result.h"
#include "objcache/vfs.h"

namespace objcache::api {

// The mounts of a Vfs, with the buckets that URIs reach through it.
struct Generation {
  Config cfg;
  std::shared_ptr<Vfs> vfs;
  std::map<std::string, int> bucket_mount;  // bucket -> index of its URI mount
};

// Where a URI or path lands.
struct Target {
  std::shared_ptr<Generation> gen;
  Resolved where;
  std::string bucket;
  bool uri = false;     // named by a URI (else a local path)
  std::string scheme;   // "s3" or "oss" for a URI
};

// "s3://bucket/key" or "oss://bucket/key"; key may be empty or end in '/'.
struct Uri {
  std::string scheme, bucket, key;
};
// nullopt-like: ok() false when text is not such a URI (InvalidArgument).
Result<Uri> parse_uri(std::string_view text);
bool looks_like_uri(std::string_view text);

struct Shared {
  Config base;            // as the caller gave it
  PageCacheOptions opts;
  std::size_t user_mounts = 0;
  std::mutex mu;          // guards current; taken before Vfs's own fork lock
  std::shared_ptr<Generation> current;
  std::vector<std::weak_ptr<Generation>> all;  // every generation made, for wait_prefetch

  static Result<std::shared_ptr<Shared>> create(const Config& cfg, const PageCacheOptions& opts);
  ~Shared();

  std::shared_ptr<Generation> now();
  // The generations still alive (some File, Writer or Lister holds them).
  std::vector<std::shared_ptr<Generation>> alive();
  Result<Target> locate(std::string_view where);
  // The local name of (target's mount, key): a URI or a path, as `t` was named.
  std::string name_of(const Target& t, const std::string& key) const;

 private:
  Result<std::shared_ptr<Generation>> with_bucket(const std::string& bucket);
};

// The mount a URI of `bucket` gets in cfg: the store settings (and
// metadata_ttl) of a configured mount of that bucket if there is one.
MountConfig uri_mount(const Config& cfg, const std::string& bucket);

}  // namespace objcache::api
