// SPDX-License-Identifier: Apache-2.0
// OpenFile: the shim's open file description for a virtual fd (what the
// kernel's struct file is for a real one): the node, the shared offset, and
// whether it has been materialised. dup'd fds point at the same OpenFile,
// so they share one offset the way the kernel's dups do.
//
// Lifetime: OpenFiles come from a pool and are never returned to the heap,
// so a thread that looked an fd up just as another closed it touches a
// recycled object, never freed memory; FileRef::acquire re-checks the fd
// table after taking its reference, so it only ever returns the OpenFile
// the fd maps to at that moment.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "objcache/vfs.h"
#include "staged.h"

namespace objcache::preload {

struct OpenFile {
  std::atomic<int> refs{0};  // fds in the table + operations in flight
  Node node;
  int status_flags = 0;      // O_RDONLY plus O_NONBLOCK, O_DIRECT... as opened (F_GETFL)
  // Guards offset and materialized; for a staged file, orders each write
  // with the lseek that finds where it went (so concurrent writers on one
  // fd report true ranges).
  std::mutex mu;
  std::uint64_t offset = 0;  // the shared file offset (until materialised)
  // Its fds are now real files (a sealed memfd with the object's bytes, or
  // a staged file) and reads, seeks and mappings go to the kernel. Written
  // under mu; read without it as a hint (acquire) on the hot path.
  std::atomic<bool> materialized{false};
  // Set when the fd is on a staged file (opened for writing on a writable
  // mount, or a path being written here opened again): its fds are real
  // from the start. Set before the OpenFile is published; cleared when it
  // goes back to the pool.
  std::shared_ptr<Staged> staged;
};

// A counted reference to the OpenFile an fd maps to.
class FileRef {
 public:
  FileRef() = default;
  static FileRef acquire(int fd) noexcept;
  // Takes over a reference the caller already holds.
  static FileRef adopt(OpenFile* f) noexcept;
  FileRef(FileRef&& o) noexcept : f_(o.f_) { o.f_ = nullptr; }
  FileRef& operator=(FileRef&& o) noexcept;
  FileRef(const FileRef&) = delete;
  FileRef& operator=(const FileRef&) = delete;
  ~FileRef();

  OpenFile* get() const { return f_; }
  OpenFile* operator->() const { return f_; }
  explicit operator bool() const { return f_ != nullptr; }

 private:
  explicit FileRef(OpenFile* f) : f_(f) {}
  OpenFile* f_ = nullptr;
};

namespace vfile {

// A fresh OpenFile with one reference (the caller's), or nullptr.
OpenFile* make() noexcept;
void release(OpenFile* f) noexcept;

// Registers fd -> f, taking a new reference. false if fd is taken.
bool attach(int fd, OpenFile* f) noexcept;

// What detach found. `last`: fd was the last fd of this process on a staged
// file, which the caller commits once the kernel fd is closed
// (staged::closed) and whose errno it reports.
struct [[nodiscard]] Detached {
  bool ours = false;
  std::shared_ptr<Staged> last;
};
// Unregisters fd and drops the table's reference.
Detached detach(int fd) noexcept;

// Registers a real fd on a staged file as a new OpenFile (node: the file
// as stat shows it). false (fd untouched) when out of memory.
bool attach_staged(int fd, std::shared_ptr<Staged> s, Node node, int status_flags) noexcept;

// Opens a virtual fd for node: a placeholder kernel fd (O_CLOEXEC if asked)
// registered to a new OpenFile. Returns the fd, or -errno.
int open_node(Node node, int flags) noexcept;

// Makes f's fds real: a memfd gets the object's bytes, is sealed, and every
// fd of f in this process is replaced by a read-only file on it, at f's
// offset. 0, or an errno (the fds are then unchanged).
int materialize(OpenFile* f) noexcept;

// Before exec: materialises every virtual fd a child would inherit (all of
// them when spawn is set: posix_spawn file actions may dup any). In a vfork
// child (which shares our memory but not our fd table) only the child's
// fds are replaced, and no OpenFile is changed.
void materialize_for_exec(bool spawn) noexcept;

// True in a vfork child (the pid differs from the one this process image
// knows, and no fork handler ran).
bool in_vfork_child() noexcept;
void note_fork_child() noexcept;

// Records, in a vfork child, that fd now refers to f (dup2 of a virtual fd
// onto a new number), so materialize_for_exec finds it.
void note_vfork_dup(int fd, OpenFile* f) noexcept;

}  // namespace vfile
}  // namespace objcache::preload
