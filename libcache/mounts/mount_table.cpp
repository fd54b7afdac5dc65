// SPDX-License-Identifier: Apache-2.0
#include "objcache/mount_table.h"

#include <algorithm>

#include "mounts/path_rules.h"

namespace objcache {

namespace {

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

MountTable::MountTable(std::vector<MountConfig> mounts) noexcept : mounts_(std::move(mounts)) {
  try {
    entries_.reserve(mounts_.size());
    for (const MountConfig& m : mounts_) {
      Entry e;
      const std::string& p = m.path;
      if (!p.empty() && p.front() == '/' && !has_nul(p) && p.size() <= mounts::kMaxPathLength) {
        e.path = "/";
        mounts::append_lexical(e.path, p);
      }
      e.prefix = m.source.prefix;
      if (!e.prefix.empty() && e.prefix.back() != '/') e.prefix += '/';
      entries_.push_back(std::move(e));
    }
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const std::string& p = entries_[i].path;
      if (p == "/" && root_mount_ < 0) root_mount_ = static_cast<int>(i);
      if (p.size() > 1) by_path_.push_back(static_cast<std::uint32_t>(i));
    }
    std::stable_sort(by_path_.begin(), by_path_.end(), [this](std::uint32_t a, std::uint32_t b) {
      return entries_[a].path < entries_[b].path;
    });
  } catch (const std::exception&) {
    // Out of memory at start-up: own nothing rather than half a table.
    entries_.clear();
    mounts_.clear();
    by_path_.clear();
    root_mount_ = -1;
  }
}

int MountTable::find(std::string_view path) const noexcept {
  // Walk path's components, narrowing [lo, hi) of by_path_ to the mount
  // paths that begin with the components seen so far (matched bytes of
  // them): sorted paths sharing a prefix are contiguous, and the shortest,
  // the one that ends there, comes first.
  int best = root_mount_;
  std::size_t lo = 0;
  std::size_t hi = by_path_.size();
  std::size_t matched = 0;
  mounts::Components it(path);
  std::string_view c;
  while (lo < hi && it.next(c)) {
    auto first = by_path_.begin();
    auto below = [&](std::uint32_t i) { return mounts::compare_component(entries_[i].path, matched, c) < 0; };
    auto at = [&](std::uint32_t i) { return mounts::compare_component(entries_[i].path, matched, c) == 0; };
    lo = static_cast<std::size_t>(std::partition_point(first + lo, first + hi, below) - first);
    hi = static_cast<std::size_t>(std::partition_point(first + lo, first + hi, at) - first);
    matched += 1 + c.size();
    if (lo < hi && entries_[by_path_[lo]].path.size() == matched) best = static_cast<int>(by_path_[lo]);
  }
  return best;
}

Resolved MountTable::make(int mount, std::string_view normalized) const {
  const Entry& e = entries_[static_cast<std::size_t>(mount)];
  // normalized is e.path or e.path + "/" + rel; for the mount "/" it is "/" + rel.
  std::string_view rel = normalized.substr(e.path.size());
  if (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  Resolved r;
  r.mount = mount;
  r.is_root = rel.empty();
  r.key.reserve(e.prefix.size() + rel.size());
  r.key = e.prefix;
  r.key += rel;
  return r;
}

Resolved MountTable::resolve(std::string_view path, std::string_view cwd) const noexcept {
  try {
    if (path.empty() || path.size() > mounts::kMaxPathLength || has_nul(path)) return {};
    std::string abs;
    if (path.front() == '/') {
      abs.reserve(path.size() + 1);
      abs = "/";
    } else {
      if (cwd.empty() || cwd.front() != '/' || has_nul(cwd)) return {};
      abs.reserve(cwd.size() + path.size() + 2);
      abs = "/";
      mounts::append_lexical(abs, cwd);
    }
    mounts::append_lexical(abs, path);
    // cwd + path may normalize to more than the kernel takes; a key whose
    // local path could not be named again is not handed out.
    if (abs.size() > mounts::kMaxPathLength) return {};
    int m = find(abs);
    if (m < 0) return {};
    return make(m, abs);
  } catch (const std::exception&) {
    return {};
  }
}

Resolved MountTable::resolve_at(int mount, std::string_view dir_key,
                                std::string_view rel) const noexcept {
  if (rel.empty()) return {};
  if (rel.front() == '/') return resolve(rel);
  try {
    std::string dir = local_path(mount, dir_key);
    if (dir.empty()) return {};
    return resolve(rel, dir);
  } catch (const std::exception&) {
    return {};
  }
}

std::string MountTable::local_path(int mount, std::string_view key) const noexcept {
  try {
    if (mount < 0 || static_cast<std::size_t>(mount) >= entries_.size()) return {};
    const Entry& e = entries_[static_cast<std::size_t>(mount)];
    if (e.path.empty()) return {};
    std::string_view prefix = e.prefix;
    std::string_view rel;
    if (key.starts_with(prefix)) {
      rel = key.substr(prefix.size());
    } else if (!prefix.empty() && key == prefix.substr(0, prefix.size() - 1)) {
      rel = {};  // the prefix without its '/' names the root as well
    } else {
      return {};
    }
    if (rel.ends_with('/')) rel.remove_suffix(1);  // a directory key "a/dir/"
    if (!mounts::is_clean_relative(rel)) return {};
    std::string out;
    out.reserve(e.path.size() + 1 + rel.size());
    out = e.path;
    if (!rel.empty()) {
      if (out.size() > 1) out += '/';
      out += rel;
    }
    if (out.size() > mounts::kMaxPathLength) return {};
    return out;
  } catch (const std::exception&) {
    return {};
  }
}

namespace {

// Whether some mount path (sorted in by_path) lies strictly below the
// normalized directory dir, and if names is given, the next component of
// each such mount path.
template <typename Entries>
bool below(const Entries& entries, const std::vector<std::uint32_t>& by_path, std::string_view dir,
           std::vector<std::string>* names) {
  // "/" + "..." for the root, else dir + "/...": the paths with that prefix
  // are contiguous in byte order.
  const std::string_view head = dir.size() == 1 ? std::string_view() : dir;
  auto first = std::partition_point(by_path.begin(), by_path.end(), [&](std::uint32_t i) {
    const std::string& p = entries[i].path;
    const int c = p.compare(0, head.size(), head);
    return c < 0 || (c == 0 && (p.size() == head.size() || p[head.size()] < '/'));
  });
  bool any = false;
  for (auto it = first; it != by_path.end(); ++it) {
    const std::string& p = entries[*it].path;
    if (p.size() <= head.size() + 1 || p.compare(0, head.size(), head) != 0 || p[head.size()] != '/') break;
    any = true;
    if (names == nullptr) return true;
    std::string_view rest = std::string_view(p).substr(head.size() + 1);
    std::string name(rest.substr(0, rest.find('/')));
    if (names->empty() || names->back() != name) names->push_back(std::move(name));
  }
  return any;
}

}  // namespace

bool MountTable::maybe_ours(std::string_view p) const noexcept {
  if (p.empty() || p.front() != '/') return true;  // relative: only resolve knows
  if (p.size() > mounts::kMaxPathLength || has_nul(p)) return false;
  if (find(p) >= 0) return true;
  // No mount on the face of it; a ".." could still lead into one.
  return mounts::has_dotdot(p);
}

MountTable::Above MountTable::above(std::string_view path, std::string_view cwd) const noexcept {
  try {
    Above out;
    if (path.empty() || path.size() > mounts::kMaxPathLength || has_nul(path)) return out;
    std::string abs = "/";
    if (path.front() != '/') {
      if (cwd.empty() || cwd.front() != '/') return out;
      mounts::append_lexical(abs, cwd);
    }
    mounts::append_lexical(abs, path);
    if (root_mount_ >= 0 || find(abs) >= 0) return out;  // in a mount: not above one
    std::vector<std::string> names;
    if (!below(entries_, by_path_, abs, &names)) return out;
    out.path = std::move(abs);
    out.names = std::move(names);
    return out;
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace objcache
