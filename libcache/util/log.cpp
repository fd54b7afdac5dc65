// SPDX-License-Identifier: Apache-2.0
#include "util/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace objcache::log {
namespace {

// Relaxed: the level is a filter, a stale read only changes whether one
// line is printed.
std::atomic<int> g_level{static_cast<int>(LogLevel::Warn)};
std::atomic<int> g_fd{STDERR_FILENO};

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Error: return "error";
    case LogLevel::Warn: return "warn";
    case LogLevel::Info: return "info";
    case LogLevel::Debug: return "debug";
  }
  return "?";
}

}  // namespace

void configure(LogLevel level, const std::string& file) {
  int saved = errno;
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
  if (!file.empty()) {
    int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      int old = g_fd.exchange(fd, std::memory_order_acq_rel);
      if (old != STDERR_FILENO) ::close(old);
    }
  }
  errno = saved;
}

bool enabled(LogLevel level) {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void write(LogLevel level, const char* fmt, ...) {
  int saved = errno;
  char buf[2048];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ objcache[%d] %s: ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, static_cast<int>(::getpid()), level_name(level));
  if (n < 0) n = 0;
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  // One write(2) per line so lines from several processes do not interleave.
  ssize_t w = ::write(g_fd.load(std::memory_order_acquire), buf, len);
  (void)w;
  errno = saved;
}

}  // namespace objcache::log
