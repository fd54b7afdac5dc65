// SPDX-License-Identifier: Apache-2.0
// Entry points: fork, the exec family and posix_spawn. A child inherits every
// non-CLOEXEC fd, so before exec the virtual ones must be materialised; that
// is the only reason these are hooked. vfork is deliberately NOT interposed:
// a wrapper's frame would be shared with, and clobbered by, the child
// (INTERCEPT.md section 4); a vfork child reaches the entry points below
// with the parent's memory and must find nothing to do, which pass-through
// guarantees. The execl forms cannot forward their varargs: like glibc's own
// execl they build an argv on the stack and go the execv way.
#include <alloca.h>

#include <cstdarg>
#include <cstddef>

#include "entry.h"

using namespace objcache::preload;

namespace {

bool pass_exec() noexcept { return in_shim() || !dispatch::exec_needs_work(); }

int exec_v(const char* path, char* const argv[]) noexcept {
  if (pass_exec()) return real::fn<Sym::execv>()(path, argv);
  return dispatch::serve<Sym::execv>(path, argv);
}

int exec_ve(const char* path, char* const argv[], char* const envp[]) noexcept {
  if (pass_exec()) return real::fn<Sym::execve>()(path, argv, envp);
  return dispatch::serve<Sym::execve>(path, argv, envp);
}

int exec_vp(const char* file, char* const argv[]) noexcept {
  if (pass_exec()) return real::fn<Sym::execvp>()(file, argv);
  return dispatch::serve<Sym::execvp>(file, argv);
}

}  // namespace

// Declares `argv` = {arg0, the varargs..., NULL} and leaves `ap` open just
// after the NULL (execle reads envp there). Inline, not a helper taking a
// va_list: a va_list passed by value does not advance the caller's on every
// ABI. alloca: exec either replaces the process or returns from this frame.
#define OBJCACHE_PRELOAD_BUILD_ARGV(arg0, argv, ap)                                \
  va_list ap;                                                                      \
  va_start(ap, arg0);                                                              \
  size_t objcache_argc_ = 1;                                                       \
  while (va_arg(ap, char*) != nullptr) ++objcache_argc_;                           \
  va_end(ap);                                                                      \
  char** argv = static_cast<char**>(alloca((objcache_argc_ + 1) * sizeof(char*))); \
  argv[0] = const_cast<char*>(arg0);                                               \
  va_start(ap, arg0);                                                              \
  for (size_t objcache_i_ = 1; objcache_i_ <= objcache_argc_; ++objcache_i_)       \
    argv[objcache_i_] = va_arg(ap, char*)

OBJCACHE_ENTRY pid_t fork() noexcept {
  if (in_shim() || !dispatch::fork_needs_work()) return real::fn<Sym::fork>()();
  return dispatch::serve<Sym::fork>();
}

OBJCACHE_ENTRY int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  return exec_ve(path, argv, envp);
}

OBJCACHE_ENTRY int execv(const char* path, char* const argv[]) noexcept {
  return exec_v(path, argv);
}

OBJCACHE_ENTRY int execvp(const char* file, char* const argv[]) noexcept {
  return exec_vp(file, argv);
}

OBJCACHE_ENTRY int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
  if (pass_exec()) return real::fn<Sym::execvpe>()(file, argv, envp);
  return dispatch::serve<Sym::execvpe>(file, argv, envp);
}

OBJCACHE_ENTRY int fexecve(int fd, char* const argv[], char* const envp[]) noexcept {
  if (pass_exec()) return real::fn<Sym::fexecve>()(fd, argv, envp);
  return dispatch::serve<Sym::fexecve>(fd, argv, envp);
}

OBJCACHE_ENTRY int execl(const char* path, const char* arg, ...) noexcept {
  OBJCACHE_PRELOAD_BUILD_ARGV(arg, argv, ap);
  va_end(ap);
  return exec_v(path, argv);
}

OBJCACHE_ENTRY int execlp(const char* file, const char* arg, ...) noexcept {
  OBJCACHE_PRELOAD_BUILD_ARGV(arg, argv, ap);
  va_end(ap);
  return exec_vp(file, argv);
}

OBJCACHE_ENTRY int execle(const char* path, const char* arg, ...) noexcept {
  OBJCACHE_PRELOAD_BUILD_ARGV(arg, argv, ap);
  char* const* envp = va_arg(ap, char* const*);
  va_end(ap);
  return exec_ve(path, argv, envp);
}

OBJCACHE_ENTRY int posix_spawn(pid_t* pid, const char* path,
                               const posix_spawn_file_actions_t* actions,
                               const posix_spawnattr_t* attr, char* const argv[],
                               char* const envp[]) {
  if (pass_exec()) return real::fn<Sym::posix_spawn>()(pid, path, actions, attr, argv, envp);
  return dispatch::serve<Sym::posix_spawn>(pid, path, actions, attr, argv, envp);
}

OBJCACHE_ENTRY int posix_spawnp(pid_t* pid, const char* file,
                                const posix_spawn_file_actions_t* actions,
                                const posix_spawnattr_t* attr, char* const argv[],
                                char* const envp[]) {
  if (pass_exec()) return real::fn<Sym::posix_spawnp>()(pid, file, actions, attr, argv, envp);
  return dispatch::serve<Sym::posix_spawnp>(pid, file, actions, attr, argv, envp);
}
