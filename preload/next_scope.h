// SPDX-License-Identifier: Apache-2.0
// NextScope: what dlsym(RTLD_NEXT, name) answers for a preloaded object,
// found by reading the GNU hash tables of the objects loaded after it, in
// load order, without the loader's lock and per-call work (about 0.3 us a
// symbol, 175 symbols at every process start). Only a fast path: whenever
// it cannot be sure (an object without a GNU hash table, an IFUNC, no
// object after us as when the shim is dlopened, too many objects), find()
// says nullptr and the caller asks dlsym. Must not: allocate, lock, or call
// a name the shim exports.
#pragma once

#include <link.h>

#include <cstddef>
#include <cstdint>

namespace objcache::preload::real {

class NextScope {
 public:
  // The objects after the one holding `self` in the link-map chain.
  // false: none, or one we cannot read (find() then always says nullptr).
  bool init(const void* self) noexcept;
  // The default-version definition of name in the first object that has
  // one, or nullptr (none we are sure of).
  void* find(const char* name) const noexcept;

 private:
  struct Object {
    ElfW(Addr) base = 0;
    const ElfW(Sym)* symtab = nullptr;
    const char* strtab = nullptr;
    const ElfW(Half)* versym = nullptr;  // null: unversioned
    const std::uint32_t* gnu_hash = nullptr;
  };
  static constexpr std::size_t kMaxObjects = 64;
  Object objects_[kMaxObjects];
  std::size_t count_ = 0;
  bool usable_ = false;
};

}  // namespace objcache::preload::real
