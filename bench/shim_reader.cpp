// SPDX-License-Identifier: Apache-2.0
// The small native reader of bench/bench_shim.py: one epoch over a list of
// files, each opened, read to EOF into a 128 KiB buffer and closed, with
// POSIX calls only (what a C data loader does). Run with or without the
// shim preloaded; the list names local or mounted paths.
//
//   shim_reader LIST [--expect-bytes N] [--verify] [--epochs E]
//
// LIST holds one path a line. The clock starts after the list is read, so
// the time excludes process start and the list. Prints one line about the
// first epoch:
//   files=N bytes=B ns=T files_per_s=F sample=S cpu_ns=C minflt=M [hash=H] [then_files_per_s=G]
// S XORs the first 8 bytes (little-endian) of every file, a cheap check that
// each read returned the file's own bytes (bench_shim.py computes the same
// from the local copies); C is the process's user+system CPU time and M its
// minor page faults during the epoch. With --verify the epoch also folds
// every byte into an FNV-1a hash (untimed use: it is slow). With --epochs E
// (> 1) the same process then reads the list E-1 more times and G is the
// fastest of those (a long-lived worker's later epochs).
// Exit 1 on any error, naming the path, when --expect-bytes is given and an
// epoch read another number of bytes, or when epochs disagree.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
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

uint64_t tv_ns(const timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1000000000u + static_cast<uint64_t>(tv.tv_usec) * 1000u;
}

constexpr size_t kBufSize = 128 * 1024;
constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

bool read_list(const char* list, std::vector<std::string>* paths) {
  FILE* f = fopen(list, "re");
  if (f == nullptr) {
    fprintf(stderr, "shim_reader: %s: %s\n", list, strerror(errno));
    return false;
  }
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n = 0;
  while ((n = getline(&line, &cap, f)) > 0) {
    if (line[n - 1] == '\n') line[--n] = '\0';
    if (n > 0) paths->emplace_back(line, static_cast<size_t>(n));
  }
  free(line);
  fclose(f);
  return true;
}

struct Epoch {
  bool ok = false;
  uint64_t bytes = 0, sample = 0, hash = kFnvOffset;
  uint64_t ns = 0, cpu_ns = 0, minflt = 0;
};

Epoch run_epoch(const std::vector<std::string>& paths, std::vector<unsigned char>& buf, bool verify) {
  Epoch e;
  rusage r0{}, r1{};
  getrusage(RUSAGE_SELF, &r0);
  const uint64_t t0 = now_ns();
  for (const std::string& p : paths) {
    const int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fprintf(stderr, "shim_reader: open %s: %s\n", p.c_str(), strerror(errno));
      return e;
    }
    // The file's bytes go to the buffer one after another, wrapping when it
    // is full, so its first 8 bytes are at buf[0..8) after the first reads.
    size_t off = 0;
    uint64_t file_bytes = 0, file_hash = kFnvOffset;
    bool sampled = false;
    for (;;) {
      const ssize_t n = read(fd, buf.data() + off, kBufSize - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        fprintf(stderr, "shim_reader: read %s: %s\n", p.c_str(), strerror(errno));
        close(fd);
        return e;
      }
      if (n == 0) break;
      if (verify) {
        for (ssize_t i = 0; i < n; ++i) file_hash = (file_hash ^ buf[off + static_cast<size_t>(i)]) * kFnvPrime;
      }
      file_bytes += static_cast<uint64_t>(n);
      off += static_cast<size_t>(n);
      if (!sampled && file_bytes >= 8) {
        uint64_t first = 0;
        for (int i = 7; i >= 0; --i) first = (first << 8) | buf[static_cast<size_t>(i)];
        e.sample ^= first;
        sampled = true;
      }
      if (off == kBufSize) off = 0;
    }
    if (!sampled && file_bytes > 0) {  // a file shorter than 8 bytes
      uint64_t first = 0;
      for (size_t i = file_bytes; i-- > 0;) first = (first << 8) | buf[i];
      e.sample ^= first;
    }
    if (close(fd) != 0) {
      fprintf(stderr, "shim_reader: close %s: %s\n", p.c_str(), strerror(errno));
      return e;
    }
    e.bytes += file_bytes;
    e.hash = (e.hash ^ file_hash) * kFnvPrime;
  }
  e.ns = now_ns() - t0;
  getrusage(RUSAGE_SELF, &r1);
  e.cpu_ns = tv_ns(r1.ru_utime) + tv_ns(r1.ru_stime) - tv_ns(r0.ru_utime) - tv_ns(r0.ru_stime);
  e.minflt = static_cast<uint64_t>(r1.ru_minflt - r0.ru_minflt);
  e.ok = true;
  return e;
}

double rate(size_t files, uint64_t ns) {
  return ns > 0 ? static_cast<double>(files) / (static_cast<double>(ns) / 1e9) : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  bool verify = false, usage = argc < 2;
  long long expect = -1;
  long epochs = 1;
  for (int i = 2; i < argc && !usage; ++i) {
    if (strcmp(argv[i], "--verify") == 0) {
      verify = true;
    } else if (strcmp(argv[i], "--expect-bytes") == 0 && i + 1 < argc) {
      expect = atoll(argv[++i]);
    } else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) {
      epochs = atol(argv[++i]);
      usage = epochs < 1;
    } else {
      usage = true;
    }
  }
  if (usage) {
    fprintf(stderr, "usage: %s LIST [--expect-bytes N] [--verify] [--epochs E]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> paths;
  if (!read_list(argv[1], &paths)) return 1;
  std::vector<unsigned char> buf(kBufSize);

  const Epoch first = run_epoch(paths, buf, verify);
  if (!first.ok) return 1;
  uint64_t best_then = 0;
  for (long i = 1; i < epochs; ++i) {
    const Epoch e = run_epoch(paths, buf, verify);
    if (!e.ok) return 1;
    if (e.bytes != first.bytes || e.sample != first.sample || e.hash != first.hash) {
      fprintf(stderr, "shim_reader: epoch %ld read other bytes than epoch 1 (%" PRIu64 " vs %" PRIu64 ")\n", i + 1,
              e.bytes, first.bytes);
      return 1;
    }
    if (best_then == 0 || e.ns < best_then) best_then = e.ns;
  }

  printf("files=%zu bytes=%" PRIu64 " ns=%" PRIu64 " files_per_s=%.1f sample=%016" PRIx64 " cpu_ns=%" PRIu64
         " minflt=%" PRIu64,
         paths.size(), first.bytes, first.ns, rate(paths.size(), first.ns), first.sample, first.cpu_ns, first.minflt);
  if (verify) printf(" hash=%016" PRIx64, first.hash);
  if (epochs > 1) printf(" then_files_per_s=%.1f", rate(paths.size(), best_then));
  printf("\n");
  if (expect >= 0 && first.bytes != static_cast<uint64_t>(expect)) {
    fprintf(stderr, "shim_reader: read %" PRIu64 " bytes, expected %lld\n", first.bytes, expect);
    return 1;
  }
  return 0;
}
