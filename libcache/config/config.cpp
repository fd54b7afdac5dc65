// SPDX-License-Identifier: Apache-2.0
// Reads objcache's TOML file into the structs of config.h and checks every
// value. The only file that includes toml11: whatever it throws (syntax
// errors, bad_alloc, ...) stops here and becomes one Error that names the
// file, the line and the key, so that a user can fix it without guessing.
#include "objcache/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <sstream>
#include <utility>

#include <toml.hpp>

#include "config/checks.h"

namespace objcache {
namespace {

using config::quote;

// No objcache config comes near this; reading /dev/zero by mistake must stop.
constexpr std::size_t kMaxFileBytes = 4u << 20;
// toml11 parses arrays, inline tables and dotted keys recursively, so
// "a = [[[[..." thousands deep overflows the stack of whatever program
// loaded us. The schema needs three levels; refuse far deeper files early.
constexpr int kMaxNesting = 64;

constexpr std::string_view kSizeExpected =
    R"(expected a size like "512MiB" or "4GiB", or an integer of bytes)";
constexpr std::string_view kDurationExpected =
    R"(expected a duration like "30s", "5m" or "250ms", or an integer of seconds)";
constexpr std::string_view kPathExpected = R"(expected an absolute path like "/mnt/data")";
constexpr std::string_view kSourceExpected = R"(expected a source like "s3://bucket/prefix/")";

Error config_error(std::string message) { return make_error(Status::ConfigError, std::move(message)); }

bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// A key as the user wrote it, quoted when it is not a bare key.
std::string show_key(const std::string& k) { return is_bare_key(k) ? k : quote(k); }

// What a value is, for "got ..." in messages.
std::string describe(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::string: return quote(v.as_string().str);
    case toml::value_t::table: return "a table";
    case toml::value_t::array: return "an array";
    case toml::value_t::empty: return "nothing";
    case toml::value_t::integer:
      // toml11 3.7 saturates an integer that does not fit in 64 bits, so
      // these two mostly mean "something huge" rather than this number.
      if (v.as_integer() == std::numeric_limits<std::int64_t>::max() ||
          v.as_integer() == std::numeric_limits<std::int64_t>::min()) {
        return "an integer beyond 64 bits";
      }
      return std::to_string(v.as_integer());
    default: {
      std::string s = toml::format(v);
      return s.size() > 80 ? s.substr(0, 80) + "..." : s;
    }
  }
}

// The line of a value. toml11 3.7 finds it by counting the newlines before
// the value on every call (source_location's constructor), which made a
// file of thousands of [[mount]]s take minutes; this counts them once and
// answers by binary search over the offsets of the newlines.
class Lines {
 public:
  std::uint32_t of(const toml::value& v) {
    const auto* r = dynamic_cast<const toml::detail::region*>(toml::detail::get_region(v));
    if (r == nullptr || !r->is_ok()) return static_cast<std::uint32_t>(v.location().line());
    const std::vector<char>* src = r->source().get();
    if (src != source_) index(*src);
    auto offset = static_cast<std::size_t>(r->first() - r->begin());
    auto before = std::lower_bound(newlines_.begin(), newlines_.end(), offset) - newlines_.begin();
    return static_cast<std::uint32_t>(before + 1);
  }

 private:
  void index(const std::vector<char>& src) {
    source_ = &src;
    newlines_.clear();
    for (std::size_t i = 0; i < src.size(); ++i) {
      if (src[i] == '\n') newlines_.push_back(i);
    }
  }

  const std::vector<char>* source_ = nullptr;  // the text newlines_ indexes
  std::vector<std::size_t> newlines_;          // offsets of its '\n's
};

std::string where(const std::string& file, std::uint32_t line) {
  return line == 0 ? file : file + ":" + std::to_string(line);
}

// A table's entries in file order, so that the first problem reported is
// the first one in the file whatever the hash map's order.
struct Entry {
  std::uint32_t line;
  const std::string* key;
  const toml::value* value;
};

std::vector<Entry> entries_in_order(const toml::value& table, Lines& lines) {
  std::vector<Entry> out;
  for (const auto& [k, v] : table.as_table()) out.push_back({lines.of(v), &k, &v});
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.line != b.line ? a.line < b.line : *a.key < *b.key;
  });
  return out;
}

