// SPDX-License-Identifier: Apache-2.0
// A multi-threaded loader over objcache::Cache: reads every object named on
// the command line (s3://bucket/key or a path under a mount), whole, into
// each thread's own buffer, and prints files/s and bytes/s.
//
//   loader [--config FILE] [--threads N] [--repeat R] [--prefetch] [--posix] [--step-us U] WHERE|@LIST...
//
// --prefetch first tells the cache the order (Cache::prefetch). Without
// --config the configuration is found as the shim finds it (OBJCACHE_CONFIG...).
// @LIST names a file of names, one a line. --posix reads the names as
// files with open/pread/close instead (local disk, or a mount under the
// LD_PRELOAD shim): the same loop, to compare. --step-us U waits U
// microseconds after each file, as a training step on an accelerator
// would (the CPU stays free).
#include <fcntl.h>
#include <objcache/cache.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  std::string config;
  int threads = 8, repeat = 1;
  long step_us = 0;
  bool prefetch = false, posix = false;
  std::vector<std::string> keys;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config = argv[++i];
    else if (a == "--threads" && i + 1 < argc) threads = std::max(1, std::atoi(argv[++i]));
    else if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    else if (a == "--prefetch") prefetch = true;
    else if (a == "--posix") posix = true;
    else if (a == "--step-us" && i + 1 < argc) step_us = std::max(0L, std::atol(argv[++i]));
    else if (a.size() > 1 && a[0] == '@') {  // @FILE: names one a line
      std::FILE* f = std::fopen(a.c_str() + 1, "r");
      if (f == nullptr) {
        std::fprintf(stderr, "loader: %s: %s\n", a.c_str() + 1, std::strerror(errno));
        return 2;
      }
      char line[4096];
      while (std::fgets(line, sizeof line, f) != nullptr) {
        std::string k(line);
        while (!k.empty() && (k.back() == '\n' || k.back() == '\r')) k.pop_back();
        if (!k.empty()) keys.push_back(k);
      }
      std::fclose(f);
    } else keys.push_back(a);
  }
  if (keys.empty()) {
    std::fprintf(stderr, "usage: loader [--config FILE] [--threads N] [--repeat R] [--prefetch] WHERE...\n");
    return 2;
  }
  std::unique_ptr<objcache::Cache> opened;
  if (!posix && config.empty()) {
    auto found = objcache::find_config_path();
    if (!found) {
      std::fprintf(stderr, "loader: no configuration (--config or OBJCACHE_CONFIG)\n");
      return 2;
    }
    config = *found;
  }
  if (!posix) {
    auto cache = objcache::Cache::open_file(config);
    if (!cache) {
      std::fprintf(stderr, "loader: %s\n", cache.error().describe().c_str());
      return 1;
    }
    opened = std::move(*cache);
  }
  const auto start = std::chrono::steady_clock::now();
  if (prefetch && opened) {
    auto q = opened->prefetch(keys);
    if (!q) std::fprintf(stderr, "loader: prefetch: %s\n", q.error().describe().c_str());
  }
  std::atomic<std::size_t> next{0};       // relaxed: hands out indices only
  std::atomic<std::uint64_t> bytes{0};    // relaxed: summed after join
  std::atomic<std::uint64_t> files{0}, errors{0};
  const std::size_t total = keys.size() * static_cast<std::size_t>(repeat);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      std::vector<std::byte> buf;
      bool first = true;
      for (std::size_t i = next.fetch_add(1, std::memory_order_relaxed); i < total;
           i = next.fetch_add(1, std::memory_order_relaxed)) {
        if (step_us > 0 && !first) {
          std::this_thread::sleep_for(std::chrono::microseconds(step_us));  // the previous file's step
        }
        first = false;
        const std::string& k = keys[i % keys.size()];
        if (posix) {
          const int fd = ::open(k.c_str(), O_RDONLY | O_CLOEXEC);
          struct stat st;
          if (fd < 0 || ::fstat(fd, &st) != 0) {
            std::fprintf(stderr, "loader: %s: %s\n", k.c_str(), std::strerror(errno));
            errors.fetch_add(1, std::memory_order_relaxed);
            if (fd >= 0) ::close(fd);
            continue;
          }
          buf.resize(static_cast<std::size_t>(st.st_size));
          const ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
          ::close(fd);
          if (n != static_cast<ssize_t>(buf.size())) {
            errors.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          bytes.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
          files.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        auto f = opened->open(k);
        if (!f) {
          std::fprintf(stderr, "loader: %s: %s\n", k.c_str(), f.error().describe().c_str());
          errors.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        buf.resize(f->size());
        auto r = f->pread(0, buf);
        if (!r) {
          std::fprintf(stderr, "loader: %s: %s\n", k.c_str(), r.error().describe().c_str());
          errors.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        bytes.fetch_add(*r, std::memory_order_relaxed);
        files.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : pool) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("loader: %llu files, %llu bytes, %d threads, %.3f s: %.1f files/s, %.1f MiB/s\n",
              static_cast<unsigned long long>(files.load()), static_cast<unsigned long long>(bytes.load()), threads,
              s, static_cast<double>(files.load()) / s, static_cast<double>(bytes.load()) / s / (1 << 20));
  return errors.load() == 0 ? 0 : 1;
}
