// SPDX-License-Identifier: Apache-2.0
// Sizes and durations as text: "512MiB", "1.5GiB", "30s", "250ms", read
// exactly (no floating point) and written back in a form they read again;
// and the names of the config's enums. No TOML, no system call.

#include <array>
#include <limits>
#include <optional>

#include "config/checks.h"
#include "objcache/config.h"

namespace objcache {
namespace {

using config::invalid;
using config::lower;

// 128 bits keep "0.3TiB" exact without floating point; __extension__ keeps
// -Wpedantic quiet about a type every compiler we target has.
__extension__ typedef unsigned __int128 U128;

struct Unit {
  std::string_view name;  // lower case; matched case-insensitively
  std::uint64_t factor;
};

constexpr std::array<Unit, 9> kSizeUnits = {{
    {"b", 1},
    {"kb", 1000ull},
    {"mb", 1000ull * 1000},
    {"gb", 1000ull * 1000 * 1000},
    {"tb", 1000ull * 1000 * 1000 * 1000},
    {"kib", 1ull << 10},
    {"mib", 1ull << 20},
    {"gib", 1ull << 30},
    {"tib", 1ull << 40},
}};

constexpr std::array<Unit, 5> kDurationUnits = {{
    {"ms", 1},
    {"s", 1000},
    {"m", 60ull * 1000},
    {"h", 3600ull * 1000},
    {"d", 86400ull * 1000},
}};

constexpr std::string_view kSizeExpected = R"(expected a size like "512MiB" or "4GiB")";
constexpr std::string_view kDurationExpected = R"(expected a duration like "30s", "5m" or "250ms")";

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// "123" or "1.5". The fraction keeps 19 digits at most: with the largest
// unit (2^40 or one day in ms) the rest is worth less than one unit step.
struct Decimal {
  std::uint64_t whole = 0;
  std::uint64_t frac = 0;        // frac / frac_scale is the fractional part
  std::uint64_t frac_scale = 1;  // a power of ten
};

enum class NumberError { None, NotANumber, Negative, TooLarge };

// Splits " 1.5 GiB " into the number and what follows it (the unit).
NumberError split_number(std::string_view text, Decimal* num, std::string_view* unit) {
  std::string_view s = trim(text);
  if (!s.empty() && s.front() == '-') return NumberError::Negative;
  std::size_t i = 0;
  if (i == s.size() || !is_digit(s[i])) return NumberError::NotANumber;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    auto digit = static_cast<std::uint64_t>(s[i] - '0');
    if (__builtin_mul_overflow(num->whole, 10u, &num->whole) ||
        __builtin_add_overflow(num->whole, digit, &num->whole)) {
      return NumberError::TooLarge;
    }
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i == s.size() || !is_digit(s[i])) return NumberError::NotANumber;
    for (int kept = 0; i < s.size() && is_digit(s[i]); ++i) {
      if (kept++ >= 19) continue;
      num->frac = num->frac * 10 + static_cast<std::uint64_t>(s[i] - '0');
      num->frac_scale *= 10;
    }
  }
  *unit = trim(s.substr(i));
  return NumberError::None;
}

// n * factor with the fraction truncated; nullopt above max.
std::optional<std::uint64_t> scale(const Decimal& n, std::uint64_t factor, std::uint64_t max) {
  std::uint64_t out = 0;
  if (__builtin_mul_overflow(n.whole, factor, &out)) return std::nullopt;
  auto part = static_cast<std::uint64_t>(static_cast<U128>(n.frac) * factor / n.frac_scale);
  if (__builtin_add_overflow(out, part, &out)) return std::nullopt;
  if (out > max) return std::nullopt;
  return out;
}

template <std::size_t N>
const Unit* find_unit(const std::array<Unit, N>& units, std::string_view name) {
  std::string l = lower(name);
  for (const Unit& u : units) {
    if (u.name == l) return &u;
  }
  return nullptr;
}

// Appends "12" or "12.5" (up to two decimals, trailing zeros dropped).
void append_two_decimals(std::string* out, std::uint64_t whole, std::uint64_t hundredths) {
  *out += std::to_string(whole);
  if (hundredths == 0) return;
  *out += '.';
  *out += static_cast<char>('0' + hundredths / 10);
  if (hundredths % 10 != 0) *out += static_cast<char>('0' + hundredths % 10);
}

}  // namespace

