// SPDX-License-Identifier: Apache-2.0
// The page cache's own speed, each number beside its limit measured in the
// same run: warm RAM-tier reads of 100 KiB objects against memcpy of the
// same bytes; two processes against one; spill-tier reads against pread of
// the same bytes from a local file. Prints medians of several runs and the
// ratios, as a Markdown section (stdout, or --out FILE), and the figures
// keyed by target id as json for bench/report.py (--json FILE; by default
// --out with .json for .md). The targets and verdicts are bench/targets.py's.
//
//   bench_page_cache [--objects N] [--runs R] [--spill-dir DIR] [--out FILE] [--json FILE]
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "objcache/page_cache.h"
#include "spill/spill_store.h"

using namespace objcache;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kObj = 100 * 1024;

struct Args {
  int objects = 2000;
  int runs = 5;
  std::string spill_dir = "/var/tmp";
  std::string out;
  std::string json;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::vector<ObjectId> ids(int n) {
  std::vector<ObjectId> v;
  for (int i = 0; i < n; ++i) v.push_back(ObjectId::of("bench", "img/" + std::to_string(i) + ".jpg", "e"));
  return v;
}

std::vector<int> order(int n, std::uint64_t seed) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  return v;
}

PageFiller filler(int i) {
  return [i](std::span<std::byte> d) -> Result<std::size_t> {
    std::memset(d.data(), i & 0xff, d.size());
    return d.size();
  };
}

// One pass over every object through the cache; returns seconds.
double cache_pass(PageCache& pc, const std::vector<ObjectId>& id, std::uint64_t seed, std::vector<std::byte>& buf) {
  auto ord = order(static_cast<int>(id.size()), seed);
  auto t0 = Clock::now();
  for (int i : ord) {
    auto r = pc.read(PageRef{id[static_cast<std::size_t>(i)], 0, kObj, -1}, 0, buf, filler(i));
    if (!r || r->bytes != kObj) {
      std::fprintf(stderr, "bench: read failed\n");
      std::exit(1);
    }
  }
  return secs(t0, Clock::now());
}

// Runs body(k) in two child processes started together after each ran
// prepare(k) untimed; returns the slower child's seconds for body.
template <typename Prepare, typename Body>
double two_processes(Prepare prepare, Body body) {
  int go[2], ready[2], report[2];
  if (::pipe(go) != 0 || ::pipe(ready) != 0 || ::pipe(report) != 0) std::exit(1);
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = ::fork();
    if (kids[k] == 0) {
      prepare(k);
      char c = 'r';
      if (::write(ready[1], &c, 1) != 1 || ::read(go[0], &c, 1) != 1) ::_exit(1);
      double t = body(k);
      if (::write(report[1], &t, sizeof t) != sizeof t) ::_exit(1);
      ::_exit(0);
    }
  }
  char c;
  for (int k = 0; k < 2; ++k) {
    if (::read(ready[0], &c, 1) != 1) std::exit(1);
  }
  if (::write(go[1], "gg", 2) != 2) std::exit(1);
  double slowest = 0;
  for (int k = 0; k < 2; ++k) {
    double t = 0;
    if (::read(report[0], &t, sizeof t) != sizeof t) std::exit(1);
    slowest = std::max(slowest, t);
  }
  for (pid_t k : kids) ::waitpid(k, nullptr, 0);
  for (int fd : {go[0], go[1], ready[0], ready[1], report[0], report[1]}) ::close(fd);
  return slowest;
}

