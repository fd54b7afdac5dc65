// SPDX-License-Identifier: Apache-2.0
// StagedFile: the state of one object being written, and what a commit does:
// upload (streamed or whole), then tell the node (the stat record names the
// new ETag at once, the parent's listing is dropped), admit the bytes to the
// page cache so reading them back makes no GET, and remove the staged file.
// A failure keeps the staged file and says where it is.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "upload/staged_file_impl.h"
#include "util/log.h"
#include "util/process.h"

namespace objcache {
namespace {

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status status_of_errno(int e) {
  switch (e) {
    case ENOSPC:
    case EDQUOT: return Status::NoSpace;
    case EACCES:
    case EPERM: return Status::AccessDenied;
    default: return Status::IoError;
  }
}

// The bytes of a file just written, into the page cache as pages of its
// new version (what a reader of it on this node then finds). Only what
// fits comfortably: a checkpoint larger than half of the RAM tier
// would push out the data set, and a reader gets it with GETs instead.
void admit(PageCache& cache, const ObjectId& id, int fd, std::uint64_t size, int mount) {
  const std::uint64_t ps = cache.page_size();
  const CacheStats st = cache.stats();
  if (size == 0 || size > st.ram_capacity_bytes / 2) return;
  std::vector<std::byte> buf(ps);
  for (std::uint64_t off = 0, page = 0; off < size; off += ps, ++page) {
    const auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(ps, size - off));
    std::size_t got = 0;
    while (got < len) {
      ssize_t n = ::pread(fd, buf.data() + got, len - got, static_cast<off_t>(off + got));
      if (n <= 0) return;
      got += static_cast<std::size_t>(n);
    }
    if (!cache.admit(PageRef{id, static_cast<std::uint32_t>(page), len, mount}, std::span(buf).first(len))) return;
  }
}

}  // namespace

StagedFile::Impl::~Impl() {
  if (program_fd >= 0) ::close(program_fd);
  if (own_fd >= 0) ::close(own_fd);
}

