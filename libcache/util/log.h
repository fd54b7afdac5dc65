// SPDX-License-Identifier: Apache-2.0
// Process-wide logging to a file or stderr at a configured level (the
// public half is objcache/log.h). Never writes to stdout (we live inside
// other people's programs), never throws, preserves errno. Callers must not
// pass secrets: no credential, header or URL query.
#pragma once

#include <string>

#include "objcache/log.h"

namespace objcache::log {

// Sets the level and the sink ("" = stderr). Safe to call again. false when
// the file could not be used (said once on stderr; lines go to stderr).
bool configure(LogLevel level, const std::string& file);
bool enabled(LogLevel level);
void write(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace objcache::log

#define OC_LOG(level, ...)                                                   \
  do {                                                                       \
    if (::objcache::log::enabled(level)) ::objcache::log::write(level, __VA_ARGS__); \
  } while (0)
#define OC_ERROR(...) OC_LOG(::objcache::LogLevel::Error, __VA_ARGS__)
#define OC_WARN(...) OC_LOG(::objcache::LogLevel::Warn, __VA_ARGS__)
#define OC_INFO(...) OC_LOG(::objcache::LogLevel::Info, __VA_ARGS__)
#define OC_DEBUG(...) OC_LOG(::objcache::LogLevel::Debug, __VA_ARGS__)
