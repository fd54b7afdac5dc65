// SPDX-License-Identifier: Apache-2.0
// The dispatch layer's contract with the library: a served call runs under
// the re-entry guard, keeps the caller's errno unless it fails, and sets errno
// exactly once when it does; an unserved one fails closed. And the real table
// resolves to libc. (Built like preload/: without _FILE_OFFSET_BITS=64.)
#include <dlfcn.h>
#include <doctest/doctest.h>

#include <cstring>

#include "dispatch.h"
#include "guard.h"
#include "real.h"

using namespace objcache::preload;

namespace objcache::preload::dispatch {
// A handler that clobbers errno internally and reports success, and one that
// reports a failure: what the library will do.
template <>
struct Handler<Sym::isatty> {
  static Outcome<int> call(int fd) noexcept {
    set_errno(EBADF);  // an internal call failing
    if (!in_shim()) return {-7, EINVAL};
    return fd == 1 ? Outcome<int>{1, 0} : Outcome<int>{0, ENOTTY};
  }
};
}  // namespace objcache::preload::dispatch

TEST_CASE("serve: guard up inside, caller's errno kept on success, set once on failure") {
  CHECK_FALSE(in_shim());
  errno = 1234;
  CHECK(dispatch::serve<Sym::isatty>(1) == 1);
  CHECK(errno == 1234);
  CHECK(dispatch::serve<Sym::isatty>(2) == 0);
  CHECK(errno == ENOTTY);
  CHECK_FALSE(in_shim());
}

TEST_CASE("unserved symbols fail closed with the function's own failure value") {
  errno = 0;
  char buf[4];
  CHECK(dispatch::serve<Sym::read>(0, buf, sizeof buf) == -1);
  CHECK(errno == ENOTSUP);
  errno = 0;
  CHECK(dispatch::serve<Sym::opendir>("/x") == nullptr);
  CHECK(errno == ENOTSUP);
  errno = 0;
  CHECK(dispatch::serve<Sym::mmap>(nullptr, 4096, PROT_READ, MAP_PRIVATE, 0, 0) == MAP_FAILED);
  CHECK(errno == ENOTSUP);
  errno = 42;
  CHECK(dispatch::serve<Sym::posix_fadvise>(0, 0, 0, 0) == ENOTSUP);
  CHECK(errno == 42);  // error-number functions leave errno alone
}

TEST_CASE("nothing is ours without a configuration") {
  CHECK_FALSE(dispatch::path_is_ours("/mnt/data/x"));
  CHECK_FALSE(dispatch::path_is_ours(nullptr));
  CHECK_FALSE(dispatch::at_is_ours(AT_FDCWD, "rel"));
  CHECK_FALSE(dispatch::fd_is_ours(0));
  CHECK_FALSE(dispatch::fd_is_ours(-1));
  CHECK_FALSE(dispatch::fd_range_has_ours(0, ~0u));
  CHECK_FALSE(dispatch::stream_is_ours(stdout));
  CHECK_FALSE(dispatch::exec_needs_work());
}

TEST_CASE("the real table resolves to libc, legacy compat symbols included") {
  for (void* p : {reinterpret_cast<void*>(real::fn<Sym::stat>()),
                  reinterpret_cast<void*>(real::fn<Sym::open64>()),
                  reinterpret_cast<void*>(real::fn<Sym::__xstat>()),
                  reinterpret_cast<void*>(real::fn<Sym::__openat_2>()),
                  reinterpret_cast<void*>(real::fn<Sym::closefrom>())}) {
    Dl_info info{};
    REQUIRE(dladdr(p, &info) != 0);
    // libc, or a sanitizer runtime's interceptor that sits in front of it.
    const bool libc = strstr(info.dli_fname, "libc.so") != nullptr;
    const bool sanitizer = strstr(info.dli_fname, "san.so") != nullptr;
    CHECK((libc || sanitizer));
  }
  struct stat st {};
  CHECK(real::fn<Sym::stat>()("/", &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(std::strcmp(real::name(Sym::__fxstatat64), "__fxstatat64") == 0);
}
