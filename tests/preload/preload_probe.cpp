// SPDX-License-Identifier: Apache-2.0
// A C-level program for tests/preload/run_passthrough.py. It calls every
// interposed symbol by its own name (both LFS spellings, the fortified
// forms, the pre-2.33 __xstat ABI bound the way an old binary binds it) and
// prints what each returned, so a run with the shim can be compared line by
// line with a run without it. Built without _FILE_OFFSET_BITS=64, so that
// `open` and `open64` are distinct calls here too.
//
//   preload_probe calls ROOT OUT     exercise everything under ROOT/data
//   preload_probe missing ROOT       run under OBJCACHE_PRELOAD_TEST_UNRESOLVED
//                                    (see the driver): stubs fail softly
//   preload_probe interposed NAME..  every NAME resolves into the shim
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#if defined(_FILE_OFFSET_BITS) && _FILE_OFFSET_BITS == 64
#error "the probe must see both open and open64"
#endif

extern "C" {
int __open_2(const char*, int);
int __open64_2(const char*, int);
int __openat_2(int, const char*, int);
int __openat64_2(int, const char*, int);
ssize_t __read_chk(int, void*, size_t, size_t);
ssize_t __pread_chk(int, void*, size_t, off_t, size_t);
ssize_t __pread64_chk(int, void*, size_t, off64_t, size_t);
char* __realpath_chk(const char*, char*, size_t) noexcept;
ssize_t __readlink_chk(const char*, char*, size_t, size_t) noexcept;
ssize_t __readlinkat_chk(int, const char*, char*, size_t, size_t) noexcept;
char* __getcwd_chk(char*, size_t, size_t) noexcept;
#if defined(__x86_64__)
int __xstat(int, const char*, struct stat*) noexcept;
int __xstat64(int, const char*, struct stat64*) noexcept;
int __lxstat(int, const char*, struct stat*) noexcept;
int __lxstat64(int, const char*, struct stat64*) noexcept;
int __fxstat(int, int, struct stat*) noexcept;
int __fxstat64(int, int, struct stat64*) noexcept;
int __fxstatat(int, int, const char*, struct stat*, int) noexcept;
int __fxstatat64(int, int, const char*, struct stat64*, int) noexcept;
#if !defined(__SANITIZE_ADDRESS__)
// Bound to explicit versions, exactly as a binary built before glibc 2.33
// (whose headers made stat() an inline call to __xstat).
#define PROBE_OLD_BINARY_BINDING 1
__asm__(".symver __xstat,__xstat@GLIBC_2.2.5");
__asm__(".symver __xstat64,__xstat64@GLIBC_2.2.5");
__asm__(".symver __lxstat,__lxstat@GLIBC_2.2.5");
__asm__(".symver __lxstat64,__lxstat64@GLIBC_2.2.5");
__asm__(".symver __fxstat,__fxstat@GLIBC_2.2.5");
__asm__(".symver __fxstat64,__fxstat64@GLIBC_2.2.5");
__asm__(".symver __fxstatat,__fxstatat@GLIBC_2.4");
__asm__(".symver __fxstatat64,__fxstatat64@GLIBC_2.4");
#endif
#endif
}

