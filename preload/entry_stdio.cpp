// SPDX-License-Identifier: Apache-2.0
// Entry points: stdio streams. fopen's I/O runs inside libc through hidden
// aliases, so the stream is hooked where it is made and ended; in between it
// wraps a real fd (no fopencookie: libstdc++ calls fileno() on it).
#include "entry.h"

using namespace objcache::preload;

OBJCACHE_ENTRY FILE* fopen(const char* path, const char* mode) {
  if (pass_path(path)) return real::fn<Sym::fopen>()(path, mode);
  return dispatch::serve<Sym::fopen>(path, mode);
}

OBJCACHE_ENTRY FILE* fopen64(const char* path, const char* mode) {
  if (pass_path(path)) return real::fn<Sym::fopen64>()(path, mode);
  return dispatch::serve<Sym::fopen64>(path, mode);
}

// path may be NULL (change the mode of the same file); the old stream may be
// ours even when the new path is not.
OBJCACHE_ENTRY FILE* freopen(const char* path, const char* mode, FILE* stream) {
  if (pass_path(path) && pass_stream(stream)) return real::fn<Sym::freopen>()(path, mode, stream);
  return dispatch::serve<Sym::freopen>(path, mode, stream);
}

OBJCACHE_ENTRY FILE* freopen64(const char* path, const char* mode, FILE* stream) {
  if (pass_path(path) && pass_stream(stream)) return real::fn<Sym::freopen64>()(path, mode, stream);
  return dispatch::serve<Sym::freopen64>(path, mode, stream);
}

OBJCACHE_ENTRY FILE* fdopen(int fd, const char* mode) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fdopen>()(fd, mode);
  return dispatch::serve<Sym::fdopen>(fd, mode);
}

OBJCACHE_ENTRY int fclose(FILE* stream) {
  if (pass_stream(stream)) return real::fn<Sym::fclose>()(stream);
  return dispatch::serve<Sym::fclose>(stream);
}
