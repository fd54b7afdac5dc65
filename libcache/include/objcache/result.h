// SPDX-License-Identifier: Apache-2.0
// Result<T>: the error-or-value type every fallible call in objcache returns.
// Nothing in the library throws past its own file; errors travel as Status
// plus a message meant for a log line (never containing a secret).
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "objcache/export.h"

namespace objcache {

enum class Status {
  Ok,
  NotFound,            // no such key, bucket or file
  AccessDenied,        // 403, bad signature, unreadable credentials
  InvalidArgument,     // caller or config error
  ConfigError,         // a configuration file is wrong (message names it)
  Transient,           // worth retrying: 5xx, reset, timeout of one attempt
  Throttled,           // the server asked us to slow down (503 SlowDown, 429)
  Timeout,             // retries ran past their deadline
  PreconditionFailed,  // If-Match failed (412): the object changed
  RangeNotSatisfiable, // 416
  Conflict,            // 409 and similar final state errors
  IoError,             // local I/O or protocol failure
  NoSpace,             // ENOSPC on a local device
  ChecksumError,       // stored data failed its checksum
  Unsupported,
  // What a file system answers about names (writes to mounts):
  ReadOnly,            // the mount is not writable (EROFS)
  AlreadyExists,       // O_EXCL, RENAME_NOREPLACE, mkdir of an existing name (EEXIST)
  NotEmpty,            // rmdir of a directory with entries (ENOTEMPTY)
  IsDirectory,         // a file operation on a directory (EISDIR)
  NotDirectory,        // a directory operation on a file (ENOTDIR)
  CrossDevice,         // a rename between mounts, or one too large to do here (EXDEV)
  NameTooLong,         // a component over NAME_MAX, a key over 1024 bytes (ENAMETOOLONG)
};

OBJCACHE_API std::string_view to_string(Status s);
// The errno a POSIX caller should see for s (NotFound -> ENOENT, ...).
OBJCACHE_API int to_errno(Status s);

struct OBJCACHE_API Error {
  Status status = Status::IoError;
  std::string message;  // for logs; never holds secrets
  int http_status = 0;  // 0 when the error did not come from an HTTP reply

  Error() = default;
  Error(Status s, std::string msg, int http = 0)
      : status(s), message(std::move(msg)), http_status(http) {}

  // "NotFound: no such key 'a/b'"
  std::string describe() const;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Error err) : v_(std::in_place_index<1>, std::move(err)) {}   // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }
  Status status() const { return ok() ? Status::Ok : error().status; }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : err_(std::move(err)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }
  Status status() const { return ok_ ? Status::Ok : err_.status; }

 private:
  Error err_;
  bool ok_ = true;
};

inline Error make_error(Status s, std::string msg, int http = 0) {
  return Error(s, std::move(msg), http);
}

}  // namespace objcache