#if defined(__x86_64__) && !defined(PROBE_OLD_BINARY_BINDING)
// ASan builds: next to libasan's own __xstat, ld emits broken PLT entries
// (R_X86_64_NONE) for the .symver references; look the functions up instead.
template <typename F>
F legacy(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
#define __xstat (legacy<decltype(&::__xstat)>("__xstat"))
#define __xstat64 (legacy<decltype(&::__xstat64)>("__xstat64"))
#define __lxstat (legacy<decltype(&::__lxstat)>("__lxstat"))
#define __lxstat64 (legacy<decltype(&::__lxstat64)>("__lxstat64"))
#define __fxstat (legacy<decltype(&::__fxstat)>("__fxstat"))
#define __fxstat64 (legacy<decltype(&::__fxstat64)>("__fxstat64"))
#define __fxstatat (legacy<decltype(&::__fxstatat)>("__fxstatat"))
#define __fxstatat64 (legacy<decltype(&::__fxstatat64)>("__fxstatat64"))
#endif

namespace {

std::string g_root;  // ROOT, stripped from printed paths
int g_failures = 0;

std::string err_name(int e) {
  const char* n = strerrorname_np(e);
  return n != nullptr ? n : std::to_string(e);
}

// "name = value" or "name = -1 ENOENT".
void put(const char* name, long value, bool with_errno = false) {
  if (with_errno || value < 0) {
    printf("%s = %ld %s\n", name, value, err_name(errno).c_str());
  } else {
    printf("%s = %ld\n", name, value);
  }
}
void put_str(const char* name, const std::string& s) { printf("%s = \"%s\"\n", name, s.c_str()); }

uint64_t fnv(const void* p, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}
void put_hash(const char* name, const void* p, long n) {
  printf("%s = %ld bytes fnv %016llx\n", name, n,
         static_cast<unsigned long long>(n > 0 ? fnv(p, static_cast<size_t>(n)) : 0));
}

std::string rel(const char* path) {
  std::string s = path != nullptr ? path : "(null)";
  if (s.compare(0, g_root.size(), g_root) == 0) s = "ROOT" + s.substr(g_root.size());
  return s;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// ---- calls ----------------------------------------------------------------

void open_family(const std::string& d, const std::string& out, int dirfd) {
  const std::string small = d + "/small.txt";
  char buf[64];
  struct {
    const char* name;
    int fd;
  } opened[] = {
      {"open", open(small.c_str(), O_RDONLY)},
      {"open64", open64(small.c_str(), O_RDONLY | O_CLOEXEC)},
      {"openat", openat(dirfd, "small.txt", O_RDONLY)},
      {"openat64", openat64(dirfd, "small.txt", O_RDONLY)},
      {"__open_2", __open_2(small.c_str(), O_RDONLY)},
      {"__open64_2", __open64_2(small.c_str(), O_RDONLY)},
      {"__openat_2", __openat_2(dirfd, "small.txt", O_RDONLY)},
      {"__openat64_2", __openat64_2(dirfd, "small.txt", O_RDONLY)},
  };
  for (auto& o : opened) {
    const long n = o.fd < 0 ? -1 : read(o.fd, buf, sizeof buf);
    put_hash(o.name, buf, n);
    if (o.fd >= 0) close(o.fd);
  }
  put("open.missing", open((d + "/nope").c_str(), O_RDONLY));
  int fd = creat((out + "/creat").c_str(), 0640);
  struct stat st {};
  fstat(fd, &st);
  put("creat.mode", fd < 0 ? -1 : (st.st_mode & 07777));
  close(fd);
  fd = creat64((out + "/creat64").c_str(), 0600);
  put("creat64", fd < 0 ? -1 : 0);
  close(fd);
  fd = open((out + "/excl").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0604);
  fstat(fd, &st);
  put("open.creat.mode", fd < 0 ? -1 : (st.st_mode & 07777));
  close(fd);
  put("open.excl.again", open((out + "/excl").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0604));
  fd = openat(AT_FDCWD, out.c_str(), O_TMPFILE | O_RDWR, 0600);
  put("openat.tmpfile", fd < 0 ? -1 : 0);
  if (fd >= 0) close(fd);
}

void stat_family(const std::string& d, int dirfd) {
  const std::string small = d + "/small.txt", link = d + "/link";
  struct stat st {};
  struct stat64 st64 {};
  put("stat.size", stat(small.c_str(), &st) == 0 ? st.st_size : -1);
  put("stat64.size", stat64(small.c_str(), &st64) == 0 ? st64.st_size : -1);
  put("lstat.islnk", lstat(link.c_str(), &st) == 0 ? S_ISLNK(st.st_mode) : -1);
  put("lstat64.islnk", lstat64(link.c_str(), &st64) == 0 ? S_ISLNK(st64.st_mode) : -1);
  put("stat.missing", stat((d + "/nope").c_str(), &st));
  const int fd = open((d + "/big.bin").c_str(), O_RDONLY);
  put("fstat.size", fstat(fd, &st) == 0 ? st.st_size : -1);
  put("fstat64.size", fstat64(fd, &st64) == 0 ? st64.st_size : -1);
  put("fstat.badfd", fstat(-1, &st));
  put("fstatat.size", fstatat(dirfd, "small.txt", &st, 0) == 0 ? st.st_size : -1);
  put("fstatat64.nofollow", fstatat64(dirfd, "link", &st64, AT_SYMLINK_NOFOLLOW) == 0
                                ? S_ISLNK(st64.st_mode) : -1);
  put("fstatat.emptypath", fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 ? st.st_size : -1);
  struct statx sx {};
  put("statx.size", statx(dirfd, "big.bin", 0, STATX_SIZE | STATX_MODE, &sx) == 0
                        ? static_cast<long>(sx.stx_size) : -1);
  put("statx.mask", (sx.stx_mask & (STATX_SIZE | STATX_MODE)) == (STATX_SIZE | STATX_MODE));
  put("statx.emptypath", statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx) == 0
                             ? static_cast<long>(sx.stx_size) : -1);
#if defined(__x86_64__)
  put("__xstat.size", __xstat(1, small.c_str(), &st) == 0 ? st.st_size : -1);
  put("__xstat64.size", __xstat64(1, small.c_str(), &st64) == 0 ? st64.st_size : -1);
  put("__lxstat.islnk", __lxstat(1, link.c_str(), &st) == 0 ? S_ISLNK(st.st_mode) : -1);
  put("__lxstat64.islnk", __lxstat64(1, link.c_str(), &st64) == 0 ? S_ISLNK(st64.st_mode) : -1);
  put("__fxstat.size", __fxstat(1, fd, &st) == 0 ? st.st_size : -1);
  put("__fxstat64.size", __fxstat64(1, fd, &st64) == 0 ? st64.st_size : -1);
  put("__fxstatat.size", __fxstatat(1, dirfd, "small.txt", &st, 0) == 0 ? st.st_size : -1);
  put("__fxstatat64.size", __fxstatat64(1, dirfd, "small.txt", &st64, 0) == 0 ? st64.st_size : -1);
  put("__xstat.badver", __xstat(99, small.c_str(), &st));
#endif
  struct statfs sf {};
  struct statfs64 sf64 {};
  struct statvfs sv {};
  struct statvfs64 sv64 {};
  put("statfs.type", statfs(d.c_str(), &sf) == 0 ? static_cast<long>(sf.f_type) : -1);
  put("statfs64.type", statfs64(d.c_str(), &sf64) == 0 ? static_cast<long>(sf64.f_type) : -1);
  put("fstatfs.type", fstatfs(fd, &sf) == 0 ? static_cast<long>(sf.f_type) : -1);
  put("fstatfs64.type", fstatfs64(fd, &sf64) == 0 ? static_cast<long>(sf64.f_type) : -1);
  put("statvfs.bsize", statvfs(d.c_str(), &sv) == 0 ? static_cast<long>(sv.f_bsize) : -1);
  put("statvfs64.bsize", statvfs64(d.c_str(), &sv64) == 0 ? static_cast<long>(sv64.f_bsize) : -1);
  put("fstatvfs.namemax", fstatvfs(fd, &sv) == 0 ? static_cast<long>(sv.f_namemax) : -1);
  put("fstatvfs64.namemax", fstatvfs64(fd, &sv64) == 0 ? static_cast<long>(sv64.f_namemax) : -1);
  close(fd);
  put("access", access(small.c_str(), R_OK));
  put("access.missing", access((d + "/nope").c_str(), F_OK));
  put("faccessat", faccessat(dirfd, "small.txt", R_OK, AT_EACCESS));
  put("euidaccess", euidaccess(small.c_str(), R_OK));
  put("eaccess", eaccess(small.c_str(), R_OK));
}

std::string join(std::vector<std::string> v) {
  std::string s;
  std::sort(v.begin(), v.end());
  for (auto& x : v) s += x + ",";
  return s;
}

bool visible(const char* n) { return strcmp(n, ".") != 0 && strcmp(n, "..") != 0; }

void dir_family(const std::string& d, int dirfd) {
  std::vector<std::string> names;
  DIR* dir = opendir(d.c_str());
  put("opendir", dir != nullptr);
  if (dir == nullptr) return;
  while (struct dirent* e = readdir(dir)) if (visible(e->d_name)) names.push_back(e->d_name);
  put_str("readdir", join(names));
  rewinddir(dir);
  names.clear();
  const long first = telldir(dir);
  while (struct dirent64* e = readdir64(dir)) if (visible(e->d_name)) names.push_back(e->d_name);
  put_str("readdir64", join(names));
  seekdir(dir, first);
  names.clear();
  struct dirent ent {};
  struct dirent* res = nullptr;
  while (readdir_r(dir, &ent, &res) == 0 && res != nullptr) if (visible(ent.d_name)) names.push_back(ent.d_name);
  put_str("readdir_r", join(names));
  rewinddir(dir);
  names.clear();
  struct dirent64 ent64 {};
  struct dirent64* res64 = nullptr;
  while (readdir64_r(dir, &ent64, &res64) == 0 && res64 != nullptr) if (visible(ent64.d_name)) names.push_back(ent64.d_name);
  put_str("readdir64_r", join(names));
  struct stat st {};
  put("dirfd.isdir", fstat(::dirfd(dir), &st) == 0 && S_ISDIR(st.st_mode));
  put("closedir", closedir(dir));

  DIR* fdir = fdopendir(dup(dirfd));
  names.clear();
  if (fdir != nullptr) {
    while (struct dirent* e = readdir(fdir)) if (visible(e->d_name)) names.push_back(e->d_name);
    closedir(fdir);
  }
  put_str("fdopendir", join(names));

  struct dirent** list = nullptr;
  int n = scandir(d.c_str(), &list, nullptr, alphasort);
  put("scandir", n);
  for (int i = 0; i < n; ++i) free(list[i]);
  free(list);
  struct dirent64** list64 = nullptr;
  n = scandir64(d.c_str(), &list64, nullptr, alphasort64);
  put("scandir64", n);
  for (int i = 0; i < n; ++i) free(list64[i]);
  free(list64);
  n = scandirat(dirfd, "sub", &list, nullptr, alphasort);
  put("scandirat", n);
  for (int i = 0; i < n; ++i) free(list[i]);
  free(list);
  n = scandirat64(dirfd, "sub", &list64, nullptr, alphasort64);
  put("scandirat64", n);
  for (int i = 0; i < n; ++i) free(list64[i]);
  free(list64);
  put("opendir.missing", opendir((d + "/nope").c_str()) != nullptr ? 1 : -1);
}

void io_family(const std::string& d) {
  const int fd = open((d + "/big.bin").c_str(), O_RDONLY);
  static char buf[3][40000];
  put_hash("read", buf[0], read(fd, buf[0], 10000));
  put_hash("__read_chk", buf[0], __read_chk(fd, buf[0], 1000, sizeof buf[0]));
  put_hash("pread", buf[0], pread(fd, buf[0], 5000, 12345));
  put_hash("pread64", buf[0], pread64(fd, buf[0], 5000, 1 << 19));
  put_hash("__pread_chk", buf[0], __pread_chk(fd, buf[0], 333, 7, sizeof buf[0]));
  put_hash("__pread64_chk", buf[0], __pread64_chk(fd, buf[0], 333, 70000, sizeof buf[0]));
  struct iovec iov[3] = {{buf[0], 100}, {buf[1], 4000}, {buf[2], 7}};
  long n = readv(fd, iov, 3);
  put("readv", n);
  put_hash("readv.1", buf[1], 4000);
  n = preadv(fd, iov, 3, 999);
  put_hash("preadv", buf[1], n > 0 ? 4000 : n);
  n = preadv64(fd, iov, 3, 99999);
  put_hash("preadv64", buf[1], n > 0 ? 4000 : n);
  n = preadv2(fd, iov, 3, 4096, 0);
  put_hash("preadv2", buf[1], n > 0 ? 4000 : n);
  n = preadv64v2(fd, iov, 3, 8192, RWF_HIPRI);
  put_hash("preadv64v2", buf[1], n > 0 ? 4000 : n);
  put("preadv2.badflag", preadv2(fd, iov, 3, 0, 0x40000000));
  put("lseek.end", lseek(fd, 0, SEEK_END));
  put("lseek64.set", lseek64(fd, 777, SEEK_SET));
  put("lseek.data", lseek(fd, 0, SEEK_DATA));
  put("lseek.badwhence", lseek(fd, 0, 42));
  put("posix_fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
  put("posix_fadvise64", posix_fadvise64(fd, 0, 4096, POSIX_FADV_WILLNEED));
  put("posix_fadvise.badfd", posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL));
  put("readahead", readahead(fd, 0, 65536));
  put("read.badfd", read(-1, buf[0], 1));
  close(fd);
}

void fd_family(const std::string& d, const std::string& out) {
  const int fd = open((d + "/small.txt").c_str(), O_RDONLY);
  int a = dup(fd);
  put("dup", a > fd);
  put("dup2", dup2(fd, 150));
  put("dup3.cloexec", dup3(fd, 151, O_CLOEXEC));
  put("fcntl.getfd", fcntl(151, F_GETFD));
  put("fcntl.dupfd_cloexec", fcntl(fd, F_DUPFD_CLOEXEC, 160));
  put("fcntl64.dupfd", fcntl64(fd, F_DUPFD, 170));
  put("fcntl.getfl", fcntl(fd, F_GETFL) & O_ACCMODE);
  put("fcntl.setfd", fcntl(a, F_SETFD, FD_CLOEXEC));
  put("fcntl.getfd.after", fcntl(a, F_GETFD));
  const int w = open((out + "/lockme").c_str(), O_RDWR | O_CREAT, 0600);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  put("fcntl.setlk", fcntl(w, F_SETLK, &fl));
  struct flock64 fl64 {};
  fl64.l_type = F_RDLCK;
  put("fcntl64.getlk", fcntl64(w, F_GETLK64, &fl64));
  put("fcntl64.getlk.type", fl64.l_type);
  put("fcntl.ofd_getlk", fcntl(w, F_OFD_GETLK, &fl));
  put("fcntl.badfd", fcntl(-1, F_GETFD));
  put("isatty", isatty(fd), true);
  put("close_range", close_range(150, 151, 0));
  put("close_range.closed", fcntl(150, F_GETFD));
  put("closefrom.before", fcntl(170, F_GETFD));
  closefrom(160);
  put("closefrom.closed", fcntl(170, F_GETFD));
  put("close", close(a));
  put("close.again", close(a));
  close(w);
  close(fd);
}

void exec_family(const std::string& out) {
  pid_t pid = fork();
  if (pid == 0) _exit(7);
  put("fork", wait_exit(pid));
  const char* sh = "/bin/sh";
  char* const argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"),
                        const_cast<char*>("exit ${X:-9}"), nullptr};
  char* const envp[] = {const_cast<char*>("X=11"), nullptr};
  struct {
    const char* name;
    int which;
  } forms[] = {{"execl", 0}, {"execlp", 1}, {"execle", 2}, {"execv", 3},
               {"execvp", 4}, {"execvpe", 5}, {"execve", 6}, {"fexecve", 7}};
  for (auto& f : forms) {
    pid = fork();
    if (pid == 0) {
      switch (f.which) {
        case 0: execl(sh, "sh", "-c", "exit 3", static_cast<char*>(nullptr)); break;
        case 1: execlp("sh", "sh", "-c", "exit 4", static_cast<char*>(nullptr)); break;
        case 2: execle(sh, "sh", "-c", "exit $X", static_cast<char*>(nullptr), envp); break;
        case 3: execv(sh, argv); break;
        case 4: execvp("sh", argv); break;
        case 5: execvpe("sh", argv, envp); break;
        case 6: execve(sh, argv, envp); break;
        case 7: fexecve(open(sh, O_RDONLY | O_CLOEXEC), argv, envp); break;
      }
      _exit(100);
    }
    put(f.name, wait_exit(pid));
  }
  put("execve.missing", execve((out + "/nope").c_str(), argv, envp));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 5, (out + "/spawned").c_str(), O_WRONLY | O_CREAT, 0600);
  put("posix_spawn.rc", posix_spawn(&pid, sh, &fa, nullptr, argv, envp));
  put("posix_spawn", wait_exit(pid));
  put("posix_spawnp.rc", posix_spawnp(&pid, "sh", nullptr, nullptr, argv, envp));
  put("posix_spawnp", wait_exit(pid));
  put("posix_spawn.missing", posix_spawn(&pid, "/nonexistent/x", nullptr, nullptr, argv, envp));
  posix_spawn_file_actions_destroy(&fa);
}

