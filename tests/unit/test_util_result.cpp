// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <memory>

#include "objcache/result.h"

using namespace objcache;

TEST_CASE("Result holds a value or an error") {
  Result<int> ok = 7;
  REQUIRE(ok.ok());
  CHECK(*ok == 7);
  CHECK(ok.status() == Status::Ok);

  Result<int> bad = make_error(Status::NotFound, "no such key 'a'");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status() == Status::NotFound);
  CHECK(bad.error().describe() == "NotFound: no such key 'a'");

  Result<std::unique_ptr<int>> moved = std::make_unique<int>(3);
  std::unique_ptr<int> p = std::move(moved).value();
  CHECK(*p == 3);

  Result<void> v;
  CHECK(v.ok());
  Result<void> ve = make_error(Status::AccessDenied, "x", 403);
  CHECK(ve.error().describe() == "AccessDenied (HTTP 403): x");
}

TEST_CASE("every status maps to a meaningful errno and a name") {
  CHECK(to_errno(Status::NotFound) == ENOENT);
  CHECK(to_errno(Status::AccessDenied) == EACCES);
  CHECK(to_errno(Status::Throttled) == EAGAIN);
  CHECK(to_errno(Status::Timeout) == ETIMEDOUT);
  CHECK(to_errno(Status::Transient) == EIO);
  CHECK(to_errno(Status::NoSpace) == ENOSPC);
  for (int s = 0; s <= static_cast<int>(Status::Unsupported); ++s) {
    auto st = static_cast<Status>(s);
    CHECK(to_string(st) != "Unknown");
    if (st != Status::Ok) CHECK(to_errno(st) != 0);
  }
}
