// SPDX-License-Identifier: Apache-2.0
// Staged: an object this process is writing to a writable mount (the
// library's StagedFile) and what the shim keeps beside it; and the registry
// of them, which answers "is this path open for writing here?" (stat,
// unlink, rename) and lists them for fork, exec and exit. Must not: upload
// by itself (StagedFile does, when asked here), or be touched from a vfork
// child (which shares this memory with its parent).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "objcache/metadata.h"
#include "objcache/staged_file.h"

namespace objcache::preload {

struct Staged {
  std::unique_ptr<StagedFile> file;
  int mount = -1;
  std::string data_path;  // the staged bytes, for stat and for reopening
  // Every fd of this process that refers to it, over all its OpenFiles
  // (each open of the path is one; dups share them). The last one closed
  // commits. relaxed would do for the count itself; acq_rel so the closer
  // that sees 1 sees every write the others reported before their close.
  std::atomic<int> fds{0};
  // A commit or sync runs. A write that arrives meanwhile is not reported
  // (StagedFile holds its lock through the upload; a library thread whose
  // log goes to this very file would wait for it forever): it is noted in
  // `missed` and the next upload checks the whole file.
  std::atomic<bool> busy{false};
  std::atomic<bool> missed{false};
  // The spawn generation (staged::note_spawn) when this file last checked.
  std::atomic<std::uint64_t> seen_spawns{0};

  // Guarded by the registry's lock (staged.cpp).
  std::string key;         // the object's key now (a rename changes it)
  bool unlinked = false;   // its name is gone: lookups skip it
  bool committed = false;  // the object is in the bucket: lookups go there
};

namespace staged {

// Staged files registered in this process (0: every lookup skips the scan).
extern std::atomic<long> g_live;
inline bool any() noexcept { return g_live.load(std::memory_order_relaxed) != 0; }

// Registers a StagedFile just opened; nullptr when out of memory (the file
// is then dropped, its staged bytes removed).
std::shared_ptr<Staged> add(std::unique_ptr<StagedFile> file) noexcept;
// The staged file of (mount, key) that the name leads to (not unlinked,
// not committed yet), or nullptr.
std::shared_ptr<Staged> find(int mount, const std::string& key) noexcept;
// Whether a staged file lives under the directory prefix (ends with '/').
bool any_under(int mount, const std::string& prefix) noexcept;
// Every registered staged file.
std::vector<std::shared_ptr<Staged>> all() noexcept;
std::string key_of(const Staged& s) noexcept;

// The name changed: rename(to_key) done by the library, or unlinked.
int rename(Staged& s, const std::string& to_key) noexcept;  // 0 or an errno
void unlink(Staged& s) noexcept;

// A write through one of its fds: [offset, offset + len) was written.
void wrote(Staged& s, std::uint64_t offset, std::uint64_t len) noexcept;
// Writes the shim cannot see the range of.
void unseen(Staged& s, StagedFile::Unseen how) noexcept;
// A write failed with err; only a lack of space or an I/O error makes the
// file incomplete.
void write_failed(Staged& s, int err) noexcept;

// fsync: 0 or the errno of the upload.
int sync(Staged& s) noexcept;
// Uploads now (the last fd closed, exec, exit); 0 or an errno. Later
// commits of the same file do nothing.
int commit(Staged& s) noexcept;
// The last fd closed: commit, then unregister (either way).
int closed(const std::shared_ptr<Staged>& s) noexcept;

// Another process may now write through fds it inherited (fork,
// posix_spawn, an exec in a vfork child): every staged file open now
// checks what it streamed before its next upload. Safe in a vfork child.
void note_spawn() noexcept;

// The file as an OpenFile's node shows it (kind, mount, key, st_ino).
Node node_of(const Staged& s);

// Registers, once, the exit hook (Vfs::at_exit) that flushes stdio and
// commits every staged file still open. Called once a staged file exists,
// hence after its mount's store (libcurl, OpenSSL) is made, so that the hook
// runs before their own exit-time cleanups.
void ensure_exit_hook() noexcept;

// The errno a close or fsync reports for a failed upload (EIO, EACCES,
// ENOSPC: what close(2) and fsync(2) may say).
int upload_errno(const Error& e) noexcept;

}  // namespace staged
}  // namespace objcache::preload
