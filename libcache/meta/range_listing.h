// SPDX-License-Identifier: Apache-2.0
// Lists one delimited prefix with several LISTs in flight. ListObjectsV2
// pages are sequential (each continues the last), so a directory of a
// million keys costs a thousand round trips one after another. Here the
// key space after a page is cut into ranges at split points guessed from
// that page's names, and each range is listed on its own, starting after
// its low end and stopping past its high end. The ranges cover every key
// whatever the guess: a bad guess costs an empty LIST, never a lost or a
// doubled entry. Knows only the ObjectStore interface.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/object_store.h"
#include "objcache/result.h"

namespace objcache::meta {

struct ListedPrefix {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  std::uint64_t requests = 0;  // LISTs made
};

// Split points for the keys after `last` (the greatest entry of a page
// that listed entries from `first` on, both under prefix) and up to hi
// ("" = no bound): ascending strings, each > last and < hi, at most
// max_points. Made from the characters the page's names use (printable
// ASCII only, never the delimiter '/', never inside a UTF-8 sequence), at
// the positions where the names vary and above.
std::vector<std::string> split_points(std::string_view prefix, std::string_view first, std::string_view last,
                                      const std::vector<std::string_view>& names, std::string_view hi,
                                      std::size_t max_points);

// Every object and common prefix of a delimited ("/") listing of prefix,
// with up to concurrency LISTs in flight once the first page came back
// truncated. on_request runs once per LIST sent (from any thread). The
// first error stops the listing and is returned.
Result<ListedPrefix> list_prefix(ObjectStore& store, const std::string& prefix, int concurrency,
                                 const std::function<void()>& on_request);

}  // namespace objcache::meta
