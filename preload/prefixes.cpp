// SPDX-License-Identifier: Apache-2.0
// The configuration scanner and the lexical mount matching of prefixes.h.
// The rules mirror libcache exactly where the answer is "not ours"
// (config/checks.cpp find_config_path and normalize_mount_path,
// mounts/mount_table.cpp resolve and above); every other answer is kMaybe,
// which only costs loading the engine, whose answer is exact.
#include "prefixes.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "real.h"

namespace objcache::preload::prefixes {

namespace {

constexpr std::size_t kMaxPath = PATH_MAX - 1;  // the kernel's longest path (PATH_MAX counts the NUL)
constexpr std::size_t kMaxConfigBytes = 64u << 20;  // a bigger file goes to the full parser
constexpr unsigned kMaxKeysPerTable = 64;          // more: the full parser checks duplicates

struct Mount {
  const char* path;  // normalized: "/a/b", no trailing '/', never "/"
  std::size_t len;
};

// Written once by load() (the constructor, before any other thread of the
// program can exist or any entry point can see mounts_active), then only
// read; never freed.
Mount* g_mounts = nullptr;
std::size_t g_count = 0;
unsigned g_max_depth = 0;  // components of the deepest mount path
// The distinct first components of the mount paths ("mnt" for /mnt/data),
// when there are few: most paths a program names (/usr/..., /proc/...)
// are told apart by their first component alone. 0: not kept (too many).
constexpr std::size_t kMaxFirsts = 32;
Mount g_firsts[kMaxFirsts];
std::size_t g_first_count = 0;

bool less(const Mount& a, const Mount& b) noexcept {
  const int c = std::memcmp(a.path, b.path, std::min(a.len, b.len));
  return c != 0 ? c < 0 : a.len < b.len;
}

// ---- components --------------------------------------------------------------

// The next component of p (skipping '/', empty and "." ones); false at the end.
bool next_component(const char*& p, const char*& c, std::size_t& n) noexcept {
  for (;;) {
    while (*p == '/') ++p;
    if (*p == '\0') return false;
    c = p;
    while (*p != '/' && *p != '\0') ++p;
    n = static_cast<std::size_t>(p - c);
    if (!(n == 1 && c[0] == '.')) return true;
  }
}

bool has_dotdot(const char* path) noexcept {
  for (const char* p = path; (p = std::strstr(p, "..")) != nullptr; p += 2) {
    const bool starts = p == path || p[-1] == '/';
    const bool ends = p[2] == '\0' || p[2] == '/';
    if (starts && ends) return true;
  }
  return false;
}

// Compares mount path m with "/c1/.../ck", the first k components of the
// absolute path `path` (which has at least k), in byte order.
int compare_prefix(const Mount& m, const char* path, unsigned k) noexcept {
  std::size_t mi = 0;
  const char* p = path;
  const char* c = nullptr;
  std::size_t n = 0;
  auto step = [&](unsigned char want) -> int {
    if (mi == m.len) return -1;
    const auto have = static_cast<unsigned char>(m.path[mi++]);
    return have == want ? 0 : (have < want ? -1 : 1);
  };
  for (unsigned i = 0; i < k; ++i) {
    if (!next_component(p, c, n)) return 1;  // unreachable: the caller counted k
    if (int r = step('/'); r != 0) return r;
    for (std::size_t j = 0; j < n; ++j) {
      if (int r = step(static_cast<unsigned char>(c[j])); r != 0) return r;
    }
  }
  return mi == m.len ? 0 : 1;
}

// Keeps the first components of the (sorted) mounts, if few.
void note_firsts() noexcept {
  g_first_count = 0;
  for (std::size_t i = 0; i < g_count; ++i) {
    const char* c = g_mounts[i].path + 1;
    const char* slash = static_cast<const char*>(std::memchr(c, '/', g_mounts[i].len - 1));
    const std::size_t n = slash != nullptr ? static_cast<std::size_t>(slash - c) : g_mounts[i].len - 1;
    const Mount& last = g_firsts[g_first_count > 0 ? g_first_count - 1 : 0];
    if (g_first_count > 0 && last.len == n && std::memcmp(last.path, c, n) == 0) continue;  // sorted: repeats are adjacent
    if (g_first_count == kMaxFirsts) {
      g_first_count = 0;
      return;
    }
    g_firsts[g_first_count++] = Mount{c, n};
  }
}

// False when the first component of an absolute path without ".." is no
// mount's: it is then in none (exact).
bool first_may_match(const char* path) noexcept {
  if (g_first_count == 0) return true;
  const char* p = path;
  const char* c = nullptr;
  std::size_t n = 0;
  if (!next_component(p, c, n)) return false;  // "/" itself: never in a mount ("/" is refused)
  for (std::size_t i = 0; i < g_first_count; ++i) {
    if (g_firsts[i].len == n && std::memcmp(g_firsts[i].path, c, n) == 0) return true;
  }
  return false;
}

// Whether an absolute path without ".." lies in a mount: some mount path is
// its first k components, for a k up to the deepest mount.
bool under_a_mount(const char* path) noexcept {
  if (!first_may_match(path)) return false;
  unsigned depth = 0;
  for (const char *p = path, *c = nullptr; depth < g_max_depth;) {
    std::size_t n = 0;
    if (!next_component(p, c, n)) break;
    ++depth;
    const Mount* lo = g_mounts;
    const Mount* hi = g_mounts + g_count;
    while (lo < hi) {  // binary search for an exact match of the first `depth` components
      const Mount* mid = lo + (hi - lo) / 2;
      const int r = compare_prefix(*mid, path, depth);
      if (r == 0) return true;
      if (r < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
  }
  return false;
}

// Whether the normalized absolute path norm (len bytes) is a strict
// ancestor of a mount path ("/" is one of every mount).
bool above_a_mount(const char* norm, std::size_t len) noexcept {
  if (len == 1) return g_count > 0;
  const Mount key{norm, len};
  const Mount* it = std::lower_bound(g_mounts, g_mounts + g_count, key, less);
  for (; it != g_mounts + g_count && it->len > len && std::memcmp(it->path, norm, len) == 0; ++it) {
    if (it->path[len] == '/') return true;
  }
  return false;
}

// ---- the shim's current directory ----------------------------------------------
// A seqlock: chdir is rare, readers copy the bytes (atomic loads, so a
// racing writer is never a data race) and retry if the sequence moved. No
// fences (ThreadSanitizer does not model them): the writer's byte stores
// are release, so a reader that sees a new byte also sees the odd sequence
// before it; the reader's byte loads are acquire, so its re-check of the
// sequence is not done before them.

alignas(64) char g_cwd[PATH_MAX];
std::atomic<std::size_t> g_cwd_len{0};  // 0: none (relative paths are then never ours)
std::atomic<unsigned> g_cwd_seq{0};
// Read from the kernel on the first relative path, not at start (a
// process that never names one never pays the system call).
std::atomic<bool> g_cwd_known{false};

// Copies the current directory into out (PATH_MAX bytes); its length, 0 if unknown.
std::size_t read_cwd(char* out) noexcept {
  for (;;) {
    // acquire: the bytes read below are at least as new as this sequence.
    const unsigned s0 = g_cwd_seq.load(std::memory_order_acquire);
    if ((s0 & 1) != 0) continue;  // a writer is in the middle
    const std::size_t len = g_cwd_len.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < len && i < PATH_MAX; ++i) {
      out[i] = std::atomic_ref<char>(g_cwd[i]).load(std::memory_order_acquire);
    }
    if (g_cwd_seq.load(std::memory_order_relaxed) == s0) return len;
  }
}

// The kernel's current directory into buf (PATH_MAX bytes); its length, 0
// when it has none we can name (removed, unreachable, too long).
std::size_t kernel_cwd(char* buf) noexcept {
  const long n = ::syscall(SYS_getcwd, buf, PATH_MAX);
  if (n <= 1 || buf[0] != '/') return 0;  // n counts the NUL
  return static_cast<std::size_t>(n - 1);
}

// Reads the kernel's cwd and stores it, as the one writer: the system call
// is made inside the write section, so two refreshes (a chdir racing a
// first relative path) store in the order they read.
void store_kernel_cwd() noexcept {
  unsigned s = g_cwd_seq.load(std::memory_order_relaxed);
  // One writer at a time: take the sequence from even to odd.
  while ((s & 1) != 0 || !g_cwd_seq.compare_exchange_weak(s, s + 1, std::memory_order_acquire)) {
    s = g_cwd_seq.load(std::memory_order_relaxed);
  }
  char buf[PATH_MAX];
  const std::size_t len = kernel_cwd(buf);
  // release: a reader that sees a new byte (or length) also sees the odd sequence.
  for (std::size_t i = 0; i < len; ++i) std::atomic_ref<char>(g_cwd[i]).store(buf[i], std::memory_order_release);
  g_cwd_len.store(len, std::memory_order_release);
  // release: publishes the bytes with the even sequence.
  g_cwd_seq.store(s + 2, std::memory_order_release);
}


// ---- the configuration file -------------------------------------------------------

bool exists(const char* path) noexcept {
  struct stat st {};
  return real::fn<Sym::stat>()(path, &st) == 0;
}

// libcache's find_config_path (config/checks.cpp), into out (PATH_MAX bytes).
bool find_config(char* out) noexcept {
  const char* env = secure_getenv("OBJCACHE_CONFIG");
  if (env != nullptr && env[0] != '\0') {
    const std::size_t n = std::strlen(env);
    if (n >= PATH_MAX) return false;  // the full parser would fail to open it: kUnsure below
    std::memcpy(out, env, n + 1);
    return true;
  }
  const char* home = secure_getenv("HOME");
  if (home != nullptr && home[0] == '/') {
    std::size_t n = std::strlen(home);
    while (n > 0 && home[n - 1] == '/') --n;
    constexpr char kRel[] = "/.config/objcache/config.toml";
    if (n + sizeof kRel <= PATH_MAX) {
      std::memcpy(out, home, n);
      std::memcpy(out + n, kRel, sizeof kRel);
      if (exists(out)) return true;
    }
  }
  constexpr char kSystem[] = "/etc/objcache/config.toml";
  if (exists(kSystem)) {
    std::memcpy(out, kSystem, sizeof kSystem);
    return true;
  }
  return false;
}

// The scanner. Each method answers false for "cannot be sure".
class Scanner {
 public:
  Scanner(const char* text, std::size_t size, char* arena, Mount* mounts) noexcept
      : p_(text), end_(text + size), arena_(arena), mounts_(mounts) {}

  bool run() noexcept {
    while (p_ < end_) {
      const char* eol = static_cast<const char*>(std::memchr(p_, '\n', static_cast<std::size_t>(end_ - p_)));
      const char* line_end = eol != nullptr ? eol : end_;
      if (line_end > p_ && line_end[-1] == '\r') --line_end;  // CRLF
      if (!line(p_, line_end)) return false;
      p_ = eol != nullptr ? eol + 1 : end_;
    }
    return end_table();
  }
  std::size_t count() const noexcept { return count_; }

 private:
  enum class Table { kRoot, kCache, kStore, kLog, kMount };

  static bool space(char c) noexcept { return c == ' ' || c == '\t'; }
  static bool bare(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  }
  // Plain ASCII text: no control characters but tab, nothing that is not
  // ASCII (the full parser checks UTF-8), no stray CR.
  static bool plain(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u < 0x7f) || c == '\t';
  }

  // A value other than a string that TOML takes as one: true, false, or a
  // number or date (a digit first, after an optional sign). The full parser
  // checks the rest of its spelling when the engine loads.
  static bool plain_value(const char* v, std::size_t n) noexcept {
    if ((n == 4 && std::memcmp(v, "true", 4) == 0) || (n == 5 && std::memcmp(v, "false", 5) == 0)) return true;
    std::size_t i = n > 0 && (v[0] == '+' || v[0] == '-') ? 1 : 0;
    return i < n && v[i] >= '0' && v[i] <= '9';
  }

  static const char* skip_space(const char* p, const char* e) noexcept {
    while (p < e && space(*p)) ++p;
    return p;
  }
  // The rest of a line after a value or header: spaces, then nothing or a comment.
  static bool rest_is_empty(const char* p, const char* e) noexcept {
    p = skip_space(p, e);
    if (p == e) return true;
    if (*p != '#') return false;
    for (; p < e; ++p) {
      if (!plain(*p)) return false;
    }
    return true;
  }

  bool line(const char* p, const char* e) noexcept {
    p = skip_space(p, e);
    if (p == e) return true;
    if (*p == '#') return rest_is_empty(p, e);
    if (*p == '[') return header(p, e);
    return key_value(p, e);
  }

  bool header(const char* p, const char* e) noexcept {
    const bool array = e - p >= 2 && p[1] == '[';
    p = skip_space(p + (array ? 2 : 1), e);
    const char* name = p;
    while (p < e && bare(*p)) ++p;
    const std::size_t n = static_cast<std::size_t>(p - name);
    p = skip_space(p, e);
    if (array) {
      if (e - p < 2 || p[0] != ']' || p[1] != ']') return false;
      p += 2;
    } else {
      if (p == e || *p != ']') return false;
      ++p;
    }
    if (!rest_is_empty(p, e) || !end_table()) return false;
    auto is = [&](const char* word) { return std::strlen(word) == n && std::memcmp(name, word, n) == 0; };
    if (array) {
      if (!is("mount")) return false;
      table_ = Table::kMount;
      has_path_ = false;
      return true;
    }
    Table t = is("cache") ? Table::kCache : is("store") ? Table::kStore : is("log") ? Table::kLog : Table::kRoot;
    if (t == Table::kRoot) return false;  // unknown, or [mount]: the full parser says what is wrong
    const unsigned bit = 1u << static_cast<unsigned>(t);
    if ((seen_ & bit) != 0) return false;  // defined twice
    seen_ |= bit;
    table_ = t;
    return true;
  }

  // A table ends (a header, or the end of the file).
  bool end_table() noexcept {
    keys_ = 0;
    return table_ != Table::kMount || has_path_;  // a [[mount]] needs a path
  }

  bool key_value(const char* p, const char* e) noexcept {
    if (table_ == Table::kRoot) return false;  // the full parser rejects top-level keys
    const char* key = p;
    while (p < e && bare(*p)) ++p;
    const std::size_t key_len = static_cast<std::size_t>(p - key);
    if (key_len == 0) return false;  // quoted or dotted keys, or no key
    p = skip_space(p, e);
    if (p == e || *p != '=') return false;
    p = skip_space(p + 1, e);
    if (!note_key(key, key_len)) return false;
    const char* value = nullptr;
    std::size_t value_len = 0;
    bool is_string = false;
    if (p < e && (*p == '"' || *p == '\'')) {
      const char quote = *p;
      if (e - p >= 3 && p[1] == quote && p[2] == quote) return false;  // a multi-line string
      value = ++p;
      while (p < e && *p != quote) {
        if (!plain(*p) || (quote == '"' && *p == '\\')) return false;  // escapes: the full parser
        ++p;
      }
      if (p == e) return false;
      value_len = static_cast<std::size_t>(p - value);
      ++p;
      is_string = true;
    } else {
      value = p;
      while (p < e && (bare(*p) || *p == '.' || *p == ':' || *p == '+')) ++p;
      value_len = static_cast<std::size_t>(p - value);
      if (!plain_value(value, value_len)) return false;  // arrays, inline tables, bare words...
    }
    if (!rest_is_empty(p, e)) return false;
    if (table_ == Table::kMount && key_len == 4 && std::memcmp(key, "path", 4) == 0) {
      if (!is_string) return false;
      has_path_ = true;
      return add_mount(value, value_len);
    }
    return true;
  }

  // Duplicate keys are a TOML error: leave those to the full parser.
  bool note_key(const char* key, std::size_t len) noexcept {
    for (unsigned i = 0; i < keys_; ++i) {
      if (key_len_[i] == len && std::memcmp(key_ptr_[i], key, len) == 0) return false;
    }
    if (keys_ == kMaxKeysPerTable) return false;
    key_ptr_[keys_] = key;
    key_len_[keys_] = len;
    ++keys_;
    return true;
  }

  // config's normalize_mount_path: absolute, no "." or "..", not "/".
  bool add_mount(const char* text, std::size_t n) noexcept {
    if (n == 0 || text[0] != '/' || n > kMaxPath) return false;
    char* out = arena_;
    std::size_t len = 0;
    unsigned depth = 0;
    for (std::size_t pos = 0; pos < n;) {
      std::size_t end = pos;
      while (end < n && text[end] != '/') ++end;
      const std::size_t seg = end - pos;
      if ((seg == 1 && text[pos] == '.') || (seg == 2 && text[pos] == '.' && text[pos + 1] == '.')) return false;
      if (seg > 0) {
        out[len++] = '/';
        std::memcpy(out + len, text + pos, seg);
        len += seg;
        ++depth;
      }
      pos = end + 1;
    }
    if (len == 0) return false;  // "/": the full parser refuses it
    mounts_[count_++] = Mount{out, len};
    arena_ += len;
    if (depth > g_max_depth) g_max_depth = depth;
    return true;
  }

  const char* p_;
  const char* end_;
  char* arena_;
  Mount* mounts_;
  std::size_t count_ = 0;
  Table table_ = Table::kRoot;
  unsigned seen_ = 0;
  bool has_path_ = false;
  unsigned keys_ = 0;
  const char* key_ptr_[kMaxKeysPerTable] = {};
  std::size_t key_len_[kMaxKeysPerTable] = {};
};

// Two mounts with one path, or one inside another: the full parser's error.
bool overlapping() noexcept {
  for (std::size_t i = 0; i < g_count; ++i) {
    if (i > 0 && g_mounts[i - 1].len == g_mounts[i].len &&
        std::memcmp(g_mounts[i - 1].path, g_mounts[i].path, g_mounts[i].len) == 0) {
      return true;
    }
    // Any proper component prefix of this path that is a mount too.
    for (std::size_t k = 1; k < g_mounts[i].len; ++k) {
      if (g_mounts[i].path[k] != '/') continue;
      const Mount key{g_mounts[i].path, k};
      const Mount* it = std::lower_bound(g_mounts, g_mounts + g_count, key, less);
      if (it != g_mounts + g_count && it->len == k && std::memcmp(it->path, key.path, k) == 0) return true;
    }
  }
  return false;
}

// Small files (nearly all) are read into this buffer, their mount paths
// kept after the text in the same pages: one read, no mapping, the fewest
// page faults. A process start is what this costs.
constexpr std::size_t kSmallBytes = 16384;
alignas(4096) char g_small[kSmallBytes];

// What a file of `size` bytes needs after its text: every mount path (each
// no longer than its text) and one entry per 9 bytes ("[[mount]]").
std::size_t arena_bytes(std::size_t size) noexcept {
  return size + (size / 9 + 1) * sizeof(Mount) + 2 * alignof(Mount);
}

Mount* entries_after(char* strings, std::size_t size) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(strings) + size;
  return reinterpret_cast<Mount*>((at + alignof(Mount) - 1) & ~(std::uintptr_t{alignof(Mount)} - 1));
}

Scan scan_text(const char* text, std::size_t size, char* strings) noexcept {
  Scanner s(text, size, strings, entries_after(strings, size));
  const bool sure = s.run();
  g_mounts = entries_after(strings, size);
  g_count = sure ? s.count() : 0;
  if (!sure) return Scan::kUnsure;
  std::sort(g_mounts, g_mounts + g_count, less);
  if (overlapping()) {
    g_count = 0;
    return Scan::kUnsure;
  }
  note_firsts();
  return g_count == 0 ? Scan::kNoMounts : Scan::kMounts;
}

Scan scan_file(const char* path) noexcept {
  const int fd = real::fn<Sym::open>()(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Scan::kUnsure;  // the full parser says why
  struct stat st {};
  if (real::fn<Sym::fstat>()(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::size_t>(st.st_size) > kMaxConfigBytes) {
    real::fn<Sym::close>()(fd);
    return Scan::kUnsure;
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    real::fn<Sym::close>()(fd);
    return Scan::kNoMounts;
  }
  if (size + arena_bytes(size) <= kSmallBytes) {
    // One read; a short one (the file changed under us) goes to the full parser.
    const ssize_t n = real::fn<Sym::read>()(fd, g_small, size);
    real::fn<Sym::close>()(fd);
    if (n != static_cast<ssize_t>(size)) return Scan::kUnsure;
    return scan_text(g_small, size, g_small + size);
  }
  void* text = real::fn<Sym::mmap>()(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  real::fn<Sym::close>()(fd);
  if (text == MAP_FAILED) return Scan::kUnsure;
  // Anonymous pages, touched only as used; never unmapped (the mounts live there).
  void* arena = real::fn<Sym::mmap>()(nullptr, arena_bytes(size), PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  Scan result = Scan::kUnsure;
  if (arena != MAP_FAILED) result = scan_text(static_cast<const char*>(text), size, static_cast<char*>(arena));
  // The mount paths were copied out; the text is no longer needed.
  real::fn<Sym::munmap>()(text, size);
  return result;
}

}  // namespace

Scan load() noexcept {
  char path[PATH_MAX];
  if (!find_config(path)) {
    const char* env = secure_getenv("OBJCACHE_CONFIG");
    return env != nullptr && env[0] != '\0' ? Scan::kUnsure : Scan::kNoMounts;
  }
  return scan_file(path);
}

Match match(const char* path) noexcept {
  if (path[0] == '\0') return Match::kNone;
  if (path[0] == '/' && !has_dotdot(path)) {
    // MountTable::maybe_ours: exact for these (a path too long for the
    // kernel is in no mount).
    if (std::strlen(path) > kMaxPath) return Match::kNone;
    return under_a_mount(path) ? Match::kMaybe : Match::kNone;
  }
  // MountTable::resolve and above: cwd + path, lexically.
  char norm[PATH_MAX];
  std::size_t len = 1;
  norm[0] = '/';
  auto append = [&](const char* p) -> bool {
    const char* c = nullptr;
    std::size_t n = 0;
    while (next_component(p, c, n)) {
      if (n == 2 && c[0] == '.' && c[1] == '.') {
        while (len > 1 && norm[len - 1] != '/') --len;
        if (len > 1) --len;  // the '/' before the removed component
        continue;
      }
      if (len + (len > 1 ? 1 : 0) + n >= PATH_MAX) return false;
      if (len > 1) norm[len++] = '/';
      std::memcpy(norm + len, c, n);
      len += n;
    }
    return true;
  };
  if (path[0] != '/') {
    char cwd[PATH_MAX];
    if (!g_cwd_known.load(std::memory_order_acquire)) refresh_cwd();
    const std::size_t n = read_cwd(cwd);
    if (n == 0) return Match::kNone;  // no cwd: resolve says not ours
    cwd[n] = '\0';
    if (!append(cwd)) return Match::kMaybe;
  }
  if (std::strlen(path) > kMaxPath) return Match::kNone;
  if (!append(path)) return Match::kMaybe;  // longer than our buffer: the engine decides
  norm[len] = '\0';
  if (under_a_mount(norm)) return Match::kMaybe;
  if (!above_a_mount(norm, len)) return Match::kNone;
  // A directory above mounts is ours only where the disk has nothing.
  struct stat st {};
  return real::fn<Sym::lstat>()(norm, &st) == 0 ? Match::kNone : Match::kMaybe;
}

void refresh_cwd() noexcept {
  store_kernel_cwd();
  // release: a thread that sees it known reads what was written (seqlock).
  g_cwd_known.store(true, std::memory_order_release);
}

bool cwd_is_placeholder() noexcept {
  // library.cpp's empty_dir_path(): /dev/shm/objcache-<uid>-empty.
  char want[64] = "/dev/shm/objcache-";
  std::size_t n = std::strlen(want);
  char digits[16];
  std::size_t d = 0;
  for (auto uid = static_cast<unsigned long>(::syscall(SYS_getuid)); d == 0 || uid != 0; uid /= 10) {
    digits[d++] = static_cast<char>('0' + uid % 10);
  }
  while (d > 0) want[n++] = digits[--d];
  std::memcpy(want + n, "-empty", 7);
  n += 6;
  char cwd[PATH_MAX];
  const std::size_t len = kernel_cwd(cwd);
  return len == n && std::memcmp(cwd, want, n) == 0;
}

}  // namespace objcache::preload::prefixes
