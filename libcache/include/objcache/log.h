// SPDX-License-Identifier: Apache-2.0
// objcache's own messages: their levels, the [log] settings, and the calls
// the shim and cachectl make to apply them. Lines go to a file or stderr,
// never stdout (objcache lives inside other people's programs), and never
// carry a secret: no credential, header or signed URL is ever passed here.
#pragma once

#include <string>

namespace objcache {

enum class LogLevel { Error, Warn, Info, Debug };

// [log] of the configuration (objcache/config.h reads it).
struct LogConfig {
  LogLevel level = LogLevel::Warn;
  std::string file;  // "" = stderr
};

// Applies [log] to this process: lines at config.level or more severe go to
// config.file (appended; created 0600 if missing), else to stderr. A file
// that cannot be opened, or that another user owns, is said once on stderr
// ("objcache: cannot open log.file ...; logging to stderr") and lines go to
// stderr. A program that closes or reuses the file's descriptor (a shell's
// `exec 3>out`) never gets our lines: the file is opened again by name.
// Safe to call again; never throws; preserves errno.
void configure_logging(const LogConfig& config) noexcept;

// Whether a line at level would be written (to skip building it).
bool log_enabled(LogLevel level) noexcept;

// One line at level, printf-style, with the time, the pid and the level.
void log_line(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace objcache
