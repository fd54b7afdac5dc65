# SPDX-License-Identifier: Apache-2.0
"""Finds libobjcache and declares the C ABI (objcache/objcache.h) to ctypes.
The library is OBJCACHE_LIB if set, else the one installed with this
module (_install.py, written by meson install), else a build tree's
(build/libcache/ above this folder), else whatever the loader finds."""
import ctypes
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    env = os.environ.get("OBJCACHE_LIB")
    if env:
        yield env
        return
    try:
        from . import _install  # written at install time

        yield os.path.join(_install.LIBDIR, "libobjcache.so." + _install.SOVERSION)
        yield os.path.join(_install.LIBDIR, "libobjcache.so")
    except ImportError:
        pass
    top = os.path.dirname(os.path.dirname(_HERE))
    yield os.path.join(top, "build", "libcache", "libobjcache.so")
    yield "libobjcache.so.0"


def _load():
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            errors.append(path + ": no such file")
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
    raise ImportError("objcache: cannot load libobjcache (set OBJCACHE_LIB): " + "; ".join(errors))


lib = _load()

c_int, c_int64, c_uint64, c_size_t, c_char_p, c_void_p = (
    ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p)
PTR = ctypes.POINTER(c_void_p)


class Stat(ctypes.Structure):
    _fields_ = [("size", c_uint64), ("mtime", c_int64), ("is_dir", c_int), ("etag", ctypes.c_char * 128)]


class Entry(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("key", c_char_p), ("size", c_uint64), ("mtime", c_int64)]


def _declare(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


_declare("objcache_version", c_char_p)
_declare("objcache_last_error", c_char_p)
_declare("objcache_cache_open", c_int, c_char_p, PTR)
_declare("objcache_cache_open_toml", c_int, c_char_p, PTR)
_declare("objcache_cache_close", None, c_void_p)
_declare("objcache_stat", c_int, c_void_p, c_char_p, ctypes.POINTER(Stat))
_declare("objcache_open", c_int, c_void_p, c_char_p, PTR)
_declare("objcache_file_size", c_uint64, c_void_p)
_declare("objcache_file_etag", c_int, c_void_p, c_char_p, c_size_t)
_declare("objcache_pread", c_int64, c_void_p, c_void_p, c_size_t, c_uint64)
_declare("objcache_read", c_int64, c_void_p, c_void_p, c_size_t)
_declare("objcache_seek", c_int64, c_void_p, c_int64, c_int)
_declare("objcache_close", None, c_void_p)
_declare("objcache_list_open", c_int, c_void_p, c_char_p, PTR)
_declare("objcache_list_next", c_int, c_void_p, ctypes.POINTER(Entry))
_declare("objcache_list_close", None, c_void_p)
_declare("objcache_prefetch", c_int64, c_void_p, ctypes.POINTER(c_char_p), c_size_t)
_declare("objcache_wait_prefetch", None, c_void_p)
_declare("objcache_cached_bytes", c_uint64, c_void_p, c_char_p)
_declare("objcache_writer_open", c_int, c_void_p, c_char_p, PTR)
_declare("objcache_write", c_int, c_void_p, c_void_p, c_size_t)
_declare("objcache_writer_commit", c_int, c_void_p)
_declare("objcache_writer_abort", None, c_void_p)
_declare("objcache_writer_close", None, c_void_p)


def check(rc, what=""):
    """rc from a C call: a negative errno becomes OSError (FileNotFoundError,
    PermissionError, ...), with the library's message."""
    if rc < 0:
        msg = lib.objcache_last_error().decode("utf-8", "replace")
        raise OSError(-rc, os.strerror(-rc) + (": " + msg if msg else ""), what or None)
    return rc
