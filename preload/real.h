// SPDX-License-Identifier: Apache-2.0
// The one table of the real libc functions the shim interposes, each resolved
// once per process with dlsym(RTLD_NEXT) (XRootD's XrdPosixLinkage). Must
// not: call a name the shim exports, allocate, or ever exit or abort: a
// symbol that cannot be found gets a stub that fails with ENOSYS.
#pragma once

// The project builds with -D_FILE_OFFSET_BITS=64, under which glibc's headers
// RENAME open to open64, stat to stat64, readdir to readdir64 (asm labels or
// macros), so `open` and `open64` could not both be declared, defined or
// resolved. preload/meson.build removes the macro for this folder; with
// _GNU_SOURCE (hence _LARGEFILE64_SOURCE) the headers then declare both
// spellings of every function, each with its own exact prototype.
#if defined(_FILE_OFFSET_BITS) && _FILE_OFFSET_BITS == 64
#error "preload/ must be compiled without _FILE_OFFSET_BITS=64 (see preload/meson.build)"
#endif
#if defined(_FORTIFY_SOURCE) && _FORTIFY_SOURCE > 0
#error "preload/ must be compiled without _FORTIFY_SOURCE: it defines read, open... itself"
#endif

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include <atomic>

// Symbols glibc exports that its headers no longer (or only under
// _FORTIFY_SOURCE) declare. Prototypes as glibc 2.36 defines them; the
// fortify forms are cancellation points and so not __THROW, like the plain
// ones.
extern "C" {
int __open_2(const char* path, int flags);
int __open64_2(const char* path, int flags);
int __openat_2(int dirfd, const char* path, int flags);
int __openat64_2(int dirfd, const char* path, int flags);
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen);
ssize_t __pread_chk(int fd, void* buf, size_t n, off_t offset, size_t buflen);
ssize_t __pread64_chk(int fd, void* buf, size_t n, off64_t offset, size_t buflen);
char* __realpath_chk(const char* path, char* resolved, size_t resolvedlen) __THROW;
ssize_t __readlink_chk(const char* path, char* buf, size_t len, size_t buflen) __THROW;
ssize_t __readlinkat_chk(int dirfd, const char* path, char* buf, size_t len,
                         size_t buflen) __THROW;
char* __getcwd_chk(char* buf, size_t size, size_t buflen) __THROW;
// The stat ABI before glibc 2.33, still called by binaries built against it
// (manylinux wheels). `ver` is _STAT_VER. glibc 2.33+ still exports them but
// no longer declares them.
int __xstat(int ver, const char* path, struct stat* buf) __THROW;
int __xstat64(int ver, const char* path, struct stat64* buf) __THROW;
int __lxstat(int ver, const char* path, struct stat* buf) __THROW;
int __lxstat64(int ver, const char* path, struct stat64* buf) __THROW;
int __fxstat(int ver, int fd, struct stat* buf) __THROW;
int __fxstat64(int ver, int fd, struct stat64* buf) __THROW;
int __fxstatat(int ver, int dirfd, const char* path, struct stat* buf, int flags) __THROW;
int __fxstatat64(int ver, int dirfd, const char* path, struct stat64* buf, int flags) __THROW;
}

