// SPDX-License-Identifier: Apache-2.0
// Serving stdio streams under a mount: fopen opens the path as open(2)
// would (a virtual fd, materialised, to read; a staged file to write) and
// wraps it with the real fdopen; fclose ends it, committing a staged file
// after stdio's buffer is flushed into it. stdio writes inside libc, where
// no hook sees them: a stream on a staged file marks it so that the commit
// checks what was streamed against the file.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "serve_common.h"

namespace objcache::preload::serve {
namespace {

using dispatch::Outcome;

// open(2)'s flags for an fopen mode ("r", "w+", "ab", "wx", "re"...), as
// glibc reads it; -1 for a mode it refuses (EINVAL).
int mode_flags(const char* mode) noexcept {
  if (mode == nullptr) return -1;
  int acc = 0;
  int flags = 0;
  switch (mode[0]) {
    case 'r': acc = O_RDONLY; break;
    case 'w': acc = O_WRONLY; flags = O_CREAT | O_TRUNC; break;
    case 'a': acc = O_WRONLY; flags = O_CREAT | O_APPEND; break;
    default: return -1;
  }
  for (const char* p = mode + 1; *p != '\0' && *p != ','; ++p) {
    if (*p == '+') acc = O_RDWR;
    if (*p == 'x') flags |= O_EXCL;
    if (*p == 'e') flags |= O_CLOEXEC;
  }
  return acc | flags;
}

// A stream is about to write into fd's staged file from inside libc (if
// the fd may write).
void note_stream(int fd) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (f && f->staged && (f->status_flags & O_ACCMODE) != O_RDONLY) {
    staged::unseen(*f->staged, StagedFile::Unseen::Buffered);
  }
}

// An fd of ours (just opened, or given) as a real file a stream can wrap.
int prepare(int fd) noexcept {
  if (int e = make_real(fd); e != 0) return e;
  note_stream(fd);
  return 0;
}

Outcome<FILE*> do_fopen(const char* path, const char* mode) noexcept {
  const int flags = mode_flags(mode);
  if (flags < 0) return fail<FILE*>(EINVAL);
  auto opened = open_at(AT_FDCWD, path, flags);
  if (opened.error != 0) return fail<FILE*>(opened.error);
  const int fd = opened.value;
  if (int e = prepare(fd); e != 0) {
    (void)close_fd(fd);
    return fail<FILE*>(e);
  }
  FILE* s = ::fdopen(fd, mode);
  if (s == nullptr) {
    const int e = errno;
    (void)close_fd(fd);
    return fail<FILE*>(e);
  }
  return ok(s);
}

Outcome<FILE*> do_fdopen(int fd, const char* mode) noexcept {
  if (int e = prepare(fd); e != 0) return fail<FILE*>(e);
  FILE* s = ::fdopen(fd, mode);
  return s != nullptr ? ok(s) : fail<FILE*>(errno);
}

// The real fclose first: it flushes stdio's buffer into the file; then the
// commit, whose error is fclose's.
Outcome<int> do_fclose(FILE* stream) noexcept {
  const int fd = ::fileno(stream);
  vfile::Detached d;
  if (fd >= 0 && !vfile::in_vfork_child()) d = vfile::detach(fd);
  const int r = ::fclose(stream);
  const int e = errno;
  if (int ce = commit_closed(d); ce != 0) return fail<int>(ce);
  return r == 0 ? ok(0) : fail<int>(e);
}

// freopen keeps the stream (and glibc keeps its fd number: freopen of
// stdout stays fd 1). A path of ours is opened as fopen would, then the
// stream reopens it through /proc/self/fd, and the fd it ends on joins
// that open file.
Outcome<FILE*> reopen_ours(const char* path, const char* mode, FILE* stream, vfile::Detached* old) noexcept {
  const int flags = mode_flags(mode);
  if (flags < 0) return fail<FILE*>(EINVAL);
  auto opened = open_at(AT_FDCWD, path, flags);
  if (opened.error != 0) return fail<FILE*>(opened.error);
  const int fd = opened.value;
  if (int e = prepare(fd); e != 0) {
    (void)close_fd(fd);
    return fail<FILE*>(e);
  }
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  // 'x' was honoured by the open; the reopen names a file that exists.
  char m[16];
  std::size_t k = 0;
  for (const char* p = mode; *p != '\0' && k + 1 < sizeof m; ++p) {
    if (*p != 'x') m[k++] = *p;
  }
  m[k] = '\0';
  const int old_fd = stream != nullptr ? ::fileno(stream) : -1;
  if (old_fd >= 0 && !vfile::in_vfork_child()) *old = vfile::detach(old_fd);
  FILE* s = stream != nullptr ? ::freopen(proc, m, stream) : ::fopen(proc, m);
  if (s == nullptr) {
    const int e = errno;
    (void)close_fd(fd);
    return fail<FILE*>(e);
  }
  if (FileRef f = FileRef::acquire(fd); f) (void)vfile::attach(::fileno(s), f.get());
  (void)close_fd(fd);
  return ok(s);
}

Outcome<FILE*> do_freopen(const char* path, const char* mode, FILE* stream) noexcept {
  const int old_fd = stream != nullptr ? ::fileno(stream) : -1;
  const bool old_ours = old_fd >= 0 && dispatch::fd_is_ours(old_fd);
  vfile::Detached old;
  Outcome<FILE*> out{nullptr, 0};
  if (path == nullptr) {
    // The same file in another mode: glibc reopens /proc/self/fd/N, which
    // works on a staged file (real) and not on a placeholder.
    FileRef f = FileRef::acquire(old_fd);
    if (!f || !f->staged) return fail<FILE*>(EBADF);
    note_stream(old_fd);
    FILE* s = ::freopen(nullptr, mode, stream);
    return s != nullptr ? ok(s) : fail<FILE*>(errno);
  }
  if (dispatch::path_is_ours(path)) {
    out = reopen_ours(path, mode, stream, &old);
  } else {
    if (old_ours && !vfile::in_vfork_child()) old = vfile::detach(old_fd);
    FILE* s = ::freopen(path, mode, stream);
    out = s != nullptr ? ok(s) : fail<FILE*>(errno);
  }
  // freopen reports nothing of closing the old file (glibc ignores it): a
  // failed commit is logged and its bytes kept in the staging directory.
  (void)commit_closed(old);
  return out;
}

}  // namespace
}  // namespace objcache::preload::serve

namespace objcache::preload::dispatch {

using namespace serve;

OBJCACHE_SERVE(fopen, const char* p, const char* m) { return do_fopen(p, m); }
OBJCACHE_SERVE(fopen64, const char* p, const char* m) { return do_fopen(p, m); }
OBJCACHE_SERVE(freopen, const char* p, const char* m, FILE* s) { return do_freopen(p, m, s); }
OBJCACHE_SERVE(freopen64, const char* p, const char* m, FILE* s) { return do_freopen(p, m, s); }
OBJCACHE_SERVE(fdopen, int fd, const char* m) { return do_fdopen(fd, m); }
OBJCACHE_SERVE(fclose, FILE* s) { return do_fclose(s); }

}  // namespace objcache::preload::dispatch
