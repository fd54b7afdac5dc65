// SPDX-License-Identifier: Apache-2.0
// The staging directory as cachectl sees it (see staging.h).
#include "staging.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace objcache::cachectl {
namespace {

bool ends_with(const std::string& s, const char* tail) {
  const std::size_t n = std::strlen(tail);
  return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

// Seconds since the epoch when the system booted (/proc/stat's btime).
std::optional<std::int64_t> boot_time() {
  std::ifstream in("/proc/stat");
  std::string name;
  while (in >> name) {
    if (name == "btime") {
      std::int64_t t = -1;
      if (in >> t && t >= 0) return t;
      return std::nullopt;
    }
    in.ignore(1 << 20, '\n');
  }
  return std::nullopt;
}

// When the process pid started, in seconds since the epoch; nullopt when
// /proc does not say.
std::optional<std::int64_t> started_at(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) may hold spaces and ')': fields are counted
  // from the last ')'. starttime is field 22, in clock ticks since boot.
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string f;
  for (int field = 3; field <= 22; ++field) {
    if (!(fields >> f)) return std::nullopt;
  }
  unsigned long long ticks_since_boot = 0;
  auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), ticks_since_boot);
  const long ticks = ::sysconf(_SC_CLK_TCK);
  auto boot = boot_time();
  if (ec != std::errc() || end != f.data() + f.size() || ticks <= 0 || !boot) return std::nullopt;
  return *boot + static_cast<std::int64_t>(ticks_since_boot / static_cast<unsigned long long>(ticks));
}

// The writer pid is running, and is the process that made the staged file
// (a pid reused by a process started after the file was made is not).
bool alive(pid_t pid, std::int64_t created) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  auto start = started_at(pid);
  // Two seconds of slack: btime is rounded, created is in whole seconds.
  return !start || created == 0 || *start <= created + 2;
}

// Whether pid has path open; nullopt when its fds cannot be read (another
// user's process, or /proc mounted with hidepid).
std::optional<bool> holds_open(pid_t pid, const std::string& path) {
  struct stat want {};
  if (::stat(path.c_str(), &want) != 0) return false;
  const std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(fds.c_str());
  if (d == nullptr) return std::nullopt;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    struct stat st {};
    if (::stat((fds + "/" + e->d_name).c_str(), &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

}  // namespace

std::string staging_dir_of(const CacheConfig& cfg) { return staging_directory(cfg); }

StagedTotal staged_total(const std::string& dir) {
  StagedTotal t;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return t;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (!ends_with(name, ".data")) continue;
    const std::string base = dir + "/" + name.substr(0, name.size() - 5);
    struct stat data {};
    struct stat meta {};
    if (::lstat((base + ".data").c_str(), &data) != 0 || !S_ISREG(data.st_mode)) continue;
    if (::lstat((base + ".json").c_str(), &meta) != 0) continue;  // not (or no longer) a staged file
    ++t.files;
    t.bytes += static_cast<std::uint64_t>(data.st_size);
  }
  ::closedir(d);
  return t;
}

Writer writer_of(const Vfs::StagedUpload& u) {
  if (!alive(u.writer, u.created)) return Writer::Gone;
  if (u.state == "uploading") return Writer::Uploading;
  if (u.state == "failed" || u.state == "incomplete") {
    // A failed close leaves the file to us; a failed fsync leaves the
    // writer writing it, fd open, and its next close uploads it again.
    return holds_open(u.writer, u.data_path).value_or(false) ? Writer::Writing : Writer::Done;
  }
  return Writer::Writing;
}

}  // namespace objcache::cachectl
