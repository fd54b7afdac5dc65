// SPDX-License-Identifier: Apache-2.0
// The library plugs in here: one Handler<S> specialisation per symbol the
// shim serves for paths, fds and DIR streams that are ours (see
// dispatch::Handler for the contract). Defined in serve_path.cpp,
// serve_fd.cpp, serve_dir.cpp, serve_write.cpp and serve_change.cpp; every
// symbol of real.h is served.
#pragma once

#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <utime.h>

#include "dispatch.h"
#include "varargs.h"
#ifndef OBJCACHE_PRELOAD_ENGINE
#include "engine_loader.h"
#endif

namespace objcache::preload::dispatch {

// In the engine: the declaration of the handler serve_*.cpp defines. In the
// shim: a forwarder to the engine's, through a pointer of exactly its type
// (Fn), so the arguments convert as they would in a direct call.
#ifdef OBJCACHE_PRELOAD_ENGINE
#define OBJCACHE_HANDLER(sym, ...)                                       \
  template <>                                                            \
  struct Handler<Sym::sym> {                                             \
    using Fn = Outcome<Ret<Sym::sym>> (*)(__VA_ARGS__) noexcept;         \
    static Outcome<Ret<Sym::sym>> call(__VA_ARGS__) noexcept;            \
  };
#else
#define OBJCACHE_HANDLER(sym, ...)                                       \
  template <>                                                            \
  struct Handler<Sym::sym> {                                             \
    using Fn = Outcome<Ret<Sym::sym>> (*)(__VA_ARGS__) noexcept;         \
    template <typename... A>                                             \
    static Outcome<Ret<Sym::sym>> call(A... args) noexcept {             \
      return forward<Sym::sym, Fn>(args...);                             \
    }                                                                    \
  };
#endif

using Selector = int (*)(const struct dirent*);
using Compare = int (*)(const struct dirent**, const struct dirent**);
using Selector64 = int (*)(const struct dirent64*);
using Compare64 = int (*)(const struct dirent64**, const struct dirent64**);

// open
OBJCACHE_HANDLER(open, int, const char*, int, mode_t)
OBJCACHE_HANDLER(open64, int, const char*, int, mode_t)
OBJCACHE_HANDLER(openat, int, const char*, int, mode_t)
OBJCACHE_HANDLER(openat64, int, const char*, int, mode_t)
OBJCACHE_HANDLER(__open_2, int, const char*, int)
OBJCACHE_HANDLER(__open64_2, int, const char*, int)
OBJCACHE_HANDLER(__openat_2, int, const char*, int)
OBJCACHE_HANDLER(__openat64_2, int, const char*, int)
OBJCACHE_HANDLER(creat, const char*, mode_t)
OBJCACHE_HANDLER(creat64, const char*, mode_t)
// stat
OBJCACHE_HANDLER(stat, const char*, struct stat*)
OBJCACHE_HANDLER(stat64, const char*, struct stat64*)
OBJCACHE_HANDLER(lstat, const char*, struct stat*)
OBJCACHE_HANDLER(lstat64, const char*, struct stat64*)
OBJCACHE_HANDLER(fstat, int, struct stat*)
OBJCACHE_HANDLER(fstat64, int, struct stat64*)
OBJCACHE_HANDLER(fstatat, int, const char*, struct stat*, int)
OBJCACHE_HANDLER(fstatat64, int, const char*, struct stat64*, int)
OBJCACHE_HANDLER(statx, int, const char*, int, unsigned int, struct statx*)
OBJCACHE_HANDLER(__xstat, int, const char*, struct stat*)
OBJCACHE_HANDLER(__xstat64, int, const char*, struct stat64*)
OBJCACHE_HANDLER(__lxstat, int, const char*, struct stat*)
OBJCACHE_HANDLER(__lxstat64, int, const char*, struct stat64*)
OBJCACHE_HANDLER(__fxstat, int, int, struct stat*)
OBJCACHE_HANDLER(__fxstat64, int, int, struct stat64*)
OBJCACHE_HANDLER(__fxstatat, int, int, const char*, struct stat*, int)
OBJCACHE_HANDLER(__fxstatat64, int, int, const char*, struct stat64*, int)
OBJCACHE_HANDLER(statfs, const char*, struct statfs*)
OBJCACHE_HANDLER(statfs64, const char*, struct statfs64*)
OBJCACHE_HANDLER(fstatfs, int, struct statfs*)
OBJCACHE_HANDLER(fstatfs64, int, struct statfs64*)
OBJCACHE_HANDLER(statvfs, const char*, struct statvfs*)
OBJCACHE_HANDLER(statvfs64, const char*, struct statvfs64*)
OBJCACHE_HANDLER(fstatvfs, int, struct statvfs*)
OBJCACHE_HANDLER(fstatvfs64, int, struct statvfs64*)
// dir
OBJCACHE_HANDLER(opendir, const char*)
OBJCACHE_HANDLER(fdopendir, int)
OBJCACHE_HANDLER(readdir, DIR*)
OBJCACHE_HANDLER(readdir64, DIR*)
OBJCACHE_HANDLER(readdir_r, DIR*, struct dirent*, struct dirent**)
OBJCACHE_HANDLER(readdir64_r, DIR*, struct dirent64*, struct dirent64**)
OBJCACHE_HANDLER(closedir, DIR*)
OBJCACHE_HANDLER(dirfd, DIR*)
OBJCACHE_HANDLER(rewinddir, DIR*)
OBJCACHE_HANDLER(seekdir, DIR*, long)
OBJCACHE_HANDLER(telldir, DIR*)
OBJCACHE_HANDLER(scandir, const char*, struct dirent***, Selector, Compare)
OBJCACHE_HANDLER(scandir64, const char*, struct dirent64***, Selector64, Compare64)
OBJCACHE_HANDLER(scandirat, int, const char*, struct dirent***, Selector, Compare)
OBJCACHE_HANDLER(scandirat64, int, const char*, struct dirent64***, Selector64, Compare64)
// io
OBJCACHE_HANDLER(read, int, void*, size_t)
OBJCACHE_HANDLER(__read_chk, int, void*, size_t, size_t)
OBJCACHE_HANDLER(pread, int, void*, size_t, off_t)
OBJCACHE_HANDLER(pread64, int, void*, size_t, off64_t)
OBJCACHE_HANDLER(__pread_chk, int, void*, size_t, off_t, size_t)
OBJCACHE_HANDLER(__pread64_chk, int, void*, size_t, off64_t, size_t)
OBJCACHE_HANDLER(readv, int, const struct iovec*, int)
OBJCACHE_HANDLER(preadv, int, const struct iovec*, int, off_t)
OBJCACHE_HANDLER(preadv64, int, const struct iovec*, int, off64_t)
OBJCACHE_HANDLER(preadv2, int, const struct iovec*, int, off_t, int)
OBJCACHE_HANDLER(preadv64v2, int, const struct iovec*, int, off64_t, int)
OBJCACHE_HANDLER(lseek, int, off_t, int)
OBJCACHE_HANDLER(lseek64, int, off64_t, int)
OBJCACHE_HANDLER(posix_fadvise, int, off_t, off_t, int)
OBJCACHE_HANDLER(posix_fadvise64, int, off64_t, off64_t, int)
OBJCACHE_HANDLER(readahead, int, off64_t, size_t)
// fd
OBJCACHE_HANDLER(close, int)
OBJCACHE_HANDLER(close_range, unsigned int, unsigned int, int)
OBJCACHE_HANDLER(closefrom, int)
OBJCACHE_HANDLER(dup, int)
OBJCACHE_HANDLER(dup2, int, int)
OBJCACHE_HANDLER(dup3, int, int, int)
OBJCACHE_HANDLER(fcntl, int, int, FcntlArg)
OBJCACHE_HANDLER(fcntl64, int, int, FcntlArg)
OBJCACHE_HANDLER(isatty, int)
// exec
OBJCACHE_HANDLER(fork)
OBJCACHE_HANDLER(execve, const char*, char* const*, char* const*)
OBJCACHE_HANDLER(execv, const char*, char* const*)
OBJCACHE_HANDLER(execvp, const char*, char* const*)
OBJCACHE_HANDLER(execvpe, const char*, char* const*, char* const*)
OBJCACHE_HANDLER(fexecve, int, char* const*, char* const*)
OBJCACHE_HANDLER(posix_spawn, pid_t*, const char*, const posix_spawn_file_actions_t*,
                 const posix_spawnattr_t*, char* const*, char* const*)
OBJCACHE_HANDLER(posix_spawnp, pid_t*, const char*, const posix_spawn_file_actions_t*,
                 const posix_spawnattr_t*, char* const*, char* const*)
// stdio
OBJCACHE_HANDLER(fopen, const char*, const char*)
OBJCACHE_HANDLER(fopen64, const char*, const char*)
OBJCACHE_HANDLER(freopen, const char*, const char*, FILE*)
OBJCACHE_HANDLER(freopen64, const char*, const char*, FILE*)
OBJCACHE_HANDLER(fdopen, int, const char*)
OBJCACHE_HANDLER(fclose, FILE*)
// mmap and in-kernel copies
OBJCACHE_HANDLER(mmap, void*, size_t, int, int, int, off_t)
OBJCACHE_HANDLER(mmap64, void*, size_t, int, int, int, off64_t)
OBJCACHE_HANDLER(sendfile, int, int, off_t*, size_t)
OBJCACHE_HANDLER(sendfile64, int, int, off64_t*, size_t)
OBJCACHE_HANDLER(copy_file_range, int, off64_t*, int, off64_t*, size_t, unsigned int)
OBJCACHE_HANDLER(splice, int, off64_t*, int, off64_t*, size_t, unsigned int)
OBJCACHE_HANDLER(ioctl, int, unsigned long, void*)
// paths: access, links, xattrs, cwd
OBJCACHE_HANDLER(access, const char*, int)
OBJCACHE_HANDLER(faccessat, int, const char*, int, int)
OBJCACHE_HANDLER(euidaccess, const char*, int)
OBJCACHE_HANDLER(eaccess, const char*, int)
OBJCACHE_HANDLER(readlink, const char*, char*, size_t)
OBJCACHE_HANDLER(readlinkat, int, const char*, char*, size_t)
OBJCACHE_HANDLER(__readlink_chk, const char*, char*, size_t, size_t)
OBJCACHE_HANDLER(__readlinkat_chk, int, const char*, char*, size_t, size_t)
OBJCACHE_HANDLER(realpath, const char*, char*)
OBJCACHE_HANDLER(__realpath_chk, const char*, char*, size_t)
OBJCACHE_HANDLER(canonicalize_file_name, const char*)
OBJCACHE_HANDLER(getxattr, const char*, const char*, void*, size_t)
OBJCACHE_HANDLER(lgetxattr, const char*, const char*, void*, size_t)
OBJCACHE_HANDLER(fgetxattr, int, const char*, void*, size_t)
OBJCACHE_HANDLER(listxattr, const char*, char*, size_t)
OBJCACHE_HANDLER(llistxattr, const char*, char*, size_t)
OBJCACHE_HANDLER(flistxattr, int, char*, size_t)
OBJCACHE_HANDLER(chdir, const char*)
OBJCACHE_HANDLER(fchdir, int)
OBJCACHE_HANDLER(getcwd, char*, size_t)
OBJCACHE_HANDLER(__getcwd_chk, char*, size_t, size_t)
// write: the fd calls (serve_write.cpp)
OBJCACHE_HANDLER(write, int, const void*, size_t)
OBJCACHE_HANDLER(pwrite, int, const void*, size_t, off_t)
OBJCACHE_HANDLER(pwrite64, int, const void*, size_t, off64_t)
OBJCACHE_HANDLER(writev, int, const struct iovec*, int)
OBJCACHE_HANDLER(pwritev, int, const struct iovec*, int, off_t)
OBJCACHE_HANDLER(pwritev64, int, const struct iovec*, int, off64_t)
OBJCACHE_HANDLER(pwritev2, int, const struct iovec*, int, off_t, int)
OBJCACHE_HANDLER(pwritev64v2, int, const struct iovec*, int, off64_t, int)
OBJCACHE_HANDLER(ftruncate, int, off_t)
OBJCACHE_HANDLER(ftruncate64, int, off64_t)
OBJCACHE_HANDLER(fsync, int)
OBJCACHE_HANDLER(fdatasync, int)
OBJCACHE_HANDLER(fallocate, int, int, off_t, off_t)
OBJCACHE_HANDLER(fallocate64, int, int, off64_t, off64_t)
OBJCACHE_HANDLER(posix_fallocate, int, off_t, off_t)
OBJCACHE_HANDLER(posix_fallocate64, int, off64_t, off64_t)
// change: names and attributes (serve_change.cpp)
OBJCACHE_HANDLER(truncate, const char*, off_t)
OBJCACHE_HANDLER(truncate64, const char*, off64_t)
OBJCACHE_HANDLER(unlink, const char*)
OBJCACHE_HANDLER(unlinkat, int, const char*, int)
OBJCACHE_HANDLER(mkdir, const char*, mode_t)
OBJCACHE_HANDLER(mkdirat, int, const char*, mode_t)
OBJCACHE_HANDLER(rmdir, const char*)
OBJCACHE_HANDLER(rename, const char*, const char*)
OBJCACHE_HANDLER(renameat, int, const char*, int, const char*)
OBJCACHE_HANDLER(renameat2, int, const char*, int, const char*, unsigned int)
OBJCACHE_HANDLER(link, const char*, const char*)
OBJCACHE_HANDLER(linkat, int, const char*, int, const char*, int)
OBJCACHE_HANDLER(symlink, const char*, const char*)
OBJCACHE_HANDLER(symlinkat, const char*, int, const char*)
OBJCACHE_HANDLER(utimensat, int, const char*, const struct timespec*, int)
OBJCACHE_HANDLER(futimens, int, const struct timespec*)
OBJCACHE_HANDLER(utimes, const char*, const struct timeval*)
OBJCACHE_HANDLER(utime, const char*, const struct utimbuf*)
OBJCACHE_HANDLER(lutimes, const char*, const struct timeval*)
OBJCACHE_HANDLER(futimes, int, const struct timeval*)
OBJCACHE_HANDLER(chmod, const char*, mode_t)
OBJCACHE_HANDLER(fchmod, int, mode_t)
OBJCACHE_HANDLER(fchmodat, int, const char*, mode_t, int)
OBJCACHE_HANDLER(chown, const char*, uid_t, gid_t)
OBJCACHE_HANDLER(lchown, const char*, uid_t, gid_t)
OBJCACHE_HANDLER(fchown, int, uid_t, gid_t)
OBJCACHE_HANDLER(fchownat, int, const char*, uid_t, gid_t, int)
OBJCACHE_HANDLER(setxattr, const char*, const char*, const void*, size_t, int)
OBJCACHE_HANDLER(lsetxattr, const char*, const char*, const void*, size_t, int)
OBJCACHE_HANDLER(fsetxattr, int, const char*, const void*, size_t, int)
OBJCACHE_HANDLER(removexattr, const char*, const char*)
OBJCACHE_HANDLER(lremovexattr, const char*, const char*)
OBJCACHE_HANDLER(fremovexattr, int, const char*)

#undef OBJCACHE_HANDLER

// For the definitions: the signature of Handler<S>::call.
#define OBJCACHE_SERVE(sym, ...) \
  Outcome<Ret<Sym::sym>> Handler<Sym::sym>::call(__VA_ARGS__) noexcept

}  // namespace objcache::preload::dispatch
