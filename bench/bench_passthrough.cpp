// SPDX-License-Identifier: Apache-2.0
// What the LD_PRELOAD shim costs a program it passes through: a plain C
// reader opens, fstats, reads and closes N files (default 2000 x 100 KiB,
// page-cache warm), timed in child processes started with and without
// LD_PRELOAD=libobjcache_preload.so, alternating, median of R runs each.
//
//   bench_passthrough [--shim PATH] [--files N] [--size BYTES] [--runs R] [--passes P] [--dir DIR]
//
// Each child makes one untimed pass, then --passes timed ones and reports
// the fastest (the least disturbed by whatever else the machine runs); the
// medians of those over the runs are compared. Also reports what loading
// the shim adds to a process's start (fork+exec+exit of a no-op child).
// Prints; asserts nothing. The children are this program re-executed.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

std::string file_name(const std::string& dir, long i) {
  char name[32];
  snprintf(name, sizeof name, "/f%05ld", i);
  return dir + name;
}

// One pass: open, fstat, read to EOF in 64 KiB chunks, close. Returns the
// bytes read, or -1 on any error.
long long pass(const std::string& dir, long files, std::vector<char>& buf) {
  long long total = 0;
  for (long i = 0; i < files; ++i) {
    const int fd = open(file_name(dir, i).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st {};
    if (fstat(fd, &st) != 0) return -1;
    for (;;) {
      const ssize_t n = read(fd, buf.data(), buf.size());
      if (n < 0) return -1;
      if (n == 0) break;
      total += n;
    }
    close(fd);
  }
  return total;
}

constexpr size_t kReadSize = 64 * 1024;

// The child: one untimed pass to settle caches, then `passes` timed ones;
// prints the fastest in nanoseconds.
int worker(const std::string& dir, long files, long passes) {
  std::vector<char> buf(kReadSize);
  if (pass(dir, files, buf) < 0) return 1;
  uint64_t best = UINT64_MAX;
  for (long i = 0; i < passes; ++i) {
    const uint64_t t0 = now_ns();
    if (pass(dir, files, buf) < 0) return 1;
    best = std::min(best, now_ns() - t0);
  }
  printf("%" PRIu64 "\n", best);
  return 0;
}

// The child for the per-call cost: `iterations` calls of an interposed
// function that does no system call (dirfd) and of a cheap one that does
// (lseek SEEK_CUR); prints nanoseconds per call of each, best of 5 rounds.
int call_worker(long iterations) {
  DIR* dir = opendir(".");
  const int fd = open("/proc/self/exe", O_RDONLY);
  if (dir == nullptr || fd < 0) return 1;
  double best_dirfd = 1e18, best_lseek = 1e18;
  for (int round = 0; round < 5; ++round) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < iterations; ++i) {
      int r = dirfd(dir);
      asm volatile("" : "+r"(r));  // keep every call
    }
    best_dirfd = std::min(best_dirfd, static_cast<double>(now_ns() - t0) / static_cast<double>(iterations));
    t0 = now_ns();
    for (long i = 0; i < iterations / 10; ++i) {
      off_t r = lseek(fd, 0, SEEK_CUR);
      asm volatile("" : "+r"(r));
    }
    best_lseek = std::min(best_lseek, static_cast<double>(now_ns() - t0) / static_cast<double>(iterations / 10));
  }
  printf("%.3f %.3f\n", best_dirfd, best_lseek);
  closedir(dir);
  close(fd);
  return 0;
}

// Runs `args` (this program re-executed) with `shim` preloaded if non-empty
// and returns its stdout, or "" if it failed.
std::string run_child(const std::string& self, const std::string& shim, const char* a1, const char* a2) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return "";
  const pid_t pid = fork();
  if (pid < 0) return "";
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    if (shim.empty()) {
      unsetenv("LD_PRELOAD");
    } else {
      setenv("LD_PRELOAD", shim.c_str(), 1);
    }
    execl(self.c_str(), self.c_str(), a1, a2, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  char out[256] = {};
  const ssize_t n = read(pipefd[0], out, sizeof out - 1);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return "";
  return out;
}

