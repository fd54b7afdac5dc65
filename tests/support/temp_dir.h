// SPDX-License-Identifier: Apache-2.0
// A fresh directory under $TMPDIR for one test, removed when it goes out of
// scope (kept when OBJCACHE_KEEP_TEST_DIRS is set, for debugging).
#pragma once

#include <string>

namespace objcache::test {

class TempDir {
 public:
  TempDir();
  // Under base instead (e.g. /dev/shm, where segments live in production).
  explicit TempDir(const std::string& base);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string file(const std::string& name) const;
  // Writes content to path()/name with the given mode; returns the path.
  std::string write(const std::string& name, const std::string& content, int mode = 0600) const;

 private:
  std::string path_;
};

// The repository's tests/ folder (OBJCACHE_TEST_SOURCE_DIR, set by meson).
std::string source_dir();
// The meson build directory (OBJCACHE_TEST_BUILD_DIR).
std::string build_dir();
std::string read_file(const std::string& path);

}  // namespace objcache::test
