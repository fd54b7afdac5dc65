// SPDX-License-Identifier: Apache-2.0
// Dispatch state and the slow halves of the ownership tests. With no library
// wired in yet nothing is ever ours: these are the seams a later issue fills
// (mount table lookup, shim-owned DIR and mapping registries).
#include "dispatch.h"

namespace objcache::preload::dispatch {

constinit std::atomic<bool> g_mounts_active{false};
constinit FdTable g_fds;
constinit std::atomic<long> g_dirs_live{0};
constinit std::atomic<long> g_maps_live{0};

bool path_is_ours_slow(const char* /*path*/) noexcept { return false; }

bool dir_is_ours_slow(const DIR* /*dir*/) noexcept { return false; }

bool stream_is_ours_slow(FILE* stream) noexcept {
  // fileno sets errno (EBADF) for streams without an fd (fmemopen, cookies).
  ErrnoScope keep_errno;
  return fd_is_ours(fileno(stream));
}

bool mapping_is_ours_slow(const void* /*addr*/, size_t /*len*/) noexcept { return false; }

bool cwd_is_ours_slow() noexcept { return false; }

}  // namespace objcache::preload::dispatch