void stdio_family(const std::string& d) {
  char buf[128] = {};
  FILE* f = fopen((d + "/small.txt").c_str(), "r");
  put_str("fopen", f != nullptr && fgets(buf, sizeof buf, f) != nullptr ? buf : "(fail)");
  f = freopen((d + "/big.bin").c_str(), "rb", f);
  put_hash("freopen", buf, f != nullptr ? static_cast<long>(fread(buf, 1, 100, f)) : -1);
  put("fclose", f != nullptr ? fclose(f) : -1);
  f = fopen64((d + "/big.bin").c_str(), "rb");
  put_hash("fopen64", buf, f != nullptr ? static_cast<long>(fread(buf, 1, 128, f)) : -1);
  f = freopen64(nullptr, "r", f);
  put("freopen64.samefile", f != nullptr);
  if (f != nullptr) fclose(f);
  const int fd = open((d + "/small.txt").c_str(), O_RDONLY);
  f = fdopen(fd, "r");
  put_str("fdopen", f != nullptr && fgets(buf, sizeof buf, f) != nullptr ? buf : "(fail)");
  if (f != nullptr) put("fclose.fdopen", fclose(f));
  put("fopen.missing", fopen((d + "/nope").c_str(), "r") != nullptr ? 1 : -1);
}

void mmap_copy_family(const std::string& d, const std::string& out) {
  const int fd = open((d + "/big.bin").c_str(), O_RDONLY);
  void* p = mmap(nullptr, 65536, PROT_READ, MAP_PRIVATE, fd, 0);
  put_hash("mmap", p, p == MAP_FAILED ? -1 : 65536);
  put("munmap", p == MAP_FAILED ? -1 : munmap(p, 65536));
  p = mmap64(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 4096 * 3);
  put_hash("mmap64", p, p == MAP_FAILED ? -1 : 8192);
  if (p != MAP_FAILED) munmap(p, 8192);
  p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  put("mmap.anon", p != MAP_FAILED && static_cast<char*>(p)[100] == 0);
  if (p != MAP_FAILED) munmap(p, 4096);
  put("mmap.badfd", mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, -1, 0) == MAP_FAILED ? -1 : 0);

  static char buf[70000];
  const int o1 = open((out + "/sendfile").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  off_t off = 100;
  put("sendfile", sendfile(o1, fd, &off, 50000));
  put("sendfile.off", off);
  off64_t off64 = 200;
  put("sendfile64", sendfile64(o1, fd, &off64, 10000));
  put_hash("sendfile.data", buf, pread(o1, buf, sizeof buf, 0));
  const int o2 = open((out + "/cfr").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  off64_t in_off = 4096;
  put("copy_file_range", copy_file_range(fd, &in_off, o2, nullptr, 65536, 0));
  put_hash("copy_file_range.data", buf, pread(o2, buf, sizeof buf, 0));
  int pipefd[2];
  if (pipe(pipefd) == 0) {
    off64_t soff = 3;
    put("splice", splice(fd, &soff, pipefd[1], nullptr, 4000, 0));
    int avail = -1;
    put("ioctl.fionread", ioctl(pipefd[0], FIONREAD, &avail));
    put("ioctl.fionread.n", avail);
    put_hash("splice.data", buf, read(pipefd[0], buf, 4000));
    close(pipefd[0]);
    close(pipefd[1]);
  }
  put("ioctl.fioclex", ioctl(fd, FIOCLEX));
  put("ioctl.getfd", fcntl(fd, F_GETFD));
  int n = 0;
  put("ioctl.notty", ioctl(fd, TIOCGWINSZ, &n));
  close(o1);
  close(o2);
  close(fd);
}

void path_misc_family(const std::string& d, int dirfd) {
  const std::string link = d + "/link";
  char buf[4096];
  long n = readlink(link.c_str(), buf, sizeof buf);
  put_str("readlink", n > 0 ? std::string(buf, static_cast<size_t>(n)) : "(fail)");
  n = readlinkat(dirfd, "link", buf, sizeof buf);
  put_str("readlinkat", n > 0 ? std::string(buf, static_cast<size_t>(n)) : "(fail)");
  n = __readlink_chk(link.c_str(), buf, 4, sizeof buf);
  put_str("__readlink_chk", n > 0 ? std::string(buf, static_cast<size_t>(n)) : "(fail)");
  n = __readlinkat_chk(dirfd, "link", buf, 100, sizeof buf);
  put_str("__readlinkat_chk", n > 0 ? std::string(buf, static_cast<size_t>(n)) : "(fail)");
  put("readlink.notlink", readlink((d + "/small.txt").c_str(), buf, sizeof buf));
  put_str("realpath", rel(realpath(link.c_str(), buf)));
  char* r = realpath((d + "/sub/../small.txt").c_str(), nullptr);
  put_str("realpath.malloc", rel(r));
  free(r);
  put_str("__realpath_chk", rel(__realpath_chk(link.c_str(), buf, sizeof buf)));
  r = canonicalize_file_name(link.c_str());
  put_str("canonicalize_file_name", rel(r));
  free(r);
  put("realpath.missing", realpath((d + "/nope/x").c_str(), buf) != nullptr ? 1 : -1);
  const std::string small = d + "/small.txt";
  put("getxattr", getxattr(small.c_str(), "user.objcache.none", buf, sizeof buf));
  put("lgetxattr", lgetxattr(link.c_str(), "user.objcache.none", buf, sizeof buf));
  const int fd = open(small.c_str(), O_RDONLY);
  put("fgetxattr", fgetxattr(fd, "user.objcache.none", buf, sizeof buf));
  put("listxattr", listxattr(small.c_str(), buf, sizeof buf) >= 0);
  put("llistxattr", llistxattr(link.c_str(), buf, sizeof buf) >= 0);
  put("flistxattr", flistxattr(fd, buf, sizeof buf) >= 0);
  close(fd);
  char* before = getcwd(nullptr, 0);
  put("chdir", chdir((d + "/sub").c_str()));
  put_str("getcwd", rel(getcwd(buf, sizeof buf)));
  put("open.relative", open("../small.txt", O_RDONLY) >= 0);
  put("fchdir", fchdir(dirfd));
  put_str("__getcwd_chk", rel(__getcwd_chk(buf, sizeof buf, sizeof buf)));
  put("getcwd.erange", getcwd(buf, 2) != nullptr ? 1 : -1);
  put("chdir.missing", chdir((d + "/nope").c_str()));
  put("chdir.back", chdir(before));
  free(before);
}

int calls(const std::string& root, const std::string& out) {
  g_root = root;
  const std::string d = root + "/data";
  const int dirfd = open(d.c_str(), O_RDONLY | O_DIRECTORY);
  // errno is the program's: a successful call through the shim leaves it.
  errno = 4242;
  struct stat st {};
  stat(d.c_str(), &st);
  put("errno.kept", errno);
  open_family(d, out, dirfd);
  stat_family(d, dirfd);
  dir_family(d, dirfd);
  io_family(d);
  fd_family(d, out);
  exec_family(out);
  stdio_family(d);
  mmap_copy_family(d, out);
  path_misc_family(d, dirfd);
  close(dirfd);
  return 0;
}

// ---- missing ----------------------------------------------------------------
// The driver hides these (OBJCACHE_PRELOAD_TEST_UNRESOLVED); each must fail
// with its own failure value and ENOSYS, and nothing else may be affected.

template <typename T>
void expect(const char* what, T got, T want, int want_errno) {
  const int e = errno;
  if (got != want || (want_errno != 0 && e != want_errno)) {
    printf("FAIL %s: errno %s\n", what, err_name(e).c_str());
    ++g_failures;
  } else {
    printf("ok %s\n", what);
  }
}

int missing(const std::string& root) {
  const std::string small = root + "/data/small.txt";
  struct stat st {};
  errno = 0;
  expect("stat", stat(small.c_str(), &st), -1, ENOSYS);
  errno = 0;
  expect("open64 (variadic)", open64(small.c_str(), O_RDONLY), -1, ENOSYS);
  errno = 0;
  expect<DIR*>("opendir", opendir(root.c_str()), nullptr, ENOSYS);
  errno = 0;
  expect("isatty", isatty(0), 0, ENOSYS);
  errno = 0;
  expect<void*>("mmap", mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                MAP_FAILED, ENOSYS);
  errno = 0;
  expect<FILE*>("fopen", fopen(small.c_str(), "r"), nullptr, ENOSYS);
  errno = 0;
  expect("fork", fork(), -1, ENOSYS);
  errno = 0;
  expect<char*>("getcwd", getcwd(nullptr, 0), nullptr, ENOSYS);
  errno = 0;
  closefrom(1000);  // void: must simply return
  expect("closefrom", errno, ENOSYS, 0);
#if defined(PROBE_OLD_BINARY_BINDING)
  // A reference bound to __xstat@GLIBC_2.2.5, as an old binary's is, reaches
  // the shim (which is why exports.map has no named version node).
  errno = 0;
  expect("__xstat@GLIBC_2.2.5", __xstat(1, small.c_str(), &st), -1, ENOSYS);
#endif
  // Not hidden: still the real thing.
  const int fd = open(small.c_str(), O_RDONLY);
  expect("open still works", fd >= 0, true, 0);
  errno = 0;
  expect("fcntl (variadic)", fcntl(fd, F_GETFD), -1, ENOSYS);
  errno = 0;
  expect("posix_fadvise returns the error", posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL), ENOSYS, 0);
  char buf[16] = {};
  expect("read still works", read(fd, buf, sizeof buf), 6L, 0);
  expect("close still works", close(fd), 0, 0);
  return g_failures == 0 ? 0 : 1;
}

// ---- interposed -------------------------------------------------------------

int interposed(int argc, char** argv) {
  int bad = 0;
  for (int i = 2; i < argc; ++i) {
    void* p = dlsym(RTLD_DEFAULT, argv[i]);
    Dl_info info{};
    if (p == nullptr || dladdr(p, &info) == 0 || strstr(info.dli_fname, "objcache_preload") == nullptr) {
      printf("not interposed: %s (%s)\n", argv[i], p != nullptr && info.dli_fname ? info.dli_fname : "null");
      ++bad;
    }
  }
  printf("%d of %d names interposed\n", argc - 2 - bad, argc - 2);
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);  // forked children must not repeat buffered lines
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "calls" && argc == 4) return calls(argv[2], argv[3]);
  if (mode == "missing" && argc == 3) return missing(argv[2]);
  if (mode == "interposed") return interposed(argc, argv);
  fprintf(stderr, "usage: preload_probe calls ROOT OUT | missing ROOT | interposed NAME...\n");
  return 2;
}