// Runs this program as a worker (files == 0: a no-op child, timed from the
// outside), with `shim` preloaded if non-empty.
bool timed_child(const std::string& self, const std::string& shim, const std::string& dir,
                 long files, long passes, uint64_t* ns) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return false;
  const std::string nfiles = std::to_string(files), npasses = std::to_string(passes);
  const uint64_t t0 = now_ns();
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    if (shim.empty()) {
      unsetenv("LD_PRELOAD");
    } else {
      setenv("LD_PRELOAD", shim.c_str(), 1);
    }
    if (files == 0) {
      execl(self.c_str(), self.c_str(), "--noop", static_cast<char*>(nullptr));
    } else {
      execl(self.c_str(), self.c_str(), "--worker", dir.c_str(), nfiles.c_str(), npasses.c_str(),
            static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  close(pipefd[1]);
  char out[64] = {};
  const ssize_t n = read(pipefd[0], out, sizeof out - 1);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const uint64_t elapsed = now_ns() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return false;
  if (files == 0) {
    *ns = elapsed;
    return true;
  }
  if (n <= 0) return false;
  *ns = strtoull(out, nullptr, 10);
  return true;
}

template <typename T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string self_path() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && strcmp(argv[1], "--worker") == 0) return worker(argv[2], atol(argv[3]), atol(argv[4]));
  if (argc == 2 && strcmp(argv[1], "--noop") == 0) return 0;
  if (argc == 3 && strcmp(argv[1], "--calls") == 0) return call_worker(atol(argv[2]));

  const std::string self = self_path();
  std::string shim = self.substr(0, self.rfind('/')) + "/../preload/libobjcache_preload.so";
  long files = 2000, size = 100 * 1024, runs = 5, passes = 5;
  std::string parent = getenv("TMPDIR") != nullptr ? getenv("TMPDIR") : "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--shim") shim = argv[i + 1];
    else if (a == "--files") files = atol(argv[i + 1]);
    else if (a == "--size") size = atol(argv[i + 1]);
    else if (a == "--runs") runs = atol(argv[i + 1]);
    else if (a == "--passes") passes = atol(argv[i + 1]);
    else if (a == "--dir") parent = argv[i + 1];
    else {
      fprintf(stderr, "usage: %s [--shim PATH] [--files N] [--size BYTES] [--runs R] [--passes P] [--dir DIR]\n", argv[0]);
      return 2;
    }
  }
  char resolved[4096];
  if (realpath(shim.c_str(), resolved) == nullptr) {
    fprintf(stderr, "bench_passthrough: no shim at %s (build it, or pass --shim)\n", shim.c_str());
    return 1;
  }
  shim = resolved;
  if (files < 1 || size < 1 || runs < 1 || passes < 1) return 2;

  std::string dir = parent + "/objcache-bench-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    fprintf(stderr, "bench_passthrough: mkdtemp in %s: %s\n", parent.c_str(), strerror(errno));
    return 1;
  }
  std::vector<char> content(static_cast<size_t>(size));
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 131 + 7);
  for (long i = 0; i < files; ++i) {
    const int fd = open(file_name(dir, i).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
      fprintf(stderr, "bench_passthrough: writing test files: %s\n", strerror(errno));
      return 1;
    }
    close(fd);
  }

  std::vector<uint64_t> plain, shimmed;
  bool ok = true;
  for (long r = 0; r < runs && ok; ++r) {
    // Alternate which goes first, so drift (frequency, caches) hits both.
    uint64_t a = 0, b = 0;
    if (r % 2 == 0) {
      ok = timed_child(self, "", dir, files, passes, &a) && timed_child(self, shim, dir, files, passes, &b);
    } else {
      ok = timed_child(self, shim, dir, files, passes, &b) && timed_child(self, "", dir, files, passes, &a);
    }
    plain.push_back(a);
    shimmed.push_back(b);
  }
  std::vector<double> dirfd_plain, dirfd_shim, lseek_plain, lseek_shim;
  for (int r = 0; r < 5 && ok; ++r) {
    double d = 0, l = 0;
    const std::string a = run_child(self, "", "--calls", "10000000");
    const std::string b = run_child(self, shim, "--calls", "10000000");
    ok = !a.empty() && !b.empty();
    if (!ok) break;
    sscanf(a.c_str(), "%lf %lf", &d, &l);
    dirfd_plain.push_back(d);
    lseek_plain.push_back(l);
    sscanf(b.c_str(), "%lf %lf", &d, &l);
    dirfd_shim.push_back(d);
    lseek_shim.push_back(l);
  }
  std::vector<uint64_t> start_plain, start_shim;
  for (int r = 0; r < 21 && ok; ++r) {
    uint64_t a = 0, b = 0;
    ok = timed_child(self, "", dir, 0, 0, &a) && timed_child(self, shim, dir, 0, 0, &b);
    start_plain.push_back(a);
    start_shim.push_back(b);
  }
  for (long i = 0; i < files; ++i) unlink(file_name(dir, i).c_str());
  rmdir(dir.c_str());
  if (!ok) {
    fprintf(stderr, "bench_passthrough: a worker failed\n");
    return 1;
  }

  const double p = static_cast<double>(median(plain)), s = static_cast<double>(median(shimmed));
  const auto [pmin, pmax] = std::minmax_element(plain.begin(), plain.end());
  // open, fstat, close, and the reads: full chunks, the rest, the one at EOF.
  const long reads = static_cast<long>((static_cast<size_t>(size) + kReadSize - 1) / kReadSize) + 1;
  const double calls = static_cast<double>(files) * static_cast<double>(3 + reads);
  printf("bench_passthrough: %ld files x %ld bytes, open+fstat+%ld reads+close; median over %ld runs "
         "of the best of %ld passes\n", files, size, reads, runs, passes);
  printf("  without shim: %8.2f ms  (%.2f us/file)\n", p / 1e6, p / 1e3 / static_cast<double>(files));
  printf("  with shim:    %8.2f ms  (%.2f us/file)\n", s / 1e6, s / 1e3 / static_cast<double>(files));
  printf("  overhead:     %+.2f %%  (~%+.1f ns per intercepted call; target <= 3 %%)\n",
         (s / p - 1.0) * 100.0, (s - p) / calls);
  printf("  noise:        plain runs spread %.1f %% (max-min over median)\n",
         static_cast<double>(*pmax - *pmin) / p * 100.0);
  const double per_call = median(dirfd_shim) - median(dirfd_plain);
  printf("  per call:     dirfd %.2f -> %.2f ns, lseek %.1f -> %.1f ns: the shim adds ~%.1f ns a call,\n"
         "                i.e. ~%.3f %% of this workload's time per file (the noise-free estimate)\n",
         median(dirfd_plain), median(dirfd_shim), median(lseek_plain), median(lseek_shim), per_call,
         per_call * (3 + static_cast<double>(reads)) / (p / static_cast<double>(files)) * 100.0);
  printf("  runs (ms) plain:");
  for (uint64_t v : plain) printf(" %.2f", static_cast<double>(v) / 1e6);
  printf("\n  runs (ms) shim: ");
  for (uint64_t v : shimmed) printf(" %.2f", static_cast<double>(v) / 1e6);
  printf("\n");
  const double sp = static_cast<double>(median(start_plain)), ss = static_cast<double>(median(start_shim));
  printf("  process start+exit (median of 21): %.0f us plain, %.0f us with the shim (%+.0f us)\n",
         sp / 1e3, ss / 1e3, (ss - sp) / 1e3);
  return 0;
}
