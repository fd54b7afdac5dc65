// SPDX-License-Identifier: Apache-2.0
#include "util/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <new>

namespace objcache {
namespace log {
namespace {

// Relaxed: the level is a filter, a stale read only changes whether one
// line is printed.
std::atomic<int> g_level{static_cast<int>(LogLevel::Warn)};

// The log file as opened: its descriptor and which file it was, so that a
// descriptor the program closed or reused is noticed before a line goes
// into someone else's file. Immutable once published; replaced (and the
// old one leaked, a few bytes) on configure or reopen.
struct Sink {
  int fd;
  dev_t dev;
  ino_t ino;
};
std::atomic<const Sink*> g_sink{nullptr};  // nullptr = stderr

std::mutex g_mu;             // configure and reopen
char g_path[PATH_MAX] = {};  // the file's name; guarded by g_mu
std::atomic<bool> g_reopen_failed{false};

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Error: return "error";
    case LogLevel::Warn: return "warn";
    case LogLevel::Info: return "info";
    case LogLevel::Debug: return "debug";
  }
  return "?";
}

// "objcache: <msg>" on stderr, whatever the sink: the user must see why
// their log file stays empty.
void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  char buf[PATH_MAX + 256];
  int n = std::snprintf(buf, sizeof buf, "objcache: ");
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<std::size_t>(n) - 1, fmt, ap);
  va_end(ap);
  std::size_t len = static_cast<std::size_t>(n) + (m < 0 ? 0 : static_cast<std::size_t>(m));
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  ssize_t w = ::write(STDERR_FILENO, buf, len);
  (void)w;
}

// Opens path for appending; nullptr (and why in *why) when it cannot be
// used. Another user's file is refused: they would read our lines, or have
// planted a link to make us append to a file of ours.
const Sink* open_sink(const char* path, std::string* why) {
  int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) {
    char buf[128];
    *why = strerror_r(errno, buf, sizeof buf);  // GNU variant: returns the text
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || (S_ISREG(st.st_mode) && st.st_uid != ::geteuid())) {
    ::close(fd);
    *why = "it belongs to another user";
    return nullptr;
  }
  const Sink* s = new (std::nothrow) Sink{fd, st.st_dev, st.st_ino};
  if (s == nullptr) {
    ::close(fd);
    *why = "out of memory";
  }
  return s;
}

bool still_ours(const Sink* s) {
  struct stat st {};
  return ::fstat(s->fd, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
}

// Where a line goes now: the log file, opened again by name if its
// descriptor no longer names it, else stderr.
int sink_fd() {
  const Sink* s = g_sink.load(std::memory_order_acquire);
  if (s == nullptr) return STDERR_FILENO;
  if (still_ours(s)) return s->fd;
  // try_lock: a child forked while another thread held the lock must not
  // hang in a log line.
  std::unique_lock<std::mutex> lock(g_mu, std::try_to_lock);
  if (!lock.owns_lock()) return STDERR_FILENO;
  const Sink* now = g_sink.load(std::memory_order_acquire);
  if (now != s) return now != nullptr ? now->fd : STDERR_FILENO;  // another thread reopened it
  // The old descriptor is the program's now (or closed): never close it.
  std::string why;
  const Sink* fresh = open_sink(g_path, &why);
  g_sink.store(fresh, std::memory_order_release);
  if (fresh == nullptr) {
    if (!g_reopen_failed.exchange(true)) {
      say("cannot open log.file \"%s\" again: %s; logging to stderr", g_path, why.c_str());
    }
    return STDERR_FILENO;
  }
  return fresh->fd;
}

}  // namespace

bool configure(LogLevel level, const std::string& file) {
  int saved = errno;
  bool ok = true;
  std::lock_guard<std::mutex> g(g_mu);
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
  const Sink* fresh = nullptr;
  if (!file.empty()) {
    std::string why;
    if (file.size() >= sizeof g_path || file.find('\0') != std::string::npos) {
      why = "not a usable path";
    } else {
      std::memcpy(g_path, file.c_str(), file.size() + 1);
      fresh = open_sink(g_path, &why);
    }
    if (fresh == nullptr) {
      const int shown = static_cast<int>(file.size() > 512 ? 512 : file.size());
      say("cannot open log.file \"%.*s\": %s; logging to stderr", shown, file.c_str(), why.c_str());
      ok = false;
    }
  }
  const Sink* old = g_sink.exchange(fresh, std::memory_order_acq_rel);
  if (old != nullptr && still_ours(old)) ::close(old->fd);
  g_reopen_failed.store(false, std::memory_order_relaxed);
  errno = saved;
  return ok;
}

bool enabled(LogLevel level) {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

namespace {

void vwrite(LogLevel level, const char* fmt, va_list ap) {
  int saved = errno;
  char buf[2048];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ objcache[%d] %s: ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, static_cast<int>(::getpid()), level_name(level));
  if (n < 0) n = 0;
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n) - 1, fmt, ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  // One write(2) per line so lines from several processes do not interleave.
  ssize_t w = ::write(sink_fd(), buf, len);
  (void)w;
  errno = saved;
}

}  // namespace

void write(LogLevel level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vwrite(level, fmt, ap);
  va_end(ap);
}

}  // namespace log

void configure_logging(const LogConfig& config) noexcept {
  try {
    (void)log::configure(config.level, config.file);
  } catch (...) {  // std::string copies in configure: out of memory changes nothing
  }
}

bool log_enabled(LogLevel level) noexcept { return log::enabled(level); }

void log_line(LogLevel level, const char* fmt, ...) noexcept {
  if (!log::enabled(level)) return;
  va_list ap;
  va_start(ap, fmt);
  log::vwrite(level, fmt, ap);
  va_end(ap);
}

}  // namespace objcache