std::string join(std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// The line where text first nests deeper than kMaxNesting, or 0. A rough
// lexer: it skips strings and comments and counts '[', '{' and the dots of
// a dotted key. It may undercount on malformed input (toml11 then reports
// the syntax error) but never overcounts a valid file.
std::uint32_t find_deep_nesting(std::string_view text) {
  enum class In { Code, Comment, Basic, Literal, MultiBasic, MultiLiteral };
  In in = In::Code;
  int depth = 0;  // open '[' and '{'
  int chain = 0;  // dots in the current dotted key (or number)
  std::uint32_t line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') ++line;
    switch (in) {
      case In::Comment:
        if (c == '\n') in = In::Code;
        continue;
      case In::Basic:
      case In::MultiBasic:
        if (c == '\\' && i + 1 < text.size()) {
          if (text[++i] == '\n') ++line;
        } else if (in == In::MultiBasic && text.compare(i, 3, R"(""")") == 0) {
          in = In::Code;
          i += 2;
        } else if (in == In::Basic && (c == '"' || c == '\n')) {
          in = In::Code;
        }
        continue;
      case In::Literal:
        if (c == '\'' || c == '\n') in = In::Code;
        continue;
      case In::MultiLiteral:
        if (text.compare(i, 3, "'''") == 0) {
          in = In::Code;
          i += 2;
        }
        continue;
      case In::Code: break;
    }
    switch (c) {
      case '#': in = In::Comment; break;
      case '"':
        in = text.compare(i, 3, R"(""")") == 0 ? In::MultiBasic : In::Basic;
        if (in == In::MultiBasic) i += 2;
        break;
      case '\'':
        in = text.compare(i, 3, "'''") == 0 ? In::MultiLiteral : In::Literal;
        if (in == In::MultiLiteral) i += 2;
        break;
      case '[':
      case '{':
        ++depth;
        chain = 0;
        break;
      case ']':
      case '}':
        depth = depth > 0 ? depth - 1 : 0;
        chain = 0;
        break;
      case '.': ++chain; break;
      default:
        if (!is_bare_key(std::string_view(&c, 1)) && c != ' ' && c != '\t') chain = 0;
    }
    if (depth + chain > kMaxNesting) return line;
  }
  return 0;
}

// Where text is first not UTF-8, or nullopt. TOML files must be UTF-8,
// and toml11 3.7 reads past its buffer when it reports a bad sequence in a
// literal string, so the whole file is checked before toml11 sees it.
// Strict: no overlong forms, no surrogates, nothing above U+10FFFF.
struct BadByte {
  std::uint32_t line;
  std::uint32_t column;  // in bytes, from 1
  unsigned char byte;
};

std::optional<BadByte> find_invalid_utf8(std::string_view text) {
  std::uint32_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if (b == '\n') {
        ++line;
        line_start = i + 1;
      }
      ++i;
      continue;
    }
    // The sequence's length and the range its second byte may take.
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
    }
    bool ok = len != 0 && i + len <= text.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    }
    if (!ok) return BadByte{line, static_cast<std::uint32_t>(i - line_start + 1), b};
    i += len;
  }
  return std::nullopt;
}

void trim_end(std::string* s) {
  while (!s->empty() && (s->back() == '.' || s->back() == ' ')) s->pop_back();
  while (!s->empty() && s->front() == ' ') s->erase(0, 1);
}