std::string machine() {
  std::string model = "?";
  if (FILE* f = std::fopen("/proc/cpuinfo", "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, "model name", 10) == 0) {
        model = std::strchr(line, ':') + 2;
        model.erase(model.find_last_not_of("\n") + 1);
        break;
      }
    }
    std::fclose(f);
  }
  return std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores, " + model;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  char buf[64];
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// One figure of results/page_cache.json: the value judged, how it reads,
// the settings it was measured at.
std::string json_figure(const char* id, double value, const char* shown_fmt, int objects) {
  char shown[128], out[512];
  std::snprintf(shown, sizeof shown, shown_fmt, value);
  std::snprintf(out, sizeof out, "  %s: {\"value\": %.4f, \"shown\": %s, \"at\": {\"objects\": %d}}",
                json_string(id).c_str(), value, json_string(shown).c_str(), objects);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--objects" && i + 1 < argc) a.objects = std::atoi(argv[++i]);
    else if (s == "--runs" && i + 1 < argc) a.runs = std::atoi(argv[++i]);
    else if (s == "--spill-dir" && i + 1 < argc) a.spill_dir = argv[++i];
    else if (s == "--out" && i + 1 < argc) a.out = argv[++i];
    else if (s == "--json" && i + 1 < argc) a.json = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: bench_page_cache [--objects N] [--runs R] [--spill-dir DIR] [--out FILE] [--json FILE]\n");
      return 2;
    }
  }
  if (a.json.empty() && !a.out.empty()) {
    bool md = a.out.size() > 3 && a.out.compare(a.out.size() - 3, 3, ".md") == 0;
    a.json = (md ? a.out.substr(0, a.out.size() - 3) : a.out) + ".json";
  }
  const std::string started = utc_now();
  const std::uint64_t total = static_cast<std::uint64_t>(a.objects) * kObj;
  auto id = ids(a.objects);
  std::vector<std::byte> buf(kObj);

  CacheConfig cfg;
  cfg.name = "bench-" + std::to_string(::getpid());
  cfg.memory = 1ull << 30;
  cfg.page_size = 1ull << 20;
  std::string spill = a.spill_dir + "/objcache-bench-" + std::to_string(::getpid());
  cfg.spill_dir = spill;
  cfg.spill_size = 2 * total + (64ull << 20);
  auto pc = PageCache::open(cfg);
  if (!pc) {
    std::fprintf(stderr, "bench: %s\n", pc.error().describe().c_str());
    return 1;
  }
  std::string segment = (*pc)->stats().segment_path;
  cache_pass(**pc, id, 1, buf);  // fill (and write through to spill)
  (*pc)->flush_spill();

  // memcpy of the same bytes in the same order: the limit for RAM reads.
  std::vector<std::byte> src(total);
  std::memset(src.data(), 1, src.size());
  std::vector<double> memcpy_s, ram_s, two_s, spill_s, file_s, restart_s;
  for (int r = 0; r < a.runs; ++r) {
    auto ord = order(a.objects, 100 + static_cast<std::uint64_t>(r));
    auto t0 = Clock::now();
    for (int i : ord) std::memcpy(buf.data(), src.data() + static_cast<std::size_t>(i) * kObj, kObj);
    asm volatile("" : : "r"(buf.data()) : "memory");
    memcpy_s.push_back(secs(t0, Clock::now()));
    ram_s.push_back(cache_pass(**pc, id, 200 + static_cast<std::uint64_t>(r), buf));
  }
  // The same memcpy in two processes at once: what the machine's memory
  // system allows two readers, the limit for the two-process row.
  std::vector<double> memcpy2_s;
  for (int r = 0; r < a.runs; ++r) {
    std::vector<std::byte> b(kObj);
    auto copy_all = [&](int k) {
      auto t0 = Clock::now();
      for (int i : order(a.objects, 700 + static_cast<std::uint64_t>(k)))
        std::memcpy(b.data(), src.data() + static_cast<std::size_t>(i) * kObj, kObj);
      asm volatile("" : : "r"(b.data()) : "memory");
      return secs(t0, Clock::now());
    };
    memcpy2_s.push_back(two_processes(copy_all, copy_all));  // the untimed pass faults pages in
  }
  src.clear();
  src.shrink_to_fit();

  // Two processes, each a full pass, started together: aggregate rate.
  // Each child maps the segment and makes one untimed pass first (its page
  // tables), as a DataLoader worker has after its first epoch.
  for (int r = 0; r < a.runs; ++r) {
    std::unique_ptr<PageCache> child;
    std::vector<std::byte> b(kObj);
    two_s.push_back(two_processes(
        [&](int k) {
          auto opened = PageCache::open(cfg);
          if (!opened) ::_exit(1);
          child = std::move(*opened);
          cache_pass(*child, id, 300 + static_cast<std::uint64_t>(k), b);
        },
        [&](int k) { return cache_pass(*child, id, 310 + static_cast<std::uint64_t>(k), b); }));
  }

  // Spill tier: a fresh RAM segment (as after a reboot) over a warm spill
  // file, against pread of the same bytes from a local file.
  std::string local = spill + "/local-copy";
  {
    int fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::byte> chunk(kObj);
    for (int i = 0; i < a.objects; ++i) {
      std::memset(chunk.data(), i & 0xff, kObj);
      if (::write(fd, chunk.data(), kObj) != static_cast<ssize_t>(kObj)) return 1;
    }
    ::close(fd);
  }
  pc->reset();
  auto tier = spill::SpillStore::open(spill::SpillOptions::from(cfg));
  if (!tier) {
    std::fprintf(stderr, "bench: %s\n", tier.error().describe().c_str());
    return 1;
  }
  for (int r = 0; r < a.runs; ++r) {
    // The tier itself: a lookup in the shared index, pread, checksum check.
    auto ord = order(a.objects, 400 + static_cast<std::uint64_t>(r));
    auto t0 = Clock::now();
    for (int i : ord) {
      auto got = (*tier)->read(spill::BlockKey{id[static_cast<std::size_t>(i)].lo, id[static_cast<std::size_t>(i)].hi, 0}, buf);
      if (!got || *got != kObj) {
        std::fprintf(stderr, "bench: spill miss for object %d\n", i);
        return 1;
      }
    }
    spill_s.push_back(secs(t0, Clock::now()));

    int fd = ::open(local.c_str(), O_RDONLY);
    ord = order(a.objects, 500 + static_cast<std::uint64_t>(r));
    t0 = Clock::now();
    for (int i : ord) {
      if (::pread(fd, buf.data(), kObj, static_cast<off_t>(i) * static_cast<off_t>(kObj)) != static_cast<ssize_t>(kObj)) return 1;
    }
    file_s.push_back(secs(t0, Clock::now()));
    ::close(fd);

    // End to end after a "reboot": a new, empty segment over the warm
    // spill; each read also allocates and fills RAM pages.
    ::unlink(segment.c_str());
    auto fresh = PageCache::open(cfg);
    if (!fresh) return 1;
    restart_s.push_back(cache_pass(**fresh, id, 600 + static_cast<std::uint64_t>(r), buf));
    if ((*fresh)->stats().total.spill_hits != static_cast<std::uint64_t>(a.objects)) {
      std::fprintf(stderr, "bench: not every read after the restart was a spill hit\n");
    }
  }
  tier->reset();
  ::unlink(segment.c_str());
  std::filesystem::remove_all(spill);

  auto gbs = [&](double s) { return static_cast<double>(total) / s / 1e9; };
  auto ops = [&](double s) { return a.objects / s; };
  double m_memcpy = median(memcpy_s), m_ram = median(ram_s), m_two = median(two_s);
  double m_memcpy2 = median(memcpy2_s);
  const double first_spill = spill_s.front();  // the run that checked every block and made the marks
  double m_spill = median(spill_s), m_file = median(file_s), m_restart = median(restart_s);
  char out[4096];
  std::snprintf(out, sizeof out,
                "## Page cache (bench_page_cache)\n\n"
                "%d objects of 100 KiB, median of %d runs; machine: %s.\n\n"
                "| measurement | GB/s | objects/s | ratio | target id |\n|---|---|---|---|---|\n"
                "| memcpy of the same bytes (limit) | %.2f | %.0f | | |\n"
                "| RAM tier, 1 process | %.2f | %.0f | %.2f of memcpy | page_cache.ram |\n"
                "| memcpy, 2 processes at once (limit for 2) | %.2f | %.0f | %.2f x 1 process | |\n"
                "| RAM tier, 2 processes (aggregate) | %.2f | %.0f | %.2f x 1 process; %.2f of 2-process memcpy | "
                "page_cache.ram_2proc |\n"
                "| pread from a local file, page cache warm (limit) | %.2f | %.0f | | |\n"
                "| spill tier reads | %.2f | %.0f | %.2f of pread | page_cache.spill, page_cache.spill_marked |\n"
                "| spill tier reads, first run (each block checksummed, then marked good) | %.2f | %.0f | %.2f of pread | (info) |\n"
                "| after a restart: new segment, warm spill, RAM refilled | %.2f | %.0f | %.2f of pread | (info) |\n\n"
                "Targets and verdicts: `bench/targets.py`, judged in `bench/REPORT.md`. Date: %s.\n\n"
                "Reproduce: `make bench` (or `build/bench/bench_page_cache --runs %d`).\n",
                a.objects, a.runs, machine().c_str(), gbs(m_memcpy), ops(m_memcpy), gbs(m_ram), ops(m_ram),
                m_memcpy / m_ram, 2 * gbs(m_memcpy2), 2 * ops(m_memcpy2), m_memcpy * 2 / m_memcpy2,
                2 * gbs(m_two), 2 * ops(m_two), m_ram * 2 / m_two, m_memcpy2 / m_two, gbs(m_file), ops(m_file),
                gbs(m_spill), ops(m_spill), m_file / m_spill, gbs(first_spill), ops(first_spill),
                m_file / first_spill, gbs(m_restart), ops(m_restart), m_file / m_restart,
                started.c_str(), a.runs);
  std::fputs(out, stdout);
  if (!a.out.empty()) {
    FILE* f = std::fopen(a.out.c_str(), "w");
    if (f == nullptr) return 1;
    std::fputs(out, f);
    std::fclose(f);
  }
  if (!a.json.empty()) {
    std::string md = a.out.empty() ? "null" : json_string(std::filesystem::path(a.out).filename().string());
    std::string doc = "{\"bench\": \"page_cache\", \"script\": \"bench/bench_page_cache.cpp\", \"markdown\": " + md +
                      ",\n \"command\": " + json_string("build/bench/bench_page_cache --runs " + std::to_string(a.runs)) +
                      ", \"date\": " + json_string(started) + ", \"machine\": " + json_string(machine()) +
                      ", \"runs\": " + std::to_string(a.runs) + ",\n \"figures\": {\n" +
                      json_figure("page_cache.ram", m_memcpy / m_ram, "%.2f of memcpy", a.objects) + ",\n" +
                      json_figure("page_cache.ram_2proc", m_ram * 2 / m_two, "%.2fx 1 process", a.objects) + ",\n" +
                      json_figure("page_cache.spill", m_file / m_spill, "%.2f of pread", a.objects) + ",\n" +
                      json_figure("page_cache.spill_marked", m_file / m_spill, "%.2f of pread", a.objects) + "\n },\n" +
                      " \"information\": {\"restart_over_pread\": " + std::to_string(m_file / m_restart) + "}}\n";
    std::string tmp = a.json + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr || std::fputs(doc.c_str(), f) < 0 || std::fclose(f) != 0 ||
        std::rename(tmp.c_str(), a.json.c_str()) != 0) {
      std::fprintf(stderr, "bench: cannot write %s\n", a.json.c_str());
      return 1;
    }
  }
  return 0;
}
