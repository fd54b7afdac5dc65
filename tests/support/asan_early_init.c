/* SPDX-License-Identifier: Apache-2.0
 *
 * Preloaded (after libasan, before the shim) into programs the ASan build of
 * the shim is tested with. Built by the test scripts with
 *   cc -shared -fPIC -nostdlib -Wl,-z,initfirst
 * so that it needs nothing and its constructor runs before every other one.
 *
 * Why: an uninstrumented program gets the ASan runtime from LD_PRELOAD, and
 * ld.so initializes preloaded objects last. The shim links libcurl, which
 * pulls in p11-kit, whose constructor calls newlocale(); that holds glibc's
 * locale lock for writing and mallocs, which starts ASan lazily; ASan's start
 * calls dlerror -> dcgettext, whose read-lock of the same lock fails and whose
 * unlock then releases newlocale's lock. The lock is left at -1 readers and
 * the freelocale() in p11-kit's destructor waits forever at exit. One malloc
 * here, first of all, starts ASan outside any lock. Programs without the ASan
 * runtime (users of the shim) are not affected. */
extern void *malloc(unsigned long);
extern void free(void *);

__attribute__((constructor)) static void start_asan_first(void) { free(malloc(1)); }
