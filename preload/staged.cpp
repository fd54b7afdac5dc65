// SPDX-License-Identifier: Apache-2.0
#include "staged.h"

#include <pthread.h>
#include <stdio.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "errno_scope.h"
#include "guard.h"
#include "objcache/vfs.h"
#include "vfile.h"

namespace objcache::preload::staged {

constinit std::atomic<long> g_live{0};

namespace {

std::mutex g_mu;
// Guarded by g_mu; never freed (a thread may still look while the process
// exits).
std::vector<std::shared_ptr<Staged>>* g_files = nullptr;

// Bumped whenever another process may write through fds this one holds.
// relaxed: a hint compared before an upload; the spawn that bumps it is
// ordered before the uploads that matter by the program's own waiting for
// its child.
constinit std::atomic<std::uint64_t> g_spawns{0};

void fork_lock() { g_mu.lock(); }
void fork_unlock() { g_mu.unlock(); }
__attribute__((constructor)) void staged_init() { ::pthread_atfork(fork_lock, fork_unlock, fork_unlock); }

// Before an upload: writes another process may have made are checked.
void check_spawns(Staged& s) {
  const std::uint64_t now = g_spawns.load(std::memory_order_relaxed);
  if (s.seen_spawns.exchange(now, std::memory_order_relaxed) != now) {
    s.file->unseen_writes(StagedFile::Unseen::Buffered);
  }
  if (s.missed.exchange(false, std::memory_order_relaxed)) s.file->unseen_writes(StagedFile::Unseen::Anywhere);
}

// Marks s busy for the scope of an upload.
class Busy {
 public:
  explicit Busy(Staged& s) : s_(s) { s_.busy.store(true, std::memory_order_seq_cst); }
  ~Busy() { s_.busy.store(false, std::memory_order_seq_cst); }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  Staged& s_;
};

}  // namespace

std::shared_ptr<Staged> add(std::unique_ptr<StagedFile> file) noexcept {
  try {
    auto s = std::make_shared<Staged>();
    s->mount = file->mount();
    s->key = file->key();
    s->data_path = file->staged_path();
    s->seen_spawns.store(g_spawns.load(std::memory_order_relaxed), std::memory_order_relaxed);
    s->file = std::move(file);
    std::lock_guard<std::mutex> g(g_mu);
    if (g_files == nullptr) g_files = new std::vector<std::shared_ptr<Staged>>;
    g_files->push_back(s);
    g_live.fetch_add(1, std::memory_order_relaxed);
    return s;
  } catch (...) {
    if (file) {
      file->unlinked();
      (void)file->commit();
    }
    return nullptr;
  }
}

std::shared_ptr<Staged> find(int mount, const std::string& key) noexcept {
  std::lock_guard<std::mutex> g(g_mu);
  if (g_files == nullptr) return nullptr;
  for (const auto& s : *g_files) {
    if (s->mount == mount && !s->unlinked && !s->committed && s->key == key) return s;
  }
  return nullptr;
}

bool any_under(int mount, const std::string& prefix) noexcept {
  std::lock_guard<std::mutex> g(g_mu);
  if (g_files == nullptr) return false;
  return std::any_of(g_files->begin(), g_files->end(), [&](const auto& s) {
    return s->mount == mount && !s->unlinked && !s->committed && s->key.size() > prefix.size() &&
           s->key.compare(0, prefix.size(), prefix) == 0;
  });
}

std::vector<std::shared_ptr<Staged>> all() noexcept {
  std::lock_guard<std::mutex> g(g_mu);
  try {
    return g_files != nullptr ? *g_files : std::vector<std::shared_ptr<Staged>>{};
  } catch (...) {
    return {};
  }
}

std::string key_of(const Staged& s) noexcept {
  std::lock_guard<std::mutex> g(g_mu);
  try {
    return s.key;
  } catch (...) {
    return {};
  }
}

int rename(Staged& s, const std::string& to_key) noexcept {
  try {
    auto r = s.file->rename(s.mount, to_key);
    if (!r) return to_errno(r.status()) != 0 ? to_errno(r.status()) : EIO;
    std::lock_guard<std::mutex> g(g_mu);
    s.key = to_key;
    return 0;
  } catch (...) {
    return ENOMEM;
  }
}

void unlink(Staged& s) noexcept {
  s.file->unlinked();
  std::lock_guard<std::mutex> g(g_mu);
  s.unlinked = true;
}

void wrote(Staged& s, std::uint64_t offset, std::uint64_t len) noexcept {
  if (s.busy.load(std::memory_order_seq_cst)) {
    s.missed.store(true, std::memory_order_relaxed);
    return;
  }
  s.file->wrote(offset, len);
}

void unseen(Staged& s, StagedFile::Unseen how) noexcept {
  if (s.busy.load(std::memory_order_seq_cst)) {
    s.missed.store(true, std::memory_order_relaxed);
    return;
  }
  s.file->unseen_writes(how);
}

void write_failed(Staged& s, int err) noexcept {
  if (err == ENOSPC || err == EDQUOT || err == EFBIG || err == EIO) s.file->write_failed(err);
}

int upload_errno(const Error& e) noexcept {
  switch (e.status) {
    case Status::NoSpace: return ENOSPC;
    case Status::AccessDenied: return EACCES;
    default: return EIO;
  }
}

int sync(Staged& s) noexcept {
  if (!s.file->owned_here()) return 0;
  check_spawns(s);
  Busy busy(s);
  auto r = s.file->sync();
  return r ? 0 : upload_errno(r.error());
}

int commit(Staged& s) noexcept {
  if (!s.file->owned_here()) return 0;
  check_spawns(s);
  Busy busy(s);
  auto r = s.file->commit();
  if (!r) return upload_errno(r.error());
  std::lock_guard<std::mutex> g(g_mu);
  s.committed = true;
  return 0;
}

int closed(const std::shared_ptr<Staged>& s) noexcept {
  const int err = commit(*s);
  std::lock_guard<std::mutex> g(g_mu);
  if (g_files != nullptr) {
    auto it = std::find(g_files->begin(), g_files->end(), s);
    if (it != g_files->end()) {
      g_files->erase(it);
      g_live.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  return err;
}

Node node_of(const Staged& s) {
  Node n;
  n.kind = NodeKind::File;
  n.mount = s.mount;
  n.key = key_of(s);
  n.ino = Vfs::ino_of(n.mount, n.key);
  n.dev = Vfs::dev_of(n.mount);
  return n;
}

namespace {

// At exit (std::exit or a return from main): stdio's buffers into the
// staged files (exit flushes them only after the atexit handlers), then
// every staged file this process still has open is uploaded, so a program
// that never closes them still makes its objects.
void upload_at_exit() {
  ReentryGuard guard;
  ErrnoScope keep_errno;
  if (vfile::in_vfork_child()) return;
  (void)::fflush(nullptr);
  for (const auto& s : all()) (void)commit(*s);
}

}  // namespace

void ensure_exit_hook() noexcept {
  static std::atomic<bool> registered{false};
  if (registered.exchange(true, std::memory_order_relaxed)) return;
  try {
    Vfs::at_exit([] { upload_at_exit(); });
  } catch (...) {
    registered.store(false, std::memory_order_relaxed);
  }
}

void note_spawn() noexcept { g_spawns.fetch_add(1, std::memory_order_relaxed); }

}  // namespace objcache::preload::staged
