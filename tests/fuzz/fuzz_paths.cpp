// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: local path -> (mount, key) with hostile names ("..",
// "//", "/./", NUL, trailing '/', long keys, invalid UTF-8), absolute and
// relative to a cwd. The input is "cwd\npath" (no newline: the path alone,
// cwd inside a mount). Whatever resolves as ours names a key under its
// mount's prefix with no empty, "." or ".." component, and maps back to a
// local path that resolves to the same key: a key never escapes its mount.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/mount_table.h"

using namespace objcache;

namespace {

const MountTable& table() {
  static const MountTable* t = [] {
    std::vector<MountConfig> ms(3);
    ms[0].path = "/mnt/data";
    ms[0].source.bucket = "b";
    ms[0].source.prefix = "train/";
    ms[1].path = "/mnt/data/inner";  // nested: the longest path wins
    ms[1].source.bucket = "b";
    ms[1].source.prefix = "other/x/";
    ms[2].path = "/ckpt";
    ms[2].source.bucket = "c";
    ms[2].source.prefix = "";
    return new MountTable(std::move(ms));
  }();
  return *t;
}

bool clean_key(std::string_view rel) {
  if (rel.empty()) return true;
  std::size_t start = 0;
  while (start <= rel.size()) {
    std::size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    std::string_view part = rel.substr(start, end - start);
    // A trailing '/' (a directory's key) leaves one empty last part.
    if (part.empty() && end != rel.size()) return false;
    if (part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view cwd = "/mnt/data/sub", path = in;
  if (auto nl = in.find('\n'); nl != std::string_view::npos) {
    cwd = in.substr(0, nl);
    path = in.substr(nl + 1);
  }
  const MountTable& t = table();
  const Resolved r = t.resolve(path, cwd);
  if (!r.ours()) return 0;
  if (r.mount < 0 || static_cast<std::size_t>(r.mount) >= t.mounts().size()) std::abort();
  const std::string& prefix = t.mounts()[static_cast<std::size_t>(r.mount)].source.prefix;
  if (r.key.compare(0, prefix.size(), prefix) != 0) std::abort();  // escaped its prefix
  if (r.key.find('\0') != std::string::npos) std::abort();
  if (!r.is_root && !clean_key(std::string_view(r.key).substr(prefix.size()))) std::abort();
  const std::string back = t.local_path(r.mount, r.key);
  if (back.empty()) std::abort();  // resolve made a key local_path disowns
  const Resolved again = t.resolve(back);
  if (again.mount != r.mount || again.key != r.key) std::abort();
  return 0;
}
