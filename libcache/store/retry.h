// SPDX-License-Identifier: Apache-2.0
// Classify, then retry: every failed attempt is first turned into a Status
// (from the HTTP status and the S3 error code), then the policy decides
// whether and when to try again. Pure functions; the randomness is passed in.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "objcache/result.h"

namespace objcache::store {

// The Status for an HTTP reply that is not a success, given S3's <Code>
// (may be empty, e.g. for HEAD, whose reply has no body).
Status status_from_http(int http_status, std::string_view s3_code);

// Transient and Throttled are worth another attempt; everything else is final.
bool is_retryable(Status s);

struct RetryPolicy {
  std::chrono::milliseconds base{50};         // first backoff ceiling
  std::chrono::milliseconds throttle_base{500};  // first ceiling after a SlowDown
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds deadline{30000};  // total time for all attempts
};

// Full-jitter exponential backoff: a uniform draw in [0, min(max, base*2^n)],
// where random01 is in [0, 1). attempt counts from 0 (the first retry).
std::chrono::milliseconds backoff(const RetryPolicy& p, Status last, int attempt, double random01);

}  // namespace objcache::store