std::uint64_t StagedFile::Impl::file_size() const {
  struct stat st {};
  if (::fstat(own_fd, &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

void StagedFile::Impl::new_session(std::uint64_t already, bool stream) {
  const MountConfig& mc = cfg->mounts[static_cast<std::size_t>(mount)];
  upload::StreamingUpload::Options o;
  o.concurrency = mc.store.upload_concurrency;
  o.gate = gate;
  o.gate_cap = mc.store.prefetch_concurrency;
  upload = std::make_unique<upload::StreamingUpload>(*store, key, own_fd, o);
  if (!stream) upload->stop_streaming();  // before wrote(): it would send the first parts at once
  if (already > 0) upload->wrote(0, already);
}

Result<void> StagedFile::Impl::upload_now(const char* why) {
  const std::uint64_t size = file_size();
  if (write_error != 0) {
    const Error err = make_error(status_of_errno(write_error),
                                 std::string("a write to it failed (") + std::strerror(write_error) + ")");
    // Not "failed": its bytes are not all the program wrote, so no one may
    // upload them as the object (cachectl uploads --retry refuses it).
    info.state = "incomplete";
    info.error = err.describe();
    (void)staging->update(info);
    OC_ERROR("%s of %s/%s not uploaded: %s; its bytes are kept in %s", why,
             cfg->mounts[static_cast<std::size_t>(mount)].path.c_str(), key.c_str(), err.describe().c_str(),
             info.data_path.c_str());
    upload->abort();
    return err;
  }
  info.state = "uploading";
  info.key = key;
  (void)staging->update(info);
  auto etag = upload->finish(size);
  cache->count_upload(upload->bytes_sent(), upload->requests(), !etag.ok(), mount);
  if (!etag) {
    info.state = "failed";
    info.error = etag.error().describe();
    (void)staging->update(info);
    OC_ERROR("upload of %s (%s of s3://%s/%s) failed: %s; its bytes are kept in %s (cachectl uploads --retry)",
             info.local_path.c_str(), why, info.bucket.c_str(), key.c_str(), etag.error().describe().c_str(),
             info.data_path.c_str());
    return etag.error();
  }
  dirty = false;
  exists = true;
  // The node sees the new object at once: its stat record names the new
  // ETag, the parent's listing is made again on next use.
  meta->forget(mount, key);
  meta->remember_file(mount, key, size, now_s(), *etag);
  const MountConfig& mc = cfg->mounts[static_cast<std::size_t>(mount)];
  admit(*cache, ObjectId::of(mc.source.bucket, key, *etag), own_fd, size, mount);
  if (!delete_after.empty()) {
    auto r = store->remove(delete_after);
    if (!r) OC_WARN("renamed %s: could not delete the old key %s: %s", key.c_str(), delete_after.c_str(), r.error().describe().c_str());
    meta->forget(mount, delete_after);
    delete_after.clear();
  }
  OC_DEBUG("uploaded s3://%s/%s (%llu bytes, %s)", mc.source.bucket.c_str(), key.c_str(),
           static_cast<unsigned long long>(size), why);
  return {};
}

std::string staging_directory(const CacheConfig& cache) {
  return upload::default_staging_dir(cache.staging_dir, cache.spill_dir);
}

StagedFile::StagedFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StagedFile::~StagedFile() = default;

int StagedFile::take_fd() {
  std::lock_guard<std::mutex> g(impl_->mu);
  int fd = impl_->program_fd;
  impl_->program_fd = -1;
  return fd;
}

int StagedFile::mount() const { return impl_->mount; }

std::string StagedFile::key() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->key;
}

std::string StagedFile::staged_path() const { return impl_->info.data_path; }

std::uint64_t StagedFile::size() const { return impl_->file_size(); }

void StagedFile::wrote(std::uint64_t offset, std::uint64_t len) {
  if (!owned_here()) return;
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->dirty = true;
  impl_->upload->wrote(offset, len);
}

void StagedFile::write_failed(int err) {
  std::lock_guard<std::mutex> g(impl_->mu);
  if (impl_->write_error == 0) impl_->write_error = err;
}

void StagedFile::unseen_writes(Unseen how) {
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->dirty = true;  // whatever was written, the next commit uploads it
  if (how == Unseen::Anywhere) {
    impl_->upload->stop_streaming();
  } else {
    impl_->upload->verify_at_finish();
  }
}

void StagedFile::truncated(std::uint64_t len) {
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->dirty = true;
  // Shorter than what was sent, or a hole past the end: send it whole.
  impl_->upload->stop_streaming();
  (void)len;
}

Result<void> StagedFile::rename(int mount, const std::string& key) {
  std::lock_guard<std::mutex> g(impl_->mu);
  if (mount != impl_->mount) return make_error(Status::CrossDevice, "rename across mounts");
  if (impl_->exists && impl_->delete_after.empty()) impl_->delete_after = impl_->key;
  if (impl_->delete_after == key) impl_->delete_after.clear();
  const std::string old = impl_->key;
  impl_->key = key;
  impl_->dirty = true;  // the new key has no object yet
  impl_->exists = false;
  if (!impl_->upload->rename_to(key)) {
    // Parts went to the old key already: they are dropped, and the file is
    // sent whole to the new key at commit.
    OC_INFO("%s renamed while its upload was streaming: it is sent again, to %s", old.c_str(), key.c_str());
    impl_->upload->abort();
    impl_->new_session(0, /*stream=*/false);
  }
  impl_->info.key = key;
  (void)impl_->staging->update(impl_->info);
  impl_->meta->forget(mount, old);
  return {};
}

void StagedFile::unlinked() {
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->unlinked = true;
}

bool StagedFile::owned_here() const { return impl_->info.writer == proc::self(); }

Result<void> StagedFile::sync() {
  if (!owned_here()) return {};
  std::lock_guard<std::mutex> g(impl_->mu);
  if (!impl_->dirty || impl_->unlinked) return {};
  auto r = impl_->upload_now("fsync");
  const std::uint64_t size = impl_->file_size();
  impl_->new_session(size);  // what follows is streamed after these bytes
  if (r) impl_->info.state = "writing";
  return r;
}

Result<void> StagedFile::commit() {
  if (!owned_here()) return {};
  std::lock_guard<std::mutex> g(impl_->mu);
  if (impl_->committed) return {};
  if (impl_->unlinked) {
    impl_->upload->abort();
  } else if (impl_->dirty || impl_->write_error != 0) {
    impl_->info.closed = true;  // from now on nobody writes it: a failure is anyone's to retry
    auto r = impl_->upload_now("close");
    if (!r) return r;
  } else {
    impl_->upload->abort();  // nothing new: nothing to send
  }
  impl_->committed = true;
  impl_->staging->remove(impl_->info);
  return {};
}

}  // namespace objcache
