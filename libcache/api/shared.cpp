// SPDX-License-Identifier: Apache-2.0
// Shared: URIs and paths to (generation, mount, key), and the generations
// of Vfs a Cache makes as it meets new buckets.
#include "api/shared.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace objcache::api {

namespace {

// Every live Shared, so fork can hold their locks (a child must never
// inherit one held by a thread that does not exist there).
std::mutex g_live_mu;
std::vector<Shared*> g_live;

void before_fork() {
  g_live_mu.lock();
  for (Shared* s : g_live) s->mu.lock();
}

void after_fork() {
  for (Shared* s : g_live) s->mu.unlock();
  g_live_mu.unlock();
}

constexpr const char* kUriMountRoot = "/.objcache-uri/";

bool bucket_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

}  // namespace

bool looks_like_uri(std::string_view text) {
  return text.starts_with("s3://") || text.starts_with("oss://");
}

Result<Uri> parse_uri(std::string_view text) {
  Uri u;
  std::string_view rest;
  if (text.starts_with("s3://")) {
    u.scheme = "s3";
    rest = text.substr(5);
  } else if (text.starts_with("oss://")) {
    u.scheme = "oss";
    rest = text.substr(6);
  } else {
    return make_error(Status::InvalidArgument, "not an s3:// or oss:// URI: " + std::string(text));
  }
  const std::size_t slash = rest.find('/');
  const std::string_view bucket = rest.substr(0, slash);
  if (bucket.empty() || bucket.size() > 63 || !std::all_of(bucket.begin(), bucket.end(), bucket_char)) {
    return make_error(Status::InvalidArgument, "bad bucket name in " + std::string(text));
  }
  u.bucket = std::string(bucket);
  if (slash != std::string_view::npos) u.key = std::string(rest.substr(slash + 1));
  if (u.key.size() > 1024) return make_error(Status::NameTooLong, "key over 1024 bytes");
  if (u.key.find('\0') != std::string::npos) return make_error(Status::InvalidArgument, "key with a NUL");
  return u;
}

MountConfig uri_mount(const Config& cfg, const std::string& bucket) {
  MountConfig m;
  m.path = kUriMountRoot + bucket;
  m.source_text = "s3://" + bucket + "/";
  m.source = SourceUri{"s3", bucket, ""};
  m.writable = true;
  m.prefetch = Prefetch::File;  // sequential reads get readahead; opening queues nothing
  m.store = cfg.store;
  for (const MountConfig& u : cfg.mounts) {
    if (u.source.bucket == bucket && !u.path.starts_with(kUriMountRoot)) {
      m.store = u.store;
      m.metadata_ttl = u.metadata_ttl;
      break;
    }
  }
  return m;
}

Result<std::shared_ptr<Shared>> Shared::create(const Config& cfg, const PageCacheOptions& opts) {
  try {
    auto s = std::make_shared<Shared>();
    s->base = cfg;
    s->opts = opts;
    s->user_mounts = cfg.mounts.size();
    auto gen = std::make_shared<Generation>();
    gen->cfg = cfg;
    // The buckets of the configured mounts get their URI mounts now: the
    // common case never needs a second generation.
    for (const MountConfig& m : cfg.mounts) {
      if (gen->bucket_mount.contains(m.source.bucket)) continue;
      gen->bucket_mount[m.source.bucket] = static_cast<int>(gen->cfg.mounts.size());
      gen->cfg.mounts.push_back(uri_mount(cfg, m.source.bucket));
    }
    auto vfs = Vfs::open(gen->cfg, opts);
    if (!vfs) return vfs.error();
    gen->vfs = std::move(*vfs);
    s->all.push_back(gen);
    s->current = std::move(gen);
    // Registered after Vfs's own handlers (Vfs::open registers them), so
    // ours run first before fork: our lock, then Vfs's, as with_bucket
    // takes them.
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(before_fork, after_fork, after_fork); });
    std::lock_guard<std::mutex> g(g_live_mu);
    g_live.push_back(s.get());
    return s;
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("cache: ") + e.what());
  }
}

Shared::~Shared() {
  std::lock_guard<std::mutex> g(g_live_mu);
  std::erase(g_live, this);
}

std::shared_ptr<Generation> Shared::now() {
  std::lock_guard<std::mutex> g(mu);
  return current;
}

std::vector<std::shared_ptr<Generation>> Shared::alive() {
  std::lock_guard<std::mutex> g(mu);
  std::vector<std::shared_ptr<Generation>> out;
  for (const auto& w : all) {
    if (auto p = w.lock()) out.push_back(std::move(p));
  }
  return out;
}

Result<std::shared_ptr<Generation>> Shared::with_bucket(const std::string& bucket) {
  std::lock_guard<std::mutex> g(mu);
  if (current->bucket_mount.contains(bucket)) return current;
  auto gen = std::make_shared<Generation>();
  gen->cfg = current->cfg;
  gen->bucket_mount = current->bucket_mount;
  gen->bucket_mount[bucket] = static_cast<int>(gen->cfg.mounts.size());
  gen->cfg.mounts.push_back(uri_mount(base, bucket));
  auto vfs = Vfs::open(gen->cfg, opts);
  if (!vfs) return vfs.error();
  gen->vfs = std::move(*vfs);
  current = gen;
  std::erase_if(all, [](const std::weak_ptr<Generation>& w) { return w.expired(); });
  all.push_back(gen);
  return gen;
}

Result<Target> Shared::locate(std::string_view where) {
  try {
    Target t;
    if (looks_like_uri(where)) {
      auto u = parse_uri(where);
      if (!u) return u.error();
      auto gen = with_bucket(u->bucket);
      if (!gen) return gen.error();
      t.gen = std::move(*gen);
      t.where.mount = t.gen->bucket_mount.at(u->bucket);
      t.where.key = u->key;
      t.where.is_root = u->key.empty();
      t.bucket = u->bucket;
      t.uri = true;
      t.scheme = u->scheme;
      return t;
    }
    t.gen = now();
    std::string cwd;
    if (!where.starts_with('/')) {
      char buf[4096];
      if (::getcwd(buf, sizeof buf) == nullptr) return make_error(Status::NotFound, "no working directory");
      cwd = buf;
    }
    t.where = t.gen->vfs->mounts().resolve(where, cwd);
    if (!t.where.ours() || static_cast<std::size_t>(t.where.mount) >= user_mounts) {
      return make_error(Status::NotFound, "not under a mount: " + std::string(where));
    }
    t.bucket = t.gen->cfg.mounts[static_cast<std::size_t>(t.where.mount)].source.bucket;
    return t;
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("locate: ") + e.what());
  }
}

std::string Shared::name_of(const Target& t, const std::string& key) const {
  if (t.uri) return t.scheme + "://" + t.bucket + "/" + key;
  return t.gen->vfs->mounts().local_path(t.where.mount, key);
}

}  // namespace objcache::api
