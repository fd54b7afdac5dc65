// SPDX-License-Identifier: Apache-2.0
#include "handover.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "dispatch.h"
#include "library.h"
#include "vfile.h"

namespace objcache::preload::handover {
namespace {

struct StagedFd {
  int fd;
  FileRef file;
};

bool survives_exec(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) == 0;
}

}  // namespace

std::string prepare_exec() noexcept {
  ReentryGuard guard;
  std::string out;
  try {
    std::vector<StagedFd> fds;
    dispatch::fds().for_each_in_range(0, ~0u, [&](int fd, OpenFile* f) {
      if (f->staged) {
        FileRef ref = FileRef::acquire(fd);
        if (ref && ref->staged && survives_exec(fd)) fds.push_back({fd, std::move(ref)});
      }
      return true;
    });
    std::vector<const OpenFile*> groups;
    for (const auto& s : staged::all()) {
      if (!s->file->owned_here()) continue;  // a forked child's copy: its parent commits
      bool kept = false;
      for (const StagedFd& e : fds) kept = kept || e.file->staged == s;
      const bool live = staged::find(s->mount, staged::key_of(*s)) == s;  // not unlinked, not committed
      if (!kept || !live || s->data_path.find('\n') != std::string::npos) {
        (void)staged::commit(*s);  // dies with this image (or unlinked, or done)
        continue;
      }
      (void)staged::sync(*s);
      for (const StagedFd& e : fds) {
        if (e.file->staged != s) continue;
        std::size_t g = 0;
        while (g < groups.size() && groups[g] != e.file.get()) ++g;
        if (g == groups.size()) groups.push_back(e.file.get());
        out += std::to_string(e.fd) + " " + std::to_string(g) + " " + s->data_path + "\n";
      }
    }
  } catch (...) {
    // Out of memory: what was not described is committed by nobody; its
    // bytes stay in the staging directory.
  }
  return out;
}

void resume() noexcept {
  const char* value = ::getenv(kVar);
  if (value == nullptr) return;
  ReentryGuard guard;
  ErrnoScope keep_errno;
  try {
    // path -> group -> fds
    std::map<std::string, std::map<int, std::vector<int>>> handed;
    const std::string text = value;
    ::unsetenv(kVar);  // the program's own children are not handed these
    for (std::size_t pos = 0; pos < text.size();) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      const auto a = line.find(' ');
      const auto b = a == std::string::npos ? a : line.find(' ', a + 1);
      if (b == std::string::npos) continue;
      handed[line.substr(b + 1)][std::atoi(line.substr(a + 1, b - a - 1).c_str())].push_back(
          std::atoi(line.substr(0, a).c_str()));
    }
    int err = 0;
    Vfs* v = lib::vfs(&err);
    if (v == nullptr) return;
    for (const auto& [path, groups] : handed) {
      auto made = v->resume_write(path, groups.begin()->second.front());
      if (!made) continue;  // its fds stay plain files; its bytes stay staged
      (void)(*made)->take_fd();
      auto s = staged::add(std::move(*made));
      if (s == nullptr) continue;
      for (const auto& [group, fds] : groups) {
        const int first = fds.front();
        const int flags = ::fcntl(first, F_GETFL);
        if (flags < 0) continue;
        if (!vfile::attach_staged(first, s, staged::node_of(*s), flags & (O_ACCMODE | O_APPEND))) continue;
        FileRef f = FileRef::acquire(first);
        for (std::size_t i = 1; i < fds.size() && f; ++i) (void)vfile::attach(fds[i], f.get());
      }
      staged::ensure_exit_hook();
    }
  } catch (...) {
  }
}

}  // namespace objcache::preload::handover
