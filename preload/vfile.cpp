// SPDX-License-Identifier: Apache-2.0
#include "vfile.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>

#include "dispatch.h"
#include "library.h"

namespace objcache::preload {

namespace {

std::mutex g_pool_mu;
std::vector<OpenFile*>* g_free = nullptr;  // guarded by g_pool_mu; never freed

std::atomic<pid_t> g_pid{0};

// dup2s made in a vfork child (which has its own fd table but our memory).
struct VforkDup {
  int fd;
  OpenFile* file;
};
constexpr int kMaxVforkDups = 64;
pid_t g_vfork_pid = 0;
int g_vfork_count = 0;
VforkDup g_vfork_dups[kMaxVforkDups];

void pool_lock() { g_pool_mu.lock(); }
void pool_unlock() { g_pool_mu.unlock(); }
void pool_unlock_child() {
  g_pool_mu.unlock();
  vfile::note_fork_child();
}

pid_t raw_getpid() { return static_cast<pid_t>(::syscall(SYS_getpid)); }

__attribute__((constructor)) void vfile_init() {
  g_pid.store(raw_getpid(), std::memory_order_relaxed);
  ::pthread_atfork(pool_lock, pool_unlock, pool_unlock_child);
}

// A read-only fd on a sealed memfd holding the node's bytes, its offset set
// to `offset`; or -errno.
int filled_memfd(const Node& node, std::uint64_t offset) {
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return -err;
  int mfd = ::memfd_create("objcache", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) return -errno;
  constexpr std::size_t kChunk = 1u << 20;
  std::unique_ptr<std::byte[]> buf(new (std::nothrow) std::byte[kChunk]);
  if (!buf) {
    ::close(mfd);
    return -ENOMEM;
  }
  for (std::uint64_t pos = 0; pos < node.size;) {
    auto got = v->read(node, pos, std::span(buf.get(), kChunk));
    if (!got || *got == 0) {
      ::close(mfd);
      return got ? -EIO : -to_errno(got.status());
    }
    for (std::size_t done = 0; done < *got;) {
      ssize_t w = ::pwrite(mfd, buf.get() + done, *got - done, static_cast<off_t>(pos + done));
      if (w < 0) {
        int e = errno;
        ::close(mfd);
        return -(e == EINTR ? EIO : e);
      }
      done += static_cast<std::size_t>(w);
    }
    pos += *got;
  }
  (void)::fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", mfd);
  int ro = ::open(path, O_RDONLY | O_CLOEXEC);
  int e = errno;
  ::close(mfd);
  if (ro < 0) return -e;
  if (::lseek(ro, static_cast<off_t>(offset), SEEK_SET) < 0) {
    e = errno;
    ::close(ro);
    return -e;
  }
  return ro;
}

int replace_fd(int ro, int fd) {
  int fdflags = ::fcntl(fd, F_GETFD);
  if (fdflags < 0) return errno;
  if (::dup3(ro, fd, (fdflags & FD_CLOEXEC) != 0 ? O_CLOEXEC : 0) < 0) return errno;
  return 0;
}

}  // namespace

// ---- FileRef -------------------------------------------------------------------

FileRef FileRef::acquire(int fd) noexcept {
  for (int attempt = 0; attempt < 4; ++attempt) {
    OpenFile* f = dispatch::fds().find(fd);
    if (f == nullptr) return {};
    // Take a reference only while the count is non-zero (an OpenFile at
    // zero is on its way to the pool).
    int r = f->refs.load(std::memory_order_relaxed);
    bool took = false;
    while (r > 0) {
      if (f->refs.compare_exchange_weak(r, r + 1, std::memory_order_acquire)) {
        took = true;
        break;
      }
    }
    if (!took) continue;
    if (dispatch::fds().find(fd) == f) return FileRef(f);
    vfile::release(f);  // recycled for another fd meanwhile
  }
  return {};
}

FileRef FileRef::adopt(OpenFile* f) noexcept { return FileRef(f); }

FileRef& FileRef::operator=(FileRef&& o) noexcept {
  if (this != &o) {
    if (f_ != nullptr) vfile::release(f_);
    f_ = o.f_;
    o.f_ = nullptr;
  }
  return *this;
}

FileRef::~FileRef() {
  if (f_ != nullptr) vfile::release(f_);
}

namespace vfile {

OpenFile* make() noexcept {
  OpenFile* f = nullptr;
  {
    std::lock_guard<std::mutex> g(g_pool_mu);
    if (g_free != nullptr && !g_free->empty()) {
      f = g_free->back();
      g_free->pop_back();
    }
  }
  if (f == nullptr) {
    f = new (std::nothrow) OpenFile;
    if (f == nullptr) return nullptr;
  }
  f->node = Node{};
  f->status_flags = O_RDONLY;
  f->offset = 0;
  f->materialized.store(false, std::memory_order_relaxed);
  f->staged.reset();
  f->refs.store(1, std::memory_order_release);
  return f;
}

void release(OpenFile* f) noexcept {
  if (f->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  f->staged.reset();  // its last user: a StagedFile not committed keeps its bytes
  try {
    f->node = Node{};  // frees the strings now rather than at reuse
    std::lock_guard<std::mutex> g(g_pool_mu);
    if (g_free == nullptr) g_free = new std::vector<OpenFile*>;
    g_free->push_back(f);
  } catch (...) {
    // Out of memory: the OpenFile is leaked, never freed (see vfile.h).
  }
}

bool attach(int fd, OpenFile* f) noexcept {
  f->refs.fetch_add(1, std::memory_order_relaxed);
  if (f->staged) f->staged->fds.fetch_add(1, std::memory_order_acq_rel);
  if (dispatch::fds().insert(fd, f)) return true;
  if (f->staged) f->staged->fds.fetch_sub(1, std::memory_order_acq_rel);
  release(f);
  return false;
}

Detached detach(int fd) noexcept {
  Detached out;
  OpenFile* f = dispatch::fds().remove(fd);
  if (f == nullptr) return out;
  out.ours = true;
  if (f->staged && f->staged->fds.fetch_sub(1, std::memory_order_acq_rel) == 1) out.last = f->staged;
  release(f);
  return out;
}

bool attach_staged(int fd, std::shared_ptr<Staged> s, Node node, int status_flags) noexcept {
  OpenFile* f = make();
  if (f == nullptr) return false;
  f->node = std::move(node);
  f->status_flags = status_flags;
  f->staged = std::move(s);
  f->materialized.store(true, std::memory_order_relaxed);
  const bool ok = attach(fd, f);
  release(f);  // the table's reference remains (if attached)
  return ok;
}

int open_node(Node node, int flags) noexcept {
  const bool dir = node.is_dir();
  int fd = lib::placeholder_fd(dir, (flags & O_CLOEXEC) != 0);
  if (fd < 0) return -errno;
  OpenFile* f = make();
  if (f == nullptr) {
    ::close(fd);
    return -ENOMEM;
  }
  f->node = std::move(node);
  // O_PATH kept: such an fd only names the file (reads give EBADF).
  f->status_flags = flags & (O_ACCMODE | O_NONBLOCK | O_DIRECT | O_NOATIME | O_LARGEFILE | O_DIRECTORY | O_PATH);
  if (!attach(fd, f)) {
    release(f);
    ::close(fd);
    return -EMFILE;
  }
  release(f);  // the table's reference remains
  return fd;
}

int materialize(OpenFile* f) noexcept {
  std::lock_guard<std::mutex> g(f->mu);
  if (f->materialized.load(std::memory_order_relaxed)) return 0;
  if (f->node.is_dir()) return 0;  // placeholders of directories stay
  int ro = filled_memfd(f->node, f->offset);
  if (ro < 0) return -ro;
  int err = 0;
  dispatch::fds().for_each_in_range(0, ~0u, [&](int fd, OpenFile* o) {
    if (o == f) {
      int e = replace_fd(ro, fd);
      if (e != 0 && e != EBADF) err = e;
    }
    return true;
  });
  ::close(ro);
  if (err != 0) return err;
  f->materialized.store(true, std::memory_order_release);
  return 0;
}

void materialize_for_exec(bool spawn) noexcept {
  struct Item {
    int fd;
    OpenFile* file;
  };
  std::vector<Item> items;
  try {
    dispatch::fds().for_each_in_range(0, ~0u, [&](int fd, OpenFile* f) {
      items.push_back({fd, f});
      return true;
    });
    if (in_vfork_child()) {
      if (g_vfork_pid == raw_getpid()) {
        for (int i = 0; i < g_vfork_count; ++i) items.push_back({g_vfork_dups[i].fd, g_vfork_dups[i].file});
      }
      // The parent's OpenFiles stay as they are: only this child's fd
      // table is changed.
      for (const Item& it : items) {
        int fdflags = ::fcntl(it.fd, F_GETFD);
        if (fdflags < 0 || (fdflags & FD_CLOEXEC) != 0) continue;
        if (it.file->node.is_dir() || it.file->materialized.load(std::memory_order_acquire)) continue;
        int ro = filled_memfd(it.file->node, it.file->offset);
        if (ro < 0) continue;
        (void)replace_fd(ro, it.fd);
        ::close(ro);
      }
      return;
    }
    for (const Item& it : items) {
      if (!spawn) {
        int fdflags = ::fcntl(it.fd, F_GETFD);
        if (fdflags < 0 || (fdflags & FD_CLOEXEC) != 0) continue;
      }
      FileRef ref = FileRef::acquire(it.fd);
      if (ref) (void)materialize(ref.get());
    }
  } catch (...) {
  }
}

bool in_vfork_child() noexcept { return raw_getpid() != g_pid.load(std::memory_order_relaxed); }

void note_fork_child() noexcept { g_pid.store(raw_getpid(), std::memory_order_relaxed); }

void note_vfork_dup(int fd, OpenFile* f) noexcept {
  pid_t me = raw_getpid();
  if (g_vfork_pid != me) {
    g_vfork_pid = me;
    g_vfork_count = 0;
  }
  for (int i = 0; i < g_vfork_count; ++i) {
    if (g_vfork_dups[i].fd == fd) {
      g_vfork_dups[i].file = f;
      return;
    }
  }
  if (g_vfork_count < kMaxVforkDups) g_vfork_dups[g_vfork_count++] = {fd, f};
}

}  // namespace vfile
}  // namespace objcache::preload
