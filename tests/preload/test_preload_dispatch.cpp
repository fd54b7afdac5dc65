// SPDX-License-Identifier: Apache-2.0
// The dispatch layer's contract with the library: a served call runs under
// the re-entry guard, keeps the caller's errno unless it fails, and sets errno
// exactly once when it does; an unserved one fails closed. And the real table
// resolves to libc. (Built like preload/: without _FILE_OFFSET_BITS=64.)
#include <dlfcn.h>
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "dispatch.h"
#include "guard.h"
#include "next_scope.h"
#include "real.h"

using namespace objcache::preload;

// An address inside the test executable (NextScope starts after its object).
static void main_for_next_scope() {}

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

TEST_CASE("the fast resolution (NextScope) finds exactly what dlsym(RTLD_NEXT) finds, or leaves it to dlsym") {
  real::NextScope scope;
  REQUIRE(scope.init(reinterpret_cast<const void*>(&main_for_next_scope)));
  unsigned found = 0;
  for (unsigned i = 0; i < kSymCount; ++i) {
    const char* n = real::name(static_cast<Sym>(i));
    void* fast = scope.find(n);
    if (fast == nullptr) continue;
    ++found;
    CAPTURE(n);
    CHECK(fast == dlsym(RTLD_NEXT, n));
  }
  CHECK(found >= kSymCount * 9 / 10);
  CHECK(scope.find("objcache_no_such_symbol_anywhere") == nullptr);
}

namespace {
// Distinct fake stream addresses (never dereferenced by the registry).
const DIR* fake_dir(std::uintptr_t i) { return reinterpret_cast<const DIR*>(0x10000 + i * 64); }
}  // namespace

TEST_CASE("the DIR registry: registered streams are ours, others are not, past its table too") {
  const std::size_t n = 3000;  // more than the table's 1024 slots: the overflow list is used
  CHECK_FALSE(dispatch::dir_is_ours(fake_dir(1)));
  for (std::size_t i = 0; i < n; ++i) REQUIRE(dispatch::register_dir(fake_dir(i)));
  CHECK(dispatch::g_dirs_live.load() == static_cast<long>(n));
  for (std::size_t i = 0; i < n; ++i) REQUIRE(dispatch::dir_is_ours(fake_dir(i)));
  CHECK_FALSE(dispatch::dir_is_ours(fake_dir(n + 1)));
  CHECK_FALSE(dispatch::unregister_dir(fake_dir(n + 1)));  // never registered: EBADF for closedir
  for (std::size_t i = 0; i < n; i += 2) REQUIRE(dispatch::unregister_dir(fake_dir(i)));
  for (std::size_t i = 0; i < n; ++i) REQUIRE(dispatch::dir_is_ours(fake_dir(i)) == (i % 2 == 1));
  CHECK_FALSE(dispatch::unregister_dir(fake_dir(0)));  // twice
  for (std::size_t i = 1; i < n; i += 2) REQUIRE(dispatch::unregister_dir(fake_dir(i)));
  CHECK(dispatch::g_dirs_live.load() == 0);
  for (std::size_t i = 0; i < n; ++i) REQUIRE_FALSE(dispatch::dir_is_ours_slow(fake_dir(i)));
}

TEST_CASE("the DIR registry under threads: each thread's streams stay its own, no lookup takes a lock") {
  constexpr int kThreads = 4, kRounds = 2000, kOpen = 8;
  std::atomic<int> wrong{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([t, &wrong] {
      for (int r = 0; r < kRounds; ++r) {
        const DIR* mine[kOpen];
        for (int k = 0; k < kOpen; ++k) {
          mine[k] = fake_dir(1000000 + static_cast<std::uintptr_t>(t) * 100 + static_cast<std::uintptr_t>(k));
          if (!dispatch::register_dir(mine[k])) wrong.fetch_add(1);
        }
        for (const DIR* d : mine) {
          if (!dispatch::dir_is_ours(d)) wrong.fetch_add(1);
        }
        if (dispatch::dir_is_ours(fake_dir(999999))) wrong.fetch_add(1);
        for (const DIR* d : mine) {
          if (!dispatch::unregister_dir(d)) wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(wrong.load() == 0);
  CHECK(dispatch::g_dirs_live.load() == 0);
}
