// SPDX-License-Identifier: Apache-2.0
// The lookup follows glibc's do_lookup_x for a dlsym without a version:
// the GNU hash's bloom filter, then its chain; a definition (not undefined,
// not local) whose version is not hidden (a compat-only symbol is found by
// dlvsym, not here). The load order of the objects after a preloaded one
// is the order of its RTLD_NEXT scope (the main program's search list:
// preloads, then the needed libraries breadth first); a dlopened shim has
// no object after it in the chain, and falls back to dlsym.
#include "next_scope.h"

#include <dlfcn.h>

#include <cstring>

namespace objcache::preload::real {

namespace {

// A d_ptr the loader relocated in place (writable .dynamic, the usual
// case) is an address; a read-only one (the vDSO) is still an offset.
ElfW(Addr) at(ElfW(Addr) base, ElfW(Addr) ptr) noexcept { return ptr < base ? ptr + base : ptr; }

std::uint32_t gnu_hash_of(const char* name) noexcept {
  std::uint32_t h = 5381;
  for (const auto* p = reinterpret_cast<const unsigned char*>(name); *p != '\0'; ++p) h = h * 33 + *p;
  return h;
}

}  // namespace

bool NextScope::init(const void* self) noexcept {
  usable_ = false;
  count_ = 0;
#if !defined(__LP64__)
  (void)self;
  return false;  // the symbol layout read below is ELF64's
#endif
  Dl_info info{};
  struct link_map* me = nullptr;
  if (::dladdr1(self, &info, reinterpret_cast<void**>(&me), RTLD_DL_LINKMAP) == 0 || me == nullptr) return false;
  for (struct link_map* l = me->l_next; l != nullptr; l = l->l_next) {
    if (count_ == kMaxObjects || l->l_ld == nullptr) return false;
    Object o;
    o.base = l->l_addr;
    for (const ElfW(Dyn)* d = l->l_ld; d->d_tag != DT_NULL; ++d) {
      switch (d->d_tag) {
        case DT_SYMTAB: o.symtab = reinterpret_cast<const ElfW(Sym)*>(at(o.base, d->d_un.d_ptr)); break;
        case DT_STRTAB: o.strtab = reinterpret_cast<const char*>(at(o.base, d->d_un.d_ptr)); break;
        case DT_VERSYM: o.versym = reinterpret_cast<const ElfW(Half)*>(at(o.base, d->d_un.d_ptr)); break;
        case DT_GNU_HASH: o.gnu_hash = reinterpret_cast<const std::uint32_t*>(at(o.base, d->d_un.d_ptr)); break;
        default: break;
      }
    }
    // Without a GNU hash table we cannot tell that it lacks a name.
    if (o.symtab == nullptr || o.strtab == nullptr || o.gnu_hash == nullptr) return false;
    objects_[count_++] = o;
  }
  usable_ = count_ > 0;
  return usable_;
}

void* NextScope::find(const char* name) const noexcept {
  if (!usable_) return nullptr;
  const std::uint32_t h = gnu_hash_of(name);
  constexpr unsigned kBits = sizeof(ElfW(Addr)) * 8;
  for (std::size_t i = 0; i < count_; ++i) {
    const Object& o = objects_[i];
    const std::uint32_t nbuckets = o.gnu_hash[0];
    const std::uint32_t symoffset = o.gnu_hash[1];
    const std::uint32_t bloom_size = o.gnu_hash[2];
    const std::uint32_t bloom_shift = o.gnu_hash[3];
    if (nbuckets == 0 || bloom_size == 0) continue;  // no symbols
    const auto* bloom = reinterpret_cast<const ElfW(Addr)*>(o.gnu_hash + 4);
    const auto* buckets = reinterpret_cast<const std::uint32_t*>(bloom + bloom_size);
    const std::uint32_t* chain = buckets + nbuckets;
    const ElfW(Addr) word = bloom[(h / kBits) % bloom_size];
    const ElfW(Addr) mask = (ElfW(Addr){1} << (h % kBits)) | (ElfW(Addr){1} << ((h >> bloom_shift) % kBits));
    if ((word & mask) != mask) continue;
    std::uint32_t sym = buckets[h % nbuckets];
    if (sym < symoffset) continue;
    for (;; ++sym) {
      const std::uint32_t h2 = chain[sym - symoffset];
      if ((h | 1) == (h2 | 1)) {
        const ElfW(Sym)& s = o.symtab[sym];
        const unsigned type = ELF64_ST_TYPE(s.st_info);
        const unsigned bind = ELF64_ST_BIND(s.st_info);
        const bool hidden = o.versym != nullptr && (o.versym[sym] & 0x8000) != 0;
        if (s.st_shndx != SHN_UNDEF && s.st_value != 0 && bind != STB_LOCAL && !hidden && std::strcmp(o.strtab + s.st_name, name) == 0) {
          if (type == STT_GNU_IFUNC || type == STT_TLS) return nullptr;  // dlsym's business
          if (type != STT_FUNC && type != STT_NOTYPE && type != STT_OBJECT) return nullptr;
          return reinterpret_cast<void*>(o.base + s.st_value);
        }
      }
      if ((h2 & 1) != 0) break;
    }
  }
  return nullptr;  // not found after us: dlsym (and dlvsym) decide
}

}  // namespace objcache::preload::real