// toml11's what() is a multi-line report with a source excerpt:
//   [error] toml::parse_key_value_pair: missing value after key-value separator '='
//    --> /etc/x.toml
//      |
//    3 | memory =
//      |          ^--- expected value, but got nothing
// We keep its reason and the last caret note: "missing value after
// key-value separator '=' (expected value, but got nothing)".
std::string condense_toml_error(const std::string& what) {
  std::istringstream in(what);
  std::string line;
  std::string reason;
  std::string note;
  bool first = true;
  while (std::getline(in, line)) {
    if (first) {
      first = false;
      reason = line;
      if (reason.rfind("[error] ", 0) == 0) reason.erase(0, 8);
      // Drop the name of toml11's function: "toml::parse_key: ", "parse_ml_basic_string: ".
      std::size_t name_end = reason.find_first_not_of("abcdefghijklmnopqrstuvwxyz_:");
      if (name_end != std::string::npos && name_end > 0 && reason[name_end - 1] == ':' &&
          reason.find('_') < name_end) {
        reason.erase(0, name_end);
      } else if (name_end == std::string::npos && reason.rfind("toml::", 0) == 0) {
        reason.clear();  // a bare "toml::parse_boolean:" says nothing to a user
      }
      trim_end(&reason);
      continue;
    }
    std::size_t bar = line.find(" | ");
    if (bar == std::string::npos) continue;
    std::string_view rest = std::string_view(line).substr(bar + 3);
    std::size_t mark = rest.find_first_not_of(' ');
    if (mark == std::string_view::npos || (rest[mark] != '^' && rest[mark] != '~')) continue;
    rest.remove_prefix(mark);
    std::size_t text = rest.find_first_not_of("^~-");
    if (text == std::string_view::npos) continue;
    rest.remove_prefix(text);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    std::string text_note(rest);
    trim_end(&text_note);
    if (!text_note.empty() && text_note != "here") note = text_note;
  }
  std::string out = reason.empty() ? note : reason;
  if (out.empty()) out = "invalid TOML";
  if (!reason.empty() && !note.empty() && note != reason) out += " (" + note + ")";
  if (out.size() > 240) out = out.substr(0, 240) + "...";
  return out;
}

// One table of the file: "cache", "store", "log" or "mount[2]".
struct Section {
  std::string name;
  const toml::value* table = nullptr;  // nullptr when the file has none

  const toml::value* find(std::string_view key) const {
    if (table == nullptr) return nullptr;
    const auto& t = table->as_table();
    auto it = t.find(std::string(key));
    return it == t.end() ? nullptr : &it->second;
  }
};

// Mount path -> its number in the file (mount[N]).
using MountsByPath = std::map<std::string, std::size_t, config::PathLess>;

enum class Zero { Allow, Refuse };

using StringCheck = Result<std::string> (*)(const std::string&);

template <typename E>
struct Choice {
  std::string_view name;
  E value;
};

// Walks the parsed document section by section. Readers leave the default
// in place when a key is absent and do nothing once an error is recorded:
// the first problem found is the one reported.
class Loader {
 public:
  explicit Loader(const std::string& file) : file_(file) {}

  Result<Config> load(const toml::value& root) {
    Config cfg;
    cfg.path = file_;
    check_top_level(root);
    read_cache(section(root, "cache"), &cfg.cache);
    read_store(section(root, "store"), &cfg.store);
    read_mounts(root, cfg.store, &cfg.mounts);
    read_log(section(root, "log"), &cfg.log);
    check_needed(cfg);
    if (error_) return *error_;
    return cfg;
  }

 private:
  bool failed() const { return error_.has_value(); }

  void fail(std::uint32_t line, const std::string& message) {
    if (!failed()) error_ = config_error(where(file_, line) + ": " + message);
  }

  // "FILE:LINE: key 'cache.memory': what"
  void fail_key(const toml::value& v, const Section& s, std::string_view key, std::string_view what) {
    fail(lines_.of(v), "key '" + s.name + "." + std::string(key) + "': " + std::string(what));
  }

  void expected(const toml::value& v, const Section& s, std::string_view key, std::string_view expectation) {
    fail_key(v, s, key, std::string(expectation) + ", got " + describe(v));
  }

  // Reports key as wrong when it is present and ok is false. Only for rules
  // the defaults satisfy, so an absent key never breaks one.
  void require(const Section& s, std::string_view key, bool ok, std::string_view expectation) {
    if (ok || failed()) return;
    if (const toml::value* v = s.find(key)) expected(*v, s, key, expectation);
  }

  static Section section(const toml::value& root, const std::string& name) {
    Section s{name, nullptr};
    const auto& t = root.as_table();
    auto it = t.find(name);
    if (it != t.end() && it->second.is_table()) s.table = &it->second;
    return s;
  }

  void check_top_level(const toml::value& root) {
    constexpr std::string_view kKnown = "cache, store, mount, log";
    for (const auto& [line, key, v] : entries_in_order(root, lines_)) {
      const std::string& k = *key;
      if (k == "cache" || k == "store" || k == "log") {
        if (!v->is_table()) {
          fail(line, "key '" + k + "': expected a table [" + k + "], got " + describe(*v));
        }
      } else if (k == "mount") {
        if (!v->is_array()) {
          fail(line, "key 'mount': expected an array of tables [[mount]], got " + describe(*v));
        }
      } else if (v->is_table()) {
        fail(line, "unknown table '" + show_key(k) + "' (known tables: " + std::string(kKnown) + ")");
      } else {
        fail(line,
             "unknown key '" + show_key(k) + "' (keys belong in the tables " + std::string(kKnown) + ")");
      }
    }
  }

