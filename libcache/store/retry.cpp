// SPDX-License-Identifier: Apache-2.0
#include "store/retry.h"

#include <algorithm>

namespace objcache::store {

Status status_from_http(int http, std::string_view code) {
  // The S3 error code is more precise than the status where both exist.
  if (code == "NoSuchKey" || code == "NoSuchBucket" || code == "NoSuchUpload") return Status::NotFound;
  if (code == "AccessDenied" || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" ||
      code == "ExpiredToken" || code == "InvalidToken" || code == "AllAccessDisabled")
    return Status::AccessDenied;
  if (code == "SlowDown" || code == "Throttling" || code == "ThrottlingException" ||
      code == "RequestLimitExceeded" || code == "TooManyRequests")
    return Status::Throttled;
  if (code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable")
    return http == 503 ? Status::Throttled : Status::Transient;
  if (code == "PreconditionFailed") return Status::PreconditionFailed;
  if (code == "InvalidRange") return Status::RangeNotSatisfiable;

  switch (http) {
    case 401:
    case 403: return Status::AccessDenied;
    case 404: return Status::NotFound;
    case 408: return Status::Transient;
    case 409: return Status::Conflict;
    case 412: return Status::PreconditionFailed;
    case 416: return Status::RangeNotSatisfiable;
    case 429: return Status::Throttled;
    case 503: return Status::Throttled;  // S3's way of saying "slow down"
    default: break;
  }
  if (http >= 500) return Status::Transient;
  if (http >= 300 && http < 400) return Status::InvalidArgument;  // redirects: wrong region or endpoint
  return Status::InvalidArgument;
}

bool is_retryable(Status s) { return s == Status::Transient || s == Status::Throttled; }

std::chrono::milliseconds backoff(const RetryPolicy& p, Status last, int attempt,
                                  double random01) {
  auto base = last == Status::Throttled ? p.throttle_base : p.base;
  double ceiling = static_cast<double>(base.count());
  for (int i = 0; i < attempt && ceiling < static_cast<double>(p.max_backoff.count()); ++i) {
    ceiling *= 2;
  }
  ceiling = std::min(ceiling, static_cast<double>(p.max_backoff.count()));
  double r = std::clamp(random01, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(ceiling * r));
}

}  // namespace objcache::store
