// SPDX-License-Identifier: Apache-2.0
#include "objcache/result.h"

namespace objcache {

std::string_view to_string(Status s) {
  switch (s) {
    case Status::Ok: return "Ok";
    case Status::NotFound: return "NotFound";
    case Status::AccessDenied: return "AccessDenied";
    case Status::InvalidArgument: return "InvalidArgument";
    case Status::ConfigError: return "ConfigError";
    case Status::Transient: return "Transient";
    case Status::Throttled: return "Throttled";
    case Status::Timeout: return "Timeout";
    case Status::PreconditionFailed: return "PreconditionFailed";
    case Status::RangeNotSatisfiable: return "RangeNotSatisfiable";
    case Status::Conflict: return "Conflict";
    case Status::IoError: return "IoError";
    case Status::NoSpace: return "NoSpace";
    case Status::ChecksumError: return "ChecksumError";
    case Status::Unsupported: return "Unsupported";
    case Status::ReadOnly: return "ReadOnly";
    case Status::AlreadyExists: return "AlreadyExists";
    case Status::NotEmpty: return "NotEmpty";
    case Status::IsDirectory: return "IsDirectory";
    case Status::NotDirectory: return "NotDirectory";
    case Status::CrossDevice: return "CrossDevice";
    case Status::NameTooLong: return "NameTooLong";
  }
  return "Unknown";
}

int to_errno(Status s) {
  switch (s) {
    case Status::Ok: return 0;
    case Status::NotFound: return ENOENT;
    case Status::AccessDenied: return EACCES;
    case Status::InvalidArgument: return EINVAL;
    case Status::ConfigError: return EINVAL;
    case Status::Transient: return EIO;
    case Status::Throttled: return EAGAIN;
    case Status::Timeout: return ETIMEDOUT;
    // The object changed under an open file: the caller must not mix
    // versions, and ESTALE says exactly that.
    case Status::PreconditionFailed: return ESTALE;
    case Status::RangeNotSatisfiable: return EINVAL;
    case Status::Conflict: return EBUSY;
    case Status::IoError: return EIO;
    case Status::NoSpace: return ENOSPC;
    case Status::ChecksumError: return EIO;
    case Status::Unsupported: return ENOTSUP;
    case Status::ReadOnly: return EROFS;
    case Status::AlreadyExists: return EEXIST;
    case Status::NotEmpty: return ENOTEMPTY;
    case Status::IsDirectory: return EISDIR;
    case Status::NotDirectory: return ENOTDIR;
    case Status::CrossDevice: return EXDEV;
    case Status::NameTooLong: return ENAMETOOLONG;
  }
  return EIO;
}

std::string Error::describe() const {
  std::string out(to_string(status));
  if (http_status != 0) out += " (HTTP " + std::to_string(http_status) + ")";
  if (!message.empty()) out += ": " + message;
  return out;
}

}  // namespace objcache