namespace objcache::preload {

// What a function returns when it fails, hence what its stub returns.
enum class Fail {
  kMinusOne,     // -1 (EOF for fclose), errno set
  kNull,         // NULL, errno set
  kMapFailed,    // MAP_FAILED, errno set
  kZero,         // 0, errno set (isatty)
  kErrorNumber,  // the errno value itself, errno untouched (posix_spawn, posix_fadvise, readdir_r)
  kVoid,         // nothing to return; errno set
};

// Every real function the shim can call: X(name, fail). Each is interposed
// (has an entry point) except those named here, which the shim only calls
// (its fd table maps and unmaps its own chunks):
//   not interposed: munmap
// (munmap was interposed for nothing: a mapping of a materialised virtual
// fd is an ordinary kernel mapping.) The execl* family
// is not here: those entry points build an argv and call execv, execve or
// execvp, as glibc's own execl does.
#define OBJCACHE_PRELOAD_REAL_SYMBOLS(X)                                                      \
  /* open */                                                                                  \
  X(open, kMinusOne) X(open64, kMinusOne) X(openat, kMinusOne) X(openat64, kMinusOne)         \
  X(__open_2, kMinusOne) X(__open64_2, kMinusOne) X(__openat_2, kMinusOne)                    \
  X(__openat64_2, kMinusOne) X(creat, kMinusOne) X(creat64, kMinusOne)                        \
  /* stat */                                                                                  \
  X(stat, kMinusOne) X(stat64, kMinusOne) X(lstat, kMinusOne) X(lstat64, kMinusOne)           \
  X(fstat, kMinusOne) X(fstat64, kMinusOne) X(fstatat, kMinusOne) X(fstatat64, kMinusOne)     \
  X(statx, kMinusOne) X(__xstat, kMinusOne) X(__xstat64, kMinusOne) X(__lxstat, kMinusOne)    \
  X(__lxstat64, kMinusOne) X(__fxstat, kMinusOne) X(__fxstat64, kMinusOne)                    \
  X(__fxstatat, kMinusOne) X(__fxstatat64, kMinusOne)                                         \
  X(statfs, kMinusOne) X(statfs64, kMinusOne) X(fstatfs, kMinusOne) X(fstatfs64, kMinusOne)   \
  X(statvfs, kMinusOne) X(statvfs64, kMinusOne) X(fstatvfs, kMinusOne)                        \
  X(fstatvfs64, kMinusOne)                                                                    \
  /* dir */                                                                                   \
  X(opendir, kNull) X(fdopendir, kNull) X(readdir, kNull) X(readdir64, kNull)                 \
  X(readdir_r, kErrorNumber) X(readdir64_r, kErrorNumber) X(closedir, kMinusOne)              \
  X(dirfd, kMinusOne) X(rewinddir, kVoid) X(seekdir, kVoid) X(telldir, kMinusOne)             \
  X(scandir, kMinusOne) X(scandir64, kMinusOne) X(scandirat, kMinusOne)                       \
  X(scandirat64, kMinusOne)                                                                   \
  /* io */                                                                                    \
  X(read, kMinusOne) X(__read_chk, kMinusOne) X(pread, kMinusOne) X(pread64, kMinusOne)       \
  X(__pread_chk, kMinusOne) X(__pread64_chk, kMinusOne) X(readv, kMinusOne)                   \
  X(preadv, kMinusOne) X(preadv64, kMinusOne) X(preadv2, kMinusOne) X(preadv64v2, kMinusOne)  \
  X(lseek, kMinusOne) X(lseek64, kMinusOne) X(posix_fadvise, kErrorNumber)                    \
  X(posix_fadvise64, kErrorNumber) X(readahead, kMinusOne)                                    \
  /* fd */                                                                                    \
  X(close, kMinusOne) X(close_range, kMinusOne) X(closefrom, kVoid) X(dup, kMinusOne)         \
  X(dup2, kMinusOne) X(dup3, kMinusOne) X(fcntl, kMinusOne) X(fcntl64, kMinusOne)             \
  X(isatty, kZero)                                                                            \
  /* exec */                                                                                  \
  X(fork, kMinusOne) X(execve, kMinusOne) X(execv, kMinusOne) X(execvp, kMinusOne)            \
  X(execvpe, kMinusOne) X(fexecve, kMinusOne) X(posix_spawn, kErrorNumber)                    \
  X(posix_spawnp, kErrorNumber)                                                               \
  /* stdio */                                                                                 \
  X(fopen, kNull) X(fopen64, kNull) X(freopen, kNull) X(freopen64, kNull) X(fdopen, kNull)    \
  X(fclose, kMinusOne)                                                                        \
  /* mmap_copy */                                                                             \
  X(mmap, kMapFailed) X(mmap64, kMapFailed) X(munmap, kMinusOne) X(sendfile, kMinusOne)       \
  X(sendfile64, kMinusOne) X(copy_file_range, kMinusOne) X(splice, kMinusOne)                 \
  X(ioctl, kMinusOne)                                                                         \
  /* path_misc */                                                                             \
  X(access, kMinusOne) X(faccessat, kMinusOne) X(euidaccess, kMinusOne) X(eaccess, kMinusOne) \
  X(readlink, kMinusOne) X(readlinkat, kMinusOne) X(__readlink_chk, kMinusOne)                \
  X(__readlinkat_chk, kMinusOne) X(realpath, kNull) X(__realpath_chk, kNull)                  \
  X(canonicalize_file_name, kNull) X(getxattr, kMinusOne) X(lgetxattr, kMinusOne)             \
  X(fgetxattr, kMinusOne) X(listxattr, kMinusOne) X(llistxattr, kMinusOne)                    \
  X(flistxattr, kMinusOne) X(chdir, kMinusOne) X(fchdir, kMinusOne) X(getcwd, kNull)          \
  X(__getcwd_chk, kNull)                                                                      \
  /* write */                                                                                 \
  X(write, kMinusOne) X(pwrite, kMinusOne) X(pwrite64, kMinusOne) X(writev, kMinusOne)        \
  X(pwritev, kMinusOne) X(pwritev64, kMinusOne) X(pwritev2, kMinusOne)                        \
  X(pwritev64v2, kMinusOne) X(ftruncate, kMinusOne) X(ftruncate64, kMinusOne)                 \
  X(fsync, kMinusOne) X(fdatasync, kMinusOne) X(fallocate, kMinusOne)                         \
  X(fallocate64, kMinusOne) X(posix_fallocate, kErrorNumber)                                  \
  X(posix_fallocate64, kErrorNumber)                                                          \
  /* change: names, attributes */                                                             \
  X(truncate, kMinusOne) X(truncate64, kMinusOne) X(unlink, kMinusOne) X(unlinkat, kMinusOne) \
  X(mkdir, kMinusOne) X(mkdirat, kMinusOne) X(rmdir, kMinusOne) X(rename, kMinusOne)          \
  X(renameat, kMinusOne) X(renameat2, kMinusOne) X(link, kMinusOne) X(linkat, kMinusOne)      \
  X(symlink, kMinusOne) X(symlinkat, kMinusOne) X(utimensat, kMinusOne)                       \
  X(futimens, kMinusOne) X(utimes, kMinusOne) X(utime, kMinusOne) X(lutimes, kMinusOne)       \
  X(futimes, kMinusOne) X(chmod, kMinusOne) X(fchmod, kMinusOne) X(fchmodat, kMinusOne)       \
  X(chown, kMinusOne) X(lchown, kMinusOne) X(fchown, kMinusOne) X(fchownat, kMinusOne)        \
  X(setxattr, kMinusOne) X(lsetxattr, kMinusOne) X(fsetxattr, kMinusOne)                      \
  X(removexattr, kMinusOne) X(lremovexattr, kMinusOne) X(fremovexattr, kMinusOne)

enum class Sym : unsigned {
#define OBJCACHE_PRELOAD_ENUM(name, fail) name,
  OBJCACHE_PRELOAD_REAL_SYMBOLS(OBJCACHE_PRELOAD_ENUM)
#undef OBJCACHE_PRELOAD_ENUM
};

#define OBJCACHE_PRELOAD_COUNT(name, fail) +1
inline constexpr unsigned kSymCount = 0 OBJCACHE_PRELOAD_REAL_SYMBOLS(OBJCACHE_PRELOAD_COUNT);
#undef OBJCACHE_PRELOAD_COUNT

// SymInfo<S>::Fn is the pointer type of the function exactly as glibc's
// header (or the block above) declares it, including noexcept (__THROW) and
// C varargs; kFail says how it fails.
template <Sym S>
struct SymInfo;

// readdir_r and readdir64_r are declared deprecated; naming them in decltype
// is not a use we can avoid.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#define OBJCACHE_PRELOAD_INFO(name, fail)          \
  template <>                                      \
  struct SymInfo<Sym::name> {                      \
    using Fn = decltype(&::name);                  \
    static constexpr Fail kFail = Fail::fail;      \
  };
OBJCACHE_PRELOAD_REAL_SYMBOLS(OBJCACHE_PRELOAD_INFO)
#undef OBJCACHE_PRELOAD_INFO
#pragma GCC diagnostic pop

// The return type of a function pointer type, whatever its noexcept and
// varargs.
template <typename F>
struct FnReturn;
template <typename R, bool kNoexcept, typename... A>
struct FnReturn<R (*)(A...) noexcept(kNoexcept)> {
  using type = R;
};
template <typename R, bool kNoexcept, typename... A>
struct FnReturn<R (*)(A..., ...) noexcept(kNoexcept)> {
  using type = R;
};
template <Sym S>
using Ret = typename FnReturn<typename SymInfo<S>::Fn>::type;

namespace real {

// One slot per symbol: null until resolved, then the real function or its
// stub, never changed again. Zero-initialised static storage, so the table
// is valid before any constructor runs. The engine uses the shim's table
// (engine_link.h), through a pointer its init sets.
#ifndef OBJCACHE_PRELOAD_ENGINE
extern std::atomic<void*> g_slots[kSymCount];
#else
extern std::atomic<void*>* g_slots;
#endif

// The slow path of fn(), for a call that comes before init(): resolves `s`
// alone (see real.cpp for the re-entry and threading rules).
void* resolve_slow(Sym s) noexcept;

// Resolves every symbol; the first call does the work and later ones return
// at once. Called from the library constructor.
void init() noexcept;

// The symbol's name, for logs.
const char* name(Sym s) noexcept;

// The real function for S. Hot path: one load and a predictable branch.
template <Sym S>
inline typename SymInfo<S>::Fn fn() noexcept {
  // relaxed: the pointer is the only datum published, the code it points to
  // never changes, and every value a slot ever holds is a valid function of
  // the slot's type, so no ordering with other memory is needed.
  void* p = g_slots[static_cast<unsigned>(S)].load(std::memory_order_relaxed);
  if (__builtin_expect(p == nullptr, 0)) p = resolve_slow(S);
  return reinterpret_cast<typename SymInfo<S>::Fn>(p);
}

}  // namespace real
}  // namespace objcache::preload