  void check_keys(const Section& s, std::initializer_list<std::string_view> known) {
    if (s.table == nullptr || failed()) return;
    for (const auto& [line, key, v] : entries_in_order(*s.table, lines_)) {
      if (std::find(known.begin(), known.end(), *key) != known.end()) continue;
      fail(line,
           "unknown key '" + s.name + "." + show_key(*key) + "' (known keys: " + join(known) + ")");
      return;
    }
  }

  // s.key as a string, passed through check (nullptr: any string will do).
  void read_string(const Section& s, std::string_view key, std::string* out, StringCheck check,
                   std::string_view expectation) {
    const toml::value* v = s.find(key);
    if (v == nullptr || failed()) return;
    if (!v->is_string()) return expected(*v, s, key, expectation);
    const std::string& text = v->as_string().str;
    if (check == nullptr) {
      *out = text;
      return;
    }
    auto checked = check(text);
    if (!checked) return fail_key(*v, s, key, checked.error().message);
    *out = std::move(*checked);
  }

  void read_bool(const Section& s, std::string_view key, bool* out) {
    const toml::value* v = s.find(key);
    if (v == nullptr || failed()) return;
    if (!v->is_boolean()) return expected(*v, s, key, "expected true or false");
    *out = v->as_boolean();
  }

  void read_int(const Section& s, std::string_view key, int* out, int lo, int hi) {
    const toml::value* v = s.find(key);
    if (v == nullptr || failed()) return;
    std::string expectation = "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (!v->is_integer() || v->as_integer() < lo || v->as_integer() > hi) {
      return expected(*v, s, key, expectation);
    }
    *out = static_cast<int>(v->as_integer());
  }

  void read_size(const Section& s, std::string_view key, std::uint64_t* out) {
    const toml::value* v = s.find(key);
    if (v == nullptr || failed()) return;
    if (v->is_integer()) {
      if (v->as_integer() < 0 || v->as_integer() == std::numeric_limits<std::int64_t>::max()) {
        return expected(*v, s, key, kSizeExpected);
      }
      *out = static_cast<std::uint64_t>(v->as_integer());
      return;
    }
    if (!v->is_string()) return expected(*v, s, key, kSizeExpected);
    auto bytes = parse_size(v->as_string().str);
    if (!bytes) return fail_key(*v, s, key, bytes.error().message);
    *out = *bytes;
  }

  void read_duration(const Section& s, std::string_view key, std::chrono::milliseconds* out, Zero zero) {
    const toml::value* v = s.find(key);
    if (v == nullptr || failed()) return;
    std::chrono::milliseconds d{0};
    if (v->is_integer()) {
      constexpr auto kMaxSeconds = std::numeric_limits<std::chrono::milliseconds::rep>::max() / 1000;
      if (v->as_integer() < 0 || v->as_integer() > kMaxSeconds)
        return expected(*v, s, key, kDurationExpected);
      d = std::chrono::seconds(v->as_integer());
    } else if (v->is_string()) {
      auto parsed = parse_duration(v->as_string().str);
      if (!parsed) return fail_key(*v, s, key, parsed.error().message);
      d = *parsed;
    } else {
      return expected(*v, s, key, kDurationExpected);
    }
    if (zero == Zero::Refuse && d.count() == 0) {
      return expected(*v, s, key, R"(expected a duration above 0 like "5s")");
    }
    *out = d;
  }

  template <typename E>
  void read_enum(const Section& s, std::string_view key, E* out, std::initializer_list<Choice<E>> choices) {
    const toml::value* v = s.find(key);
    if (v == nullptr || failed()) return;
    if (v->is_string()) {
      for (const Choice<E>& c : choices) {
        if (c.name == v->as_string().str) {
          *out = c.value;
          return;
        }
      }
    }
    std::string expectation = "expected ";
    std::size_t i = 0;
    for (const Choice<E>& c : choices) {
      if (i > 0) expectation += i + 1 == choices.size() ? " or " : ", ";
      expectation += '"';
      expectation += c.name;
      expectation += '"';
      ++i;
    }
    expected(*v, s, key, expectation);
  }

  void read_cache(const Section& s, CacheConfig* c) {
    check_keys(s, {"name", "memory", "spill_dir", "spill_size", "page_size", "eviction", "staging_dir"});
    read_string(s, "name", &c->name, config::check_cache_name,
                "expected a name of letters, digits, '.', '_' and '-'");
    read_size(s, "memory", &c->memory);
    require(s, "memory", c->memory >= kMinCacheMemory, "expected a size of at least 16MiB");
    read_string(
        s, "spill_dir", &c->spill_dir,
        [](const std::string& t) { return config::check_local_path(t, config::Tilde::Keep); },
        R"(expected "" or an absolute path)");
    read_size(s, "spill_size", &c->spill_size);
    read_string(
        s, "staging_dir", &c->staging_dir,
        [](const std::string& t) { return config::check_local_path(t, config::Tilde::Keep); },
        R"(expected "" or an absolute path)");
    read_size(s, "page_size", &c->page_size);
    std::uint64_t page = c->page_size;
    bool pow2 = page != 0 && (page & (page - 1)) == 0;
    require(s, "page_size", pow2 && page >= kMinPageSize && page <= kMaxPageSize,
            "expected a power of two from 64KiB to 64MiB");
    read_enum<Eviction>(s, "eviction", &c->eviction, {{"clock", Eviction::Clock}, {"none", Eviction::None}});
    if (failed()) return;

    // memory >= 4 * page_size, written so that it cannot overflow. Only an
    // explicit memory can break it: the default 4GiB holds 64 of the
    // largest pages.
    require(s, "memory", c->memory / 4 >= page,
            "expected at least 4 pages of cache.page_size (4 x " + format_size(page) + " = " +
                format_size(4 * page) + ")");
    require(
        s, "spill_size", c->spill_dir.empty() || c->spill_size > 0,
        R"(expected a size above 0 while cache.spill_dir is set (spill_dir = "" turns the SSD tier off))");
  }

  // The keys a [[mount]] may override as well as [store] set.
  void read_connection(const Section& s, StoreConfig* st) {
    constexpr std::string_view kEndpoint =
        R"(expected "" or a URL like "http://127.0.0.1:9000" (http(s)://host[:port], no path))";
    read_string(s, "endpoint", &st->endpoint, config::check_endpoint, kEndpoint);
    read_string(s, "read_endpoint", &st->read_endpoint, config::check_endpoint, kEndpoint);
    read_string(s, "region", &st->region, config::check_region,
                R"(expected "" or a region like "us-east-1")");
    read_enum<Addressing>(s, "addressing", &st->addressing,
                          {{"path", Addressing::Path}, {"virtual", Addressing::Virtual}});
    read_string(s, "credentials", &st->credentials, config::check_credentials,
                R"(expected "env", "anonymous", "profile:NAME" or "file:PATH")");
  }

  void read_store(const Section& s, StoreConfig* st) {
    check_keys(s, {"endpoint", "read_endpoint", "region", "addressing", "credentials", "prefetch_concurrency",
                   "upload_concurrency", "list_concurrency", "connect_timeout", "stall_timeout", "retry_deadline"});
    read_connection(s, st);
    read_int(s, "prefetch_concurrency", &st->prefetch_concurrency, 1, kMaxConcurrency);
    read_int(s, "upload_concurrency", &st->upload_concurrency, 1, kMaxConcurrency);
    read_int(s, "list_concurrency", &st->list_concurrency, 1, kMaxConcurrency);
    read_duration(s, "connect_timeout", &st->connect_timeout, Zero::Refuse);
    read_duration(s, "stall_timeout", &st->stall_timeout, Zero::Refuse);
    read_duration(s, "retry_deadline", &st->retry_deadline, Zero::Refuse);
  }

  void read_mounts(const toml::value& root, const StoreConfig& base, std::vector<MountConfig>* mounts) {
    if (failed()) return;
    const auto& t = root.as_table();
    auto it = t.find("mount");
    if (it == t.end() || !it->second.is_array()) return;  // absent, or reported by check_top_level
    MountsByPath& before = by_path_;
    std::size_t number = 0;
    for (const toml::value& v : it->second.as_array()) {
      ++number;
      Section s{"mount[" + std::to_string(number) + "]", &v};
      if (!v.is_table()) {
        fail(lines_.of(v), "key '" + s.name + "': expected a table with path and source, got " + describe(v));
        return;
      }
      MountConfig m;
      m.store = base;
      read_mount(s, &m);
      if (failed() || !check_overlap(s, m.path, before)) return;
      before.emplace(m.path, number);
      mount_paths_.push_back(s.find("path"));
      mounts->push_back(std::move(m));
    }
  }

  void read_mount(const Section& s, MountConfig* m) {
    check_keys(s, {"path", "source", "writable", "metadata_ttl", "prefetch", "manifest", "endpoint", "read_endpoint",
                   "region", "addressing", "credentials"});
    for (std::string_view required : {"path", "source"}) {
      if (s.find(required) == nullptr) {
        std::string what = required == "path" ? std::string(kPathExpected) : std::string(kSourceExpected);
        fail_key(*s.table, s, required, what + " (every [[mount]] needs one), got nothing");
      }
    }
    read_string(s, "path", &m->path, config::normalize_mount_path, kPathExpected);
    read_string(s, "source", &m->source_text, nullptr, kSourceExpected);
    if (const toml::value* v = s.find("source"); v != nullptr && !failed()) {
      auto uri = parse_source(m->source_text);
      if (!uri) return fail_key(*v, s, "source", uri.error().message);
      m->source = std::move(*uri);
    }
    read_bool(s, "writable", &m->writable);
    read_duration(s, "metadata_ttl", &m->metadata_ttl, Zero::Allow);
    read_enum<Prefetch>(
        s, "prefetch", &m->prefetch,
        {{"none", Prefetch::None}, {"file", Prefetch::File}, {"directory", Prefetch::Directory}});
    read_string(
        s, "manifest", &m->manifest,
        [](const std::string& t) { return config::check_local_path(t, config::Tilde::Expand); },
        R"(expected "" or an absolute path of a manifest file)");
    if (const toml::value* v = s.find("manifest"); v != nullptr && !failed() && !m->manifest.empty() && m->writable) {
      return fail_key(*v, s, "manifest",
                      "a mount with a manifest is read-only (its objects are fixed), and this one is writable");
    }
    read_connection(s, &m->store);
  }

  // Two mounts may neither share a path nor nest: which one would own
  // /mnt/a/b/x if both /mnt/a and /mnt/a/b were mounted? before holds the
  // mounts read so far, which do not overlap, in PathLess order: a mount's
  // parent among them comes just before it and its children just after,
  // so each mount costs a lookup (a file of 10,000 mounts loads at once).
  bool check_overlap(const Section& s, const std::string& path, const MountsByPath& before) {
    auto inside = [](const std::string& child, const std::string& parent) {
      return child.size() > parent.size() && child.compare(0, parent.size(), parent) == 0 &&
             child[parent.size()] == '/';
    };
    auto it = before.lower_bound(path);
    auto other = before.end();
    enum { Same, Inside, Holds } relation = Same;
    if (it != before.end() && it->first == path) {
      other = it;
    } else if (it != before.begin() && inside(path, std::prev(it)->first)) {
      other = std::prev(it);
      relation = Inside;
    } else {
      // The earliest in the file of the mounts inside this one.
      for (auto j = it; j != before.end() && inside(j->first, path); ++j) {
        if (other == before.end() || j->second < other->second) other = j;
      }
      relation = Holds;
    }
    if (other == before.end()) return true;
    std::string other_name = "mount[" + std::to_string(other->second) + "]";
    std::string at = " at line " + std::to_string(lines_.of(*mount_paths_[other->second - 1]));
    const toml::value& v = *s.find("path");
    if (relation == Same) {
      expected(v, s, "path", "expected a path no other [[mount]] has");
      error_->message += " (" + other_name + at + " has it too)";
    } else if (relation == Inside) {
      expected(v, s, "path", "expected a path outside every other [[mount]]");
      error_->message += " (inside " + other_name + " " + quote(other->first) + at + ")";
    } else {
      expected(v, s, "path", "expected a path outside every other [[mount]]");
      error_->message += " (" + other_name + " " + quote(other->first) + at + " is inside it)";
    }
    return false;
  }

  // A mount at or above a directory that programs under the shim need
  // takes it away from them (`path = "/etc"`: /etc/hosts, /etc/passwd, ...
  // are gone), so it is refused; one below it ("/tmp/data") is fine. Of
  // several, the first mount in the file is the one reported.
  void check_needed(const Config& cfg) {
    if (failed() || by_path_.empty()) return;
    std::size_t first = 0;
    const config::NeededDir* hidden = nullptr;
    const std::vector<config::NeededDir> needed = config::needed_dirs(cfg);
    for (const config::NeededDir& d : needed) {
      for (std::string_view a = d.path; a.size() > 1; a = a.substr(0, a.rfind('/'))) {
        auto it = by_path_.find(a);
        if (it != by_path_.end() && (hidden == nullptr || it->second < first)) {
          first = it->second;
          hidden = &d;
        }
      }
    }
    if (hidden == nullptr) return;
    Section s{"mount[" + std::to_string(first) + "]", nullptr};
    expected(*mount_paths_[first - 1], s, "path",
             "expected a path that hides no directory the programs under the shim need");
    error_->message += " (it would hide " + hidden->what + ")";
  }

  void read_log(const Section& s, LogConfig* l) {
    check_keys(s, {"level", "file"});
    read_enum<LogLevel>(s, "level", &l->level,
                        {{"error", LogLevel::Error},
                         {"warn", LogLevel::Warn},
                         {"info", LogLevel::Info},
                         {"debug", LogLevel::Debug}});
    read_string(
        s, "file", &l->file,
        [](const std::string& t) { return config::check_local_path(t, config::Tilde::Expand); },
        R"(expected "" or an absolute path)");
  }

  std::string file_;
  Lines lines_;
  std::vector<const toml::value*> mount_paths_;  // each mount's path value, for the lines in messages
  MountsByPath by_path_;                         // the mounts read so far
  std::optional<Error> error_;
};

