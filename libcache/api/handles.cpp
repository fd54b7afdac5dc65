// SPDX-License-Identifier: Apache-2.0
// File (reads pinned to an ETag, through the Vfs), Writer (a StagedFile
// written through its fd and committed) and Lister (ListObjectsV2 page by
// page through the mount's store).
#include <errno.h>
#include <unistd.h>

#include <cstring>
#include <limits>

#include "api/handles.h"

namespace objcache {

// ---- File -----------------------------------------------------------------------

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

std::uint64_t File::size() const { return impl_->node.size; }
const std::string& File::etag() const { return impl_->node.etag; }
const std::string& File::key() const { return impl_->node.key; }
const std::string& File::bucket() const { return impl_->bucket; }
std::uint64_t File::tell() const { return impl_->pos; }

Result<std::size_t> File::pread(std::uint64_t offset, std::span<std::byte> out) const {
  if (!impl_) return make_error(Status::InvalidArgument, "a moved-from File");
  return impl_->gen->vfs->read(impl_->node, offset, out);
}

Result<std::size_t> File::read(std::span<std::byte> out) {
  auto r = pread(impl_->pos, out);
  if (r) impl_->pos += *r;
  return r;
}

Result<std::uint64_t> File::seek(std::int64_t offset, Whence whence) {
  std::int64_t base = 0;
  switch (whence) {
    case Whence::Set: base = 0; break;
    case Whence::Current: base = static_cast<std::int64_t>(impl_->pos); break;
    case Whence::End: base = static_cast<std::int64_t>(impl_->node.size); break;
  }
  if ((offset > 0 && base > std::numeric_limits<std::int64_t>::max() - offset) || base + offset < 0) {
    return make_error(Status::InvalidArgument, "seek before the start of the object");
  }
  impl_->pos = static_cast<std::uint64_t>(base + offset);
  return impl_->pos;
}

// ---- Writer ---------------------------------------------------------------------

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;
Writer::~Writer() = default;

Writer::Impl::~Impl() {
  if (finished || !staged) return;
  try {
    staged->unlinked();  // commit then drops the staged bytes and any parts sent
    (void)staged->commit();
  } catch (const std::exception&) {
  }
  if (fd >= 0) ::close(fd);
}

std::uint64_t Writer::size() const { return impl_ ? impl_->written : 0; }

Result<void> Writer::write(std::string_view data) {
  return write(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data.data()), data.size()));
}

Result<void> Writer::write(std::span<const std::byte> data) {
  if (!impl_ || impl_->finished || impl_->fd < 0) {
    return make_error(Status::InvalidArgument, "the writer was committed or aborted");
  }
  Impl& w = *impl_;
  if (w.error != 0) return make_error(Status::IoError, std::string("an earlier write failed: ") + std::strerror(w.error));
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(w.fd, data.data() + done, data.size() - done,
                               static_cast<off_t>(w.written + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      w.error = n < 0 ? errno : EIO;
      w.staged->write_failed(w.error);
      return make_error(w.error == ENOSPC ? Status::NoSpace : Status::IoError,
                        "staging " + w.staged->staged_path() + ": " + std::strerror(w.error));
    }
    done += static_cast<std::size_t>(n);
  }
  w.staged->wrote(w.written, done);
  w.written += done;
  return {};
}

Result<void> Writer::commit() {
  if (!impl_ || !impl_->staged) return make_error(Status::InvalidArgument, "a moved-from Writer");
  Impl& w = *impl_;
  if (w.finished) return make_error(Status::InvalidArgument, "the writer was committed or aborted");
  try {
    if (w.fd >= 0) {
      ::close(w.fd);
      w.fd = -1;
    }
    auto r = w.staged->commit();
    if (!r) return r;  // the staged bytes stay; commit may be called again
    w.finished = true;
    return {};
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("commit: ") + e.what());
  }
}

void Writer::abort() {
  if (!impl_ || impl_->finished || !impl_->staged) return;
  Impl& w = *impl_;
  try {
    w.staged->unlinked();
    (void)w.staged->commit();
  } catch (const std::exception&) {
  }
  if (w.fd >= 0) ::close(w.fd);
  w.fd = -1;
  w.finished = true;
}

// ---- Lister ---------------------------------------------------------------------

Lister::Lister(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Lister::Lister(Lister&&) noexcept = default;
Lister& Lister::operator=(Lister&&) noexcept = default;
Lister::~Lister() = default;

bool Lister::done() const { return !impl_ || impl_->done; }

Result<std::vector<ListEntry>> Lister::next() {
  if (!impl_ || impl_->done) return std::vector<ListEntry>{};
  Impl& l = *impl_;
  try {
    std::vector<ListEntry> out;
    // A page of only directory markers ("dir/" objects) yields nothing:
    // go on to the next one rather than answer "done" too early.
    while (out.empty() && !l.done) {
      ListRequest req;
      req.prefix = l.prefix;
      req.continuation_token = l.token;
      req.max_keys = 1000;
      auto page = l.store->list(req);
      if (!page) return page.error();
      for (ObjectInfo& o : page->objects) {
        if (o.key.ends_with('/')) continue;  // a directory marker, not a file
        ListEntry e;
        e.name = l.shared->name_of(l.target, o.key);
        e.key = std::move(o.key);
        e.size = o.size;
        e.mtime = o.mtime;
        e.etag = std::move(o.etag);
        out.push_back(std::move(e));
      }
      l.token = page->next_continuation_token;
      l.done = !page->truncated || l.token.empty();
    }
    return out;
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("list: ") + e.what());
  }
}

}  // namespace objcache
