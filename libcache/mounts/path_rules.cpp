// SPDX-License-Identifier: Apache-2.0
#include "mounts/path_rules.h"

namespace objcache::mounts {

bool Components::next(std::string_view& out) noexcept {
  while (!rest_.empty()) {
    std::size_t slash = rest_.find('/');
    std::string_view c = rest_.substr(0, slash);
    rest_.remove_prefix(slash == std::string_view::npos ? rest_.size() : slash + 1);
    if (!c.empty() && c != ".") {
      out = c;
      return true;
    }
  }
  return false;
}

void append_lexical(std::string& out, std::string_view path) {
  Components it(path);
  std::string_view c;
  while (it.next(c)) {
    if (c == "..") {
      // out is "/" or "/a/b": drop the last component, never the root.
      std::size_t slash = out.rfind('/');
      out.resize(slash == 0 || slash == std::string::npos ? 1 : slash);
    } else {
      if (out.size() > 1) out += '/';
      out += c;
    }
  }
}

bool has_dotdot(std::string_view path) noexcept {
  Components it(path);
  std::string_view c;
  while (it.next(c)) {
    if (c == "..") return true;
  }
  return false;
}

int compare_component(std::string_view path, std::size_t matched, std::string_view component) noexcept {
  std::string_view rest = path.substr(matched);
  if (rest.empty()) return -1;
  if (rest.front() != '/') return static_cast<unsigned char>(rest.front()) < '/' ? -1 : 1;
  rest.remove_prefix(1);
  // char_traits<char>::compare is memcmp: unsigned, like std::string's <.
  return rest.substr(0, component.size()).compare(component);
}

bool is_clean_relative(std::string_view rel) noexcept {
  if (rel.empty()) return true;
  if (rel.find('\0') != std::string_view::npos) return false;
  while (true) {
    std::size_t slash = rel.find('/');
    std::string_view c = rel.substr(0, slash);
    if (c.empty() || c == "." || c == "..") return false;
    if (slash == std::string_view::npos) return true;
    rel.remove_prefix(slash + 1);
  }
}

}  // namespace objcache::mounts