std::string errno_text(int err) {
  char buf[256];
  // The GNU strerror_r (we build with _GNU_SOURCE): it returns the text.
  return strerror_r(err, buf, sizeof(buf));
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& display_path) {
  try {
    if (std::uint32_t line = find_deep_nesting(text); line != 0) {
      return config_error(where(display_path, line) + ": TOML nested more than " +
                          std::to_string(kMaxNesting) +
                          " levels deep (arrays, inline tables or dotted keys)");
    }
    if (auto bad = find_invalid_utf8(text)) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02X", bad->byte);
      return config_error(where(display_path, bad->line) + ": not UTF-8 (byte " + hex +
                          " at column " + std::to_string(bad->column) +
                          "); a TOML file must be UTF-8");
    }
    std::istringstream in(text);
    const toml::value root = toml::parse(in, display_path);
    return Loader(display_path).load(root);
  } catch (const toml::syntax_error& e) {
    return config_error(where(display_path, static_cast<std::uint32_t>(e.location().line())) +
                        ": TOML syntax error: " + condense_toml_error(e.what()));
  } catch (const toml::exception& e) {  // type_error, internal_error: a bug of ours, still no throw
    return config_error(where(display_path, static_cast<std::uint32_t>(e.location().line())) + ": " +
                        condense_toml_error(e.what()));
  } catch (const std::bad_alloc&) {
    return config_error(display_path + ": out of memory while reading the configuration");
  } catch (const std::exception& e) {
    return config_error(display_path + ": cannot parse: " + condense_toml_error(e.what()));
  } catch (...) {
    return config_error(display_path + ": cannot parse: unknown error");
  }
}

Result<Config> load_config(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return config_error(path + ": cannot read: " + errno_text(errno));
  std::string text;
  int err = 0;
  try {
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        break;
      }
      if (n == 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > kMaxFileBytes) break;
    }
  } catch (const std::exception&) {  // bad_alloc from append
    err = ENOMEM;
  }
  ::close(fd);
  if (err != 0) return config_error(path + ": cannot read: " + errno_text(err));
  if (text.size() > kMaxFileBytes) {
    return config_error(path + ": cannot read: larger than " + format_size(kMaxFileBytes) +
                        ", which no objcache configuration is");
  }
  return parse_config(text, path);
}

}  // namespace objcache
