// SPDX-License-Identifier: Apache-2.0
// OBJCACHE_API marks what libobjcache.so exports: the public API and
// nothing else (the library is built with -fvisibility=hidden, so its
// internals, libcurl's and OpenSSL's users among them, stay private).
#pragma once

#define OBJCACHE_API __attribute__((visibility("default")))
