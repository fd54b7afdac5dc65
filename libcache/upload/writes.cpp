// SPDX-License-Identifier: Apache-2.0
#include "upload/writes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "fill/gate.h"
#include "cache/page_fills.h"
#include "upload/staged_file_impl.h"
#include "upload/streaming_upload.h"
#include "util/log.h"

namespace objcache::upload {
namespace {

constexpr std::size_t kMaxKey = 1024;  // S3 refuses longer keys
constexpr std::uint64_t kCopyPart = 512ull << 20;

std::string parent_of(const std::string& key) {
  std::string k = key;
  while (!k.empty() && k.back() == '/') k.pop_back();
  auto slash = k.rfind('/');
  return slash == std::string::npos ? std::string() : k.substr(0, slash + 1);
}

std::string strip_slash(std::string k) {
  while (!k.empty() && k.back() == '/') k.pop_back();
  return k;
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Writes::Writes(const Config& cfg, PageCache& cache, store::StoreSet& stores, meta::MetadataCache& meta, ReadNode read)
    : cfg_(cfg), cache_(cache), stores_(stores), meta_(meta), read_(std::move(read)) {}

bool Writes::writable(int m) const {
  return m >= 0 && static_cast<std::size_t>(m) < cfg_.mounts.size() && mount(m).writable;
}

Result<const StagingDir*> Writes::staging() {
  std::lock_guard<std::mutex> g(mu_);
  if (!staging_) {
    auto d = StagingDir::open(default_staging_dir(cfg_.cache.staging_dir, cfg_.cache.spill_dir));
    if (!d) {
      OC_ERROR("writes are refused: %s", d.error().describe().c_str());
      return d.error();
    }
    staging_.emplace(std::move(*d));
  }
  return &*staging_;
}

Result<Node> Writes::stat(int m, const std::string& key) {
  if (key.size() <= mount(m).source.prefix.size()) return meta_.dir_node(m, mount(m).source.prefix);
  return meta_.stat(m, strip_slash(key));
}

Result<void> Writes::check_parent(int m, const std::string& key) {
  const std::string parent = parent_of(key);
  if (parent.size() <= mount(m).source.prefix.size()) return {};  // the mount root
  auto p = meta_.stat(m, strip_slash(parent));
  if (!p) return p.error();
  if (!p->is_dir()) return make_error(Status::NotDirectory, "not a directory: " + parent);
  return {};
}

Result<std::unique_ptr<StagedFile>> Writes::open_for_write(int m, const std::string& key, int flags,
                                                           const std::string& local_path, Parents parents) {
  if (!writable(m)) return make_error(Status::ReadOnly, "the mount " + mount(m).path + " is read-only");
  if (key.size() > kMaxKey) return make_error(Status::NameTooLong, "key over 1024 bytes");
  if (key.size() <= mount(m).source.prefix.size()) return make_error(Status::IsDirectory, "the mount root");
  auto node = stat(m, key);
  const bool exists = node.ok();
  if (!exists && node.status() != Status::NotFound) return node.error();
  if (exists && node->is_dir()) return make_error(Status::IsDirectory, "is a directory: " + key);
  if (exists && (flags & O_CREAT) && (flags & O_EXCL)) return make_error(Status::AlreadyExists, "exists: " + key);
  if (!exists && !(flags & O_CREAT)) return node.error();
  if (!exists && parents == Parents::Exist) {
    if (auto p = check_parent(m, key); !p) return p.error();
  }
  auto dir = staging();
  if (!dir) return dir.error();
  auto st = stores_.of(m);
  if (!st) return st.error();
  auto info = (*dir)->create(mount(m).source.bucket, key, local_path);
  if (!info) return info.error();

  auto impl = make_impl(m, *st, *info, *dir);
  impl->exists = exists;
  auto fail = [&](Error e) -> Result<std::unique_ptr<StagedFile>> {
    (*dir)->remove(impl->info);
    return e;
  };
  int acc = flags & O_ACCMODE;
  impl->program_fd = ::open(info->data_path.c_str(),
                            (acc == O_RDONLY ? O_RDWR : acc) | (flags & (O_APPEND | O_CLOEXEC)) | O_NOFOLLOW);
  impl->own_fd = ::open(info->data_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (impl->program_fd < 0 || impl->own_fd < 0) {
    return fail(make_error(Status::IoError, "cannot open the staged file " + info->data_path + ": " + std::strerror(errno)));
  }
  std::uint64_t staged = 0;
  if (exists && !(flags & O_TRUNC)) {
    // Read-modify-write: the object's bytes first (through an fd of our
    // own: the program's may append whatever offset it is given).
    const int fill_fd = ::open(info->data_path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fill_fd < 0) return fail(make_error(Status::IoError, "cannot open " + info->data_path + ": " + std::strerror(errno)));
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{fill_fd};
    std::vector<std::byte> buf(std::min<std::uint64_t>(node->size, 4ull << 20));
    for (std::uint64_t pos = 0; pos < node->size;) {
      auto got = read_(*node, pos, buf);
      if (!got) return fail(got.error());
      if (*got == 0) return fail(make_error(Status::PreconditionFailed, "object changed size while staging: " + key));
      for (std::size_t done = 0; done < *got;) {
        ssize_t n = ::pwrite(fill_fd, buf.data() + done, *got - done,
                             static_cast<off_t>(pos + done));
        if (n < 0) {
          const int e = errno;
          return fail(make_error(e == ENOSPC ? Status::NoSpace : Status::IoError,
                                 "cannot stage " + key + ": " + std::strerror(e)));
        }
        done += static_cast<std::size_t>(n);
      }
      pos += *got;
    }
    staged = node->size;
  }
  impl->dirty = !exists || (flags & O_TRUNC) != 0;
  // Writes into the middle of what was staged would touch parts already
  // sent: only an appender streams. (Stopped before the session sees the
  // staged bytes: it would send their first parts at once, and a write
  // landing in one while it is on the wire makes a part whose signed hash
  // is not its body, which a server that checks refuses.)
  impl->new_session(staged, /*stream=*/staged == 0 || (flags & O_APPEND) != 0);
  if (flags & O_APPEND) ::lseek(impl->program_fd, 0, SEEK_END);
  return std::unique_ptr<StagedFile>(new StagedFile(std::move(impl)));
}

std::unique_ptr<StagedFile::Impl> Writes::make_impl(int m, ObjectStore* store, const StagedInfo& info,
                                                    const StagingDir* dir) {
  auto impl = std::make_unique<StagedFile::Impl>();
  impl->cfg = &cfg_;
  impl->store = store;
  impl->cache = &cache_;
  impl->meta = &meta_;
  impl->staging = dir;
  impl->gate = &cache::gate(cache_);
  impl->mount = m;
  impl->key = info.key;
  impl->info = info;
  return impl;
}

Result<std::unique_ptr<StagedFile>> Writes::resume(const std::string& data_path, int fd) {
  auto dir = staging();
  if (!dir) return dir.error();
  auto info = (*dir)->read(data_path);
  if (!info) return info.error();
  if (info->writer != ::getpid()) return make_error(Status::AccessDenied, "staged by another process: " + data_path);
  auto m = mount_of(*info);
  if (!m) return make_error(Status::NotFound, "no mount of this configuration holds s3://" + info->bucket + "/" + info->key);
  if (!writable(*m)) return make_error(Status::ReadOnly, "the mount " + mount(*m).path + " is read-only");
  struct stat by_fd {}, by_path {};
  if (::fstat(fd, &by_fd) != 0 || ::stat(data_path.c_str(), &by_path) != 0 || by_fd.st_dev != by_path.st_dev ||
      by_fd.st_ino != by_path.st_ino) {
    return make_error(Status::InvalidArgument, "fd " + std::to_string(fd) + " is not on " + data_path);
  }
  auto st = stores_.of(*m);
  if (!st) return st.error();
  // A multipart upload the old image left open is not resumed.
  if (!info->upload_id.empty()) (void)(*st)->abort_multipart(info->key, info->upload_id);
  info->upload_id.clear();
  info->state = "writing";
  info->closed = false;  // being written again
  (void)(*dir)->update(*info);
  auto impl = make_impl(*m, *st, *info, *dir);
  impl->own_fd = ::open(data_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (impl->own_fd < 0) return make_error(Status::IoError, "cannot open " + data_path + ": " + std::strerror(errno));
  impl->program_fd = fd;
  impl->exists = true;  // the old image synced it before exec
  impl->dirty = true;   // what the old image wrote is sent again with the rest
  impl->new_session(static_cast<std::uint64_t>(by_fd.st_size));
  return std::unique_ptr<StagedFile>(new StagedFile(std::move(impl)));
}

Result<void> Writes::unlink(int m, const std::string& key) {
  if (!writable(m)) return make_error(Status::ReadOnly, "the mount " + mount(m).path + " is read-only");
  auto node = stat(m, key);
  if (!node) return node.error();
  if (node->is_dir()) return make_error(Status::IsDirectory, "is a directory: " + key);
  auto st = stores_.of(m);
  if (!st) return st.error();
  auto r = (*st)->remove(node->key);
  cache_.count_upload(0, 1, !r.ok(), m);
  meta_.forget(m, node->key);
  return r;
}

Result<void> Writes::mkdir(int m, const std::string& key) {
  if (!writable(m)) return make_error(Status::ReadOnly, "the mount " + mount(m).path + " is read-only");
  const std::string name = strip_slash(key);
  if (name.size() + 1 > kMaxKey) return make_error(Status::NameTooLong, "key over 1024 bytes");
  if (name.size() <= strip_slash(mount(m).source.prefix).size()) return make_error(Status::AlreadyExists, "the mount root");
  auto node = stat(m, name);
  if (node) return make_error(Status::AlreadyExists, "exists: " + name);
  if (node.status() != Status::NotFound) return node.error();
  if (auto p = check_parent(m, name); !p) return p.error();
  auto st = stores_.of(m);
  if (!st) return st.error();
  // A zero-byte "dir/" marker: the directory lists (empty) in the bucket
  // too, as the S3 console and other tools make them.
  auto r = (*st)->put(name + '/', {});
  cache_.count_upload(0, 1, !r.ok(), m);
  meta_.forget(m, name + '/');
  if (!r) return r.error();
  return {};
}

Result<void> Writes::rmdir(int m, const std::string& key) {
  if (!writable(m)) return make_error(Status::ReadOnly, "the mount " + mount(m).path + " is read-only");
  const std::string name = strip_slash(key);
  if (name.size() <= strip_slash(mount(m).source.prefix).size()) return make_error(Status::Conflict, "the mount root");
  auto node = stat(m, name);
  if (!node) return node.error();
  if (!node->is_dir()) return make_error(Status::NotDirectory, "not a directory: " + name);
  auto st = stores_.of(m);
  if (!st) return st.error();
  // Empty? Asked of the store, not of a listing that may be minutes old.
  ListRequest req;
  req.prefix = name + '/';
  req.max_keys = 2;
  auto page = (*st)->list(req);
  cache_.count_metadata(PageCache::MetaRequest::List);
  if (!page) return page.error();
  for (const ObjectInfo& o : page->objects) {
    if (o.key != req.prefix) return make_error(Status::NotEmpty, "not empty: " + name);
  }
  if (!page->common_prefixes.empty()) return make_error(Status::NotEmpty, "not empty: " + name);
  auto r = (*st)->remove(req.prefix);
  cache_.count_upload(0, 1, !r.ok(), m);
  meta_.forget(m, req.prefix);
  return r;
}

Result<std::string> Writes::copy_object(ObjectStore& st, const std::string& from, const std::string& to,
                                        std::uint64_t size) {
  if (size <= kCopyObjectMax) {
    auto e = st.copy(from, to);
    cache_.count_upload(0, 1, !e.ok(), -1);
    return e;
  }
  // Larger: a multipart upload whose parts are copied by the store.
  auto id = st.create_multipart(to);
  if (!id) return id.error();
  std::vector<CompletedPart> parts;
  for (std::uint64_t off = 0; off < size; off += kCopyPart) {
    const int n = static_cast<int>(parts.size()) + 1;
    auto e = st.upload_part_copy(to, *id, n, from, off, std::min(kCopyPart, size - off));
    if (!e) {
      (void)st.abort_multipart(to, *id);
      return e.error();
    }
    parts.push_back(CompletedPart{n, *e});
  }
  auto e = st.complete_multipart(to, *id, parts);
  cache_.count_upload(0, parts.size() + 2, !e.ok(), -1);
  return e;
}

Result<void> Writes::rename_file(int m, ObjectStore& st, const Node& from, const std::string& to) {
  auto etag = copy_object(st, from.key, to, from.size);
  if (!etag) return etag.error();
  meta_.forget(m, to);
  meta_.remember_file(m, to, from.size, now_s(), *etag);
  auto r = st.remove(from.key);
  meta_.forget(m, from.key);
  if (!r) {
    OC_WARN("rename %s -> %s: copied, but the old key could not be deleted: %s", from.key.c_str(), to.c_str(),
            r.error().describe().c_str());
    return r.error();
  }
  return {};
}

Result<void> Writes::rename_dir(int m, ObjectStore& st, const std::string& from, const std::string& to) {
  std::vector<ObjectInfo> objects;
  ListRequest req;
  req.prefix = strip_slash(from) + '/';
  for (;;) {
    auto page = st.list(req);
    cache_.count_metadata(PageCache::MetaRequest::List);
    if (!page) return page.error();
    for (auto& o : page->objects) objects.push_back(std::move(o));
    if (objects.size() > kRenameLimit) {
      OC_WARN("rename of the directory %s: more than %zu objects, refused (EXDEV): rename them in parts",
              from.c_str(), kRenameLimit);
      return make_error(Status::CrossDevice, "directory of more than " + std::to_string(kRenameLimit) + " objects");
    }
    if (!page->truncated || page->next_continuation_token.empty()) break;
    req.continuation_token = page->next_continuation_token;
  }
  const std::string dst = strip_slash(to) + '/';
  // Copy everything first, then delete: an interrupted rename leaves both
  // trees, never a tree with objects missing.
  for (const ObjectInfo& o : objects) {
    auto e = copy_object(st, o.key, dst + o.key.substr(req.prefix.size()), o.size);
    if (!e) return e.error();
  }
  if (objects.empty()) {
    auto e = st.put(dst, {});  // an empty directory: its marker
    if (!e) return e.error();
  }
  for (const ObjectInfo& o : objects) {
    auto r = st.remove(o.key);
    if (!r) return r.error();
    meta_.forget(m, o.key);
  }
  meta_.forget(m, req.prefix);
  meta_.forget(m, dst);
  return {};
}

Result<void> Writes::rename(int m, const std::string& from, int to_mount, const std::string& to, bool no_replace) {
  if (m != to_mount) return make_error(Status::CrossDevice, "rename between mounts");
  if (!writable(m)) return make_error(Status::ReadOnly, "the mount " + mount(m).path + " is read-only");
  if (to.size() > kMaxKey) return make_error(Status::NameTooLong, "key over 1024 bytes");
  auto src = stat(m, from);
  if (!src) return src.error();
  const std::string root = strip_slash(mount(m).source.prefix);
  if (strip_slash(from).size() <= root.size() || strip_slash(to).size() <= root.size()) {
    return make_error(Status::Conflict, "the mount root cannot be renamed or replaced");
  }
  if (strip_slash(from) == strip_slash(to)) return {};
  auto dst = stat(m, to);
  if (dst) {
    if (no_replace) return make_error(Status::AlreadyExists, "exists: " + to);
    if (src->is_dir() && !dst->is_dir()) return make_error(Status::NotDirectory, "not a directory: " + to);
    if (!src->is_dir() && dst->is_dir()) return make_error(Status::IsDirectory, "is a directory: " + to);
  } else if (dst.status() != Status::NotFound) {
    return dst.error();
  } else if (auto p = check_parent(m, to); !p) {
    return p.error();
  }
  if (src->is_dir() && strip_slash(to).rfind(strip_slash(from) + '/', 0) == 0) {
    return make_error(Status::InvalidArgument, "a directory cannot move inside itself");
  }
  auto st = stores_.of(m);
  if (!st) return st.error();
  if (!src->is_dir()) return rename_file(m, **st, *src, strip_slash(to));
  if (dst) {
    // Replacing a directory: only an empty one (as rename(2)).
    if (auto r = rmdir(m, to); !r) return r;
  }
  return rename_dir(m, **st, src->key, to);
}

Result<void> Writes::truncate(int m, const std::string& key, std::uint64_t size) {
  auto f = open_for_write(m, key, O_WRONLY, mount(m).path + "/" + key.substr(mount(m).source.prefix.size()));
  if (!f) return f.error();
  const int fd = (*f)->take_fd();
  const int r = ::ftruncate(fd, static_cast<off_t>(size));
  const int e = errno;
  ::close(fd);
  if (r != 0) return make_error(e == ENOSPC ? Status::NoSpace : Status::IoError, std::strerror(e));
  (*f)->truncated(size);
  return (*f)->commit();
}

// ---- staged files (cachectl uploads) ------------------------------------------

Result<std::vector<StagedInfo>> Writes::staged() {
  // Listing makes nothing: no directory, nothing staged.
  struct stat st {};
  if (::stat(default_staging_dir(cfg_.cache.staging_dir, cfg_.cache.spill_dir).c_str(), &st) != 0 && errno == ENOENT) {
    return std::vector<StagedInfo>{};
  }
  auto dir = staging();
  if (!dir) return dir.error();
  return (*dir)->list();
}

std::optional<int> Writes::mount_of(const StagedInfo& s) const {
  for (std::size_t m = 0; m < cfg_.mounts.size(); ++m) {
    const MountConfig& mc = cfg_.mounts[m];
    if (mc.source.bucket == s.bucket && s.key.rfind(mc.source.prefix, 0) == 0 &&
        (s.local_path.empty() || s.local_path.rfind(mc.path + "/", 0) == 0)) {
      return static_cast<int>(m);
    }
  }
  return std::nullopt;
}

Result<void> Writes::retry(const StagedInfo& s) {
  if (s.state == "incomplete")
    return make_error(Status::InvalidArgument,
                      "a write to " + (s.local_path.empty() ? s.data_path : s.local_path) +
                          " failed (" + s.error + "), so the staged bytes are not the whole file: not uploaded "
                          "(cachectl uploads --discard removes it)");
  auto dir = staging();
  if (!dir) return dir.error();
  auto m = mount_of(s);
  if (!m) return make_error(Status::NotFound, "no mount of this configuration holds s3://" + s.bucket + "/" + s.key);
  if (!writable(*m)) return make_error(Status::ReadOnly, "the mount " + mount(*m).path + " is read-only");
  auto st = stores_.of(*m);
  if (!st) return st.error();
  int fd = ::open(s.data_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return make_error(Status::IoError, "cannot open " + s.data_path + ": " + std::strerror(errno));
  struct stat sb {};
  ::fstat(fd, &sb);
  if (!s.upload_id.empty()) (void)(*st)->abort_multipart(s.key, s.upload_id);
  StreamingUpload::Options o;
  o.concurrency = mount(*m).store.upload_concurrency;
  o.gate = &cache::gate(cache_);
  o.gate_cap = mount(*m).store.prefetch_concurrency;
  StreamingUpload up(**st, s.key, fd, o);
  up.stop_streaming();
  auto etag = up.finish(static_cast<std::uint64_t>(sb.st_size));
  cache_.count_upload(up.bytes_sent(), up.requests(), !etag.ok(), *m);
  ::close(fd);
  if (!etag) {
    StagedInfo kept = s;
    kept.state = "failed";
    kept.error = etag.error().describe();
    (void)(*dir)->update(kept);
    return etag.error();
  }
  meta_.forget(*m, s.key);
  meta_.remember_file(*m, s.key, static_cast<std::uint64_t>(sb.st_size), now_s(), *etag);
  (*dir)->remove(s);
  return {};
}

Result<void> Writes::discard(const StagedInfo& s) {
  auto dir = staging();
  if (!dir) return dir.error();
  if (auto m = mount_of(s); m && !s.upload_id.empty()) {
    if (auto st = stores_.of(*m); st) (void)(*st)->abort_multipart(s.key, s.upload_id);
  }
  (*dir)->remove(s);
  return {};
}

}  // namespace objcache::upload
