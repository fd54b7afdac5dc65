// SPDX-License-Identifier: Apache-2.0
// Reading the optional arguments of the variadic entry points (open, openat,
// fcntl) exactly as glibc does, so a pass-through call forwards what the
// caller passed and nothing it did not. Must not read an argument the caller
// is not required to pass.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstdarg>

namespace objcache::preload {

// open/openat take a mode only with O_CREAT or O_TMPFILE (O_TMPFILE includes
// O_DIRECTORY, hence the == test; glibc's __OPEN_NEEDS_MODE).
constexpr bool open_needs_mode(int flags) noexcept {
  return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

struct ModeArg {
  bool present = false;
  mode_t mode = 0;
};

// Declares `out` (a ModeArg) from the argument after `flags`, the last named
// parameter of the enclosing variadic function. A macro because va_start must
// run in the variadic function itself.
#define OBJCACHE_PRELOAD_READ_MODE(flags, out)                          \
  ::objcache::preload::ModeArg out;                                     \
  if (::objcache::preload::open_needs_mode(flags)) {                    \
    va_list objcache_ap_;                                               \
    va_start(objcache_ap_, flags);                                      \
    out.present = true;                                                 \
    out.mode = static_cast<mode_t>(va_arg(objcache_ap_, unsigned int)); \
    va_end(objcache_ap_);                                               \
  }

// Calls an open-like function with the mode only if the caller gave one.
template <typename F, typename... A>
auto call_with_mode(F f, const ModeArg& m, A... args) {
  return m.present ? f(args..., m.mode) : f(args...);
}

// What fcntl's third argument is, by command (fcntl(2)).
enum class FcntlArgKind { kNone, kInt, kPointer };

constexpr FcntlArgKind fcntl_arg_kind(int cmd) noexcept {
  switch (cmd) {
    case F_GETFD:
    case F_GETFL:
    case F_GETOWN:
    case F_GETSIG:
    case F_GETLEASE:
    case F_GETPIPE_SZ:
    case F_GET_SEALS:
      return FcntlArgKind::kNone;
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
    case F_SETFD:
    case F_SETFL:
    case F_SETOWN:
    case F_SETSIG:
    case F_SETLEASE:
    case F_NOTIFY:
    case F_SETPIPE_SZ:
    case F_ADD_SEALS:
      return FcntlArgKind::kInt;
    default:
      // Locks (struct flock*, also the 64-bit forms on 32-bit targets),
      // F_[GS]ETOWN_EX, the RW hints, and any command newer than this list:
      // glibc itself reads these as a pointer-sized argument, so do the same.
      return FcntlArgKind::kPointer;
  }
}

struct FcntlArg {
  FcntlArgKind kind = FcntlArgKind::kNone;
  int integer = 0;
  void* pointer = nullptr;
};

// Declares `out` (a FcntlArg) from the argument after `cmd`, the last named
// parameter of the enclosing variadic function.
#define OBJCACHE_PRELOAD_READ_FCNTL_ARG(cmd, out)                      \
  ::objcache::preload::FcntlArg out;                                   \
  out.kind = ::objcache::preload::fcntl_arg_kind(cmd);                 \
  if (out.kind != ::objcache::preload::FcntlArgKind::kNone) {          \
    va_list objcache_ap_;                                              \
    va_start(objcache_ap_, cmd);                                       \
    if (out.kind == ::objcache::preload::FcntlArgKind::kInt)           \
      out.integer = va_arg(objcache_ap_, int);                         \
    else                                                               \
      out.pointer = va_arg(objcache_ap_, void*);                       \
    va_end(objcache_ap_);                                              \
  }

// Calls a fcntl-like function with the third argument in the type it came in.
template <typename F>
int call_fcntl(F f, int fd, int cmd, const FcntlArg& a) {
  switch (a.kind) {
    case FcntlArgKind::kNone:
      return f(fd, cmd);
    case FcntlArgKind::kInt:
      return f(fd, cmd, a.integer);
    case FcntlArgKind::kPointer:
      break;
  }
  return f(fd, cmd, a.pointer);
}

}  // namespace objcache::preload
