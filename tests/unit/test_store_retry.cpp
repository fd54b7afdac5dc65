// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include "store/retry.h"

using namespace objcache;
using namespace objcache::store;
using namespace std::chrono_literals;

TEST_CASE("HTTP replies are classified before any retry") {
  CHECK(status_from_http(404, "NoSuchKey") == Status::NotFound);
  CHECK(status_from_http(404, "NoSuchBucket") == Status::NotFound);
  CHECK(status_from_http(404, "") == Status::NotFound);  // HEAD has no body
  CHECK(status_from_http(403, "SignatureDoesNotMatch") == Status::AccessDenied);
  CHECK(status_from_http(403, "InvalidAccessKeyId") == Status::AccessDenied);
  CHECK(status_from_http(403, "") == Status::AccessDenied);
  CHECK(status_from_http(503, "SlowDown") == Status::Throttled);
  CHECK(status_from_http(429, "") == Status::Throttled);
  CHECK(status_from_http(500, "InternalError") == Status::Transient);
  CHECK(status_from_http(502, "") == Status::Transient);
  CHECK(status_from_http(400, "RequestTimeout") == Status::Transient);
  CHECK(status_from_http(400, "InvalidArgument") == Status::InvalidArgument);
  CHECK(status_from_http(412, "PreconditionFailed") == Status::PreconditionFailed);
  CHECK(status_from_http(416, "InvalidRange") == Status::RangeNotSatisfiable);
  CHECK(status_from_http(301, "PermanentRedirect") == Status::InvalidArgument);

  CHECK(is_retryable(Status::Transient));
  CHECK(is_retryable(Status::Throttled));
  CHECK_FALSE(is_retryable(Status::NotFound));
  CHECK_FALSE(is_retryable(Status::AccessDenied));
  CHECK_FALSE(is_retryable(Status::PreconditionFailed));
}

TEST_CASE("backoff grows exponentially with full jitter and is capped") {
  RetryPolicy p;
  p.base = 100ms;
  p.throttle_base = 1000ms;
  p.max_backoff = 3000ms;
  CHECK(backoff(p, Status::Transient, 0, 0.999).count() == 99);
  CHECK(backoff(p, Status::Transient, 1, 0.999).count() == 199);
  CHECK(backoff(p, Status::Transient, 3, 0.999).count() == 799);
  CHECK(backoff(p, Status::Transient, 20, 0.999).count() == 2997);  // capped
  CHECK(backoff(p, Status::Transient, 5, 0.0).count() == 0);       // jitter reaches 0
  CHECK(backoff(p, Status::Throttled, 0, 0.5).count() == 500);     // throttling waits longer
  CHECK(backoff(p, Status::Transient, 2, 0.5).count() == 200);
}