Result<std::uint64_t> parse_size(const std::string& text) {
  Decimal n;
  std::string_view unit;
  switch (split_number(text, &n, &unit)) {
    case NumberError::None: break;
    case NumberError::NotANumber: return invalid(kSizeExpected, "", text);
    case NumberError::Negative: return invalid(kSizeExpected, " (not negative)", text);
    case NumberError::TooLarge: return invalid(kSizeExpected, " (at most 16EiB)", text);
  }
  std::uint64_t factor = 1;
  if (!unit.empty()) {
    const Unit* u = find_unit(kSizeUnits, unit);
    if (u == nullptr) {
      return invalid(kSizeExpected,
                     " (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, any case; none means bytes)", text);
    }
    factor = u->factor;
  }
  if (factor == 1 && n.frac != 0) return invalid(kSizeExpected, " (whole bytes)", text);
  auto bytes = scale(n, factor, std::numeric_limits<std::uint64_t>::max());
  if (!bytes) return invalid(kSizeExpected, " (at most 16EiB)", text);
  return *bytes;
}

Result<std::chrono::milliseconds> parse_duration(const std::string& text) {
  Decimal n;
  std::string_view unit;
  switch (split_number(text, &n, &unit)) {
    case NumberError::None: break;
    case NumberError::NotANumber: return invalid(kDurationExpected, "", text);
    case NumberError::Negative: return invalid(kDurationExpected, " (not negative)", text);
    case NumberError::TooLarge: return invalid(kDurationExpected, " (too long)", text);
  }
  std::uint64_t factor = 1000;  // a bare number is seconds
  if (!unit.empty()) {
    const Unit* u = find_unit(kDurationUnits, unit);
    if (u == nullptr) {
      return invalid(kDurationExpected, " (units: ms, s, m, h, d; none means seconds)", text);
    }
    factor = u->factor;
  }
  constexpr auto kMax =
      static_cast<std::uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
  auto ms = scale(n, factor, kMax);
  if (!ms) return invalid(kDurationExpected, " (too long)", text);
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*ms));
}

std::string_view to_string(Eviction e) {
  switch (e) {
    case Eviction::Clock: return "clock";
    case Eviction::None: return "none";
  }
  return "unknown";
}

std::string_view to_string(Addressing a) {
  switch (a) {
    case Addressing::Path: return "path";
    case Addressing::Virtual: return "virtual";
  }
  return "unknown";
}

std::string_view to_string(Prefetch p) {
  switch (p) {
    case Prefetch::None: return "none";
    case Prefetch::File: return "file";
    case Prefetch::Directory: return "directory";
  }
  return "unknown";
}

std::string_view to_string(LogLevel l) {
  switch (l) {
    case LogLevel::Error: return "error";
    case LogLevel::Warn: return "warn";
    case LogLevel::Info: return "info";
    case LogLevel::Debug: return "debug";
  }
  return "unknown";
}

std::string format_size(std::uint64_t bytes) {
  // Stops at TiB so that whatever is printed parse_size reads back.
  constexpr std::array<std::string_view, 5> kNames = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t i = 0;
  while (i + 1 < kNames.size() && bytes >= (1ull << (10 * (i + 1)))) ++i;
  std::uint64_t unit = 1ull << (10 * i);
  std::uint64_t whole = bytes / unit;
  std::uint64_t hundredths = ((bytes % unit) * 100 + unit / 2) / unit;
  if (hundredths == 100) {
    ++whole;
    hundredths = 0;
  }
  if (whole == 1024 && i + 1 < kNames.size()) {  // 1023.999MiB rounds to 1GiB
    whole = 1;
    ++i;
  }
  std::string out;
  append_two_decimals(&out, whole, hundredths);
  out += kNames[i];
  return out;
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms == 0) return "0s";
  std::string sign;
  std::uint64_t v = 0;
  if (ms < 0) {
    sign = "-";
    v = static_cast<std::uint64_t>(-(ms + 1)) + 1;  // no overflow at the minimum
  } else {
    v = static_cast<std::uint64_t>(ms);
  }
  // The largest unit that divides evenly: exact, and parse_duration reads it back.
  for (auto it = kDurationUnits.rbegin(); it != kDurationUnits.rend(); ++it) {
    if (v % it->factor == 0) return sign + std::to_string(v / it->factor) + std::string(it->name);
  }
  return sign + std::to_string(v) + "ms";
}

}  // namespace objcache
