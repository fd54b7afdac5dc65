# SPDX-License-Identifier: Apache-2.0
"""objcache for Python: objects of S3-compatible storage read through the
node's shared page cache (the one the LD_PRELOAD shim and cachectl use),
with no LD_PRELOAD. Pure Python over the C ABI (ctypes).

    import objcache
    with objcache.open("s3://bucket/train/x.jpg") as f:   # a binary file
        data = f.read()
    for e in objcache.list("s3://bucket/train/"):
        print(e.name, e.size)
    ds = objcache.MapDataset.from_prefix("s3://bucket/train/", transform=fn)

The module-level calls use one Cache made from OBJCACHE_CONFIG (else
~/.config/objcache/config.toml, else /etc/objcache/config.toml);
objcache.Cache(path) opens another. A forked child (a DataLoader worker)
goes on using its parent's Cache: the page cache is shared node-wide."""
import collections
import ctypes
import io
import os
import platform
import threading

from . import _lib
from ._lib import check, lib

__all__ = ["Cache", "File", "Writer", "Entry", "Stat", "open", "list", "stat", "prefetch", "writer",
           "default_cache", "MapDataset", "version"]

Entry = collections.namedtuple("Entry", "name key size mtime")
Stat = collections.namedtuple("Stat", "size mtime etag is_dir")


def version():
    return lib.objcache_version().decode()


def _b(s):
    return os.fsencode(s)


class Cache:
    """A cache opened from a TOML configuration file (or, with toml=, text).
    A [cache] and a [store] section are enough for s3:// URIs."""

    def __init__(self, config_path=None, *, toml=None):
        self._h = ctypes.c_void_p()
        self.config_path = config_path
        if toml is not None:
            check(lib.objcache_cache_open_toml(toml.encode(), ctypes.byref(self._h)), "<toml>")
        else:
            path = None if config_path is None else _b(config_path)
            check(lib.objcache_cache_open(path, ctypes.byref(self._h)), config_path)

    def close(self):
        if self._h:
            lib.objcache_cache_close(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def open(self, uri, mode="rb", buffering=-1):
        """A read-only binary file: io.BufferedReader over File unless buffering=0."""
        if mode not in ("rb", "r"):
            if mode in ("wb", "w"):
                return self.writer(uri)
            raise ValueError("objcache.open: mode must be 'rb' or 'wb'")
        raw = File(self, uri)
        if buffering == 0:
            return raw
        return io.BufferedReader(raw, buffer_size=buffering if buffering > 0 else 256 << 10)

    def stat(self, uri):
        st = _lib.Stat()
        check(lib.objcache_stat(self._h, _b(uri), ctypes.byref(st)), uri)
        return Stat(st.size, st.mtime, st.etag.decode(), bool(st.is_dir))

    def list(self, prefix):
        """Every key under the prefix, in key order, as Entry(name, key, size,
        mtime); fetched a page of 1000 at a time as the iteration goes."""
        h = ctypes.c_void_p()
        check(lib.objcache_list_open(self._h, _b(prefix), ctypes.byref(h)), prefix)
        try:
            e = _lib.Entry()
            while check(lib.objcache_list_next(h, ctypes.byref(e)), prefix) == 1:
                yield Entry(os.fsdecode(e.name), os.fsdecode(e.key), e.size, e.mtime)
        finally:
            lib.objcache_list_close(h)

    def prefetch(self, uris):
        """Queues the objects for fetching in this order; returns how many."""
        arr = (ctypes.c_char_p * len(uris))(*[_b(u) for u in uris])
        return check(lib.objcache_prefetch(self._h, arr, len(uris)))

    def wait_prefetch(self):
        lib.objcache_wait_prefetch(self._h)

    def cached_bytes(self, uri):
        return lib.objcache_cached_bytes(self._h, _b(uri))

    def writer(self, uri):
        return Writer(self, uri)


# A bytes object of n bytes whose contents the caller fills before anyone
# else sees it, and the address of its data: readall copies out of shared
# memory straight into the bytes it returns (one copy, as FileIO.readall
# does) instead of into a zeroed bytearray copied again into bytes. CPython
# only (id() is the address; the data starts at basicsize - 1); elsewhere
# None, and readall takes the bytearray path.
_new_bytes = None
if platform.python_implementation() == "CPython":
    _bytes_from = ctypes.pythonapi.PyBytes_FromStringAndSize
    _bytes_from.restype = ctypes.py_object
    _bytes_from.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
    _BYTES_DATA = bytes.__basicsize__ - 1  # offsetof(PyBytesObject, ob_sval)

    def _new_bytes(n):
        b = _bytes_from(None, n)
        return b, id(b) + _BYTES_DATA


class File(io.RawIOBase):
    """An object opened for reading, pinned to the ETag seen at open."""

    def __init__(self, cache, uri):
        super().__init__()
        self._cache = cache  # keeps the handle's owner alive
        self._h = ctypes.c_void_p()
        check(lib.objcache_open(cache._h, _b(uri), ctypes.byref(self._h)), uri)
        self.name = uri
        self.size = lib.objcache_file_size(self._h)
        self._etag = None

    @property
    def etag(self):
        """The ETag the file is pinned to (asked of the library once)."""
        if self._etag is None:
            self._checkClosed()
            buf = ctypes.create_string_buffer(128)
            check(lib.objcache_file_etag(self._h, buf, 128))
            self._etag = buf.value.decode()
        return self._etag

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, b):
        self._checkClosed()
        m = memoryview(b).cast("B")
        n = len(m)
        if n == 0:
            return 0
        buf = (ctypes.c_char * n).from_buffer(m) if not m.readonly else None
        if buf is None:
            raise TypeError("readinto needs a writable buffer")
        return check(lib.objcache_read(self._h, buf, n), self.name)

    def readall(self):
        self._checkClosed()
        if _new_bytes is not None and self.size > 0:
            # One call: read from the position to the end (at most size
            # bytes); fewer only when the file was partly read before.
            out, addr = _new_bytes(self.size)
            got = check(lib.objcache_read(self._h, ctypes.c_void_p(addr), self.size), self.name)
            return out if got == self.size else out[:got]
        pos = self.tell()
        n = max(self.size - pos, 0)
        if n == 0:
            return b""
        out = bytearray(n)
        got = check(lib.objcache_pread(self._h, (ctypes.c_char * n).from_buffer(out), n, pos), self.name)
        del out[got:]
        self.seek(pos + got)
        return bytes(out)

    def pread(self, n, offset):
        out = bytearray(n)
        got = check(lib.objcache_pread(self._h, (ctypes.c_char * n).from_buffer(out), n, offset), self.name) if n else 0
        del out[got:]
        return bytes(out)

    def seek(self, offset, whence=io.SEEK_SET):
        self._checkClosed()
        return check(lib.objcache_seek(self._h, offset, whence), self.name)

    def tell(self):
        return self.seek(0, io.SEEK_CUR)

    def close(self):
        if self._h:
            lib.objcache_close(self._h)
            self._h = ctypes.c_void_p()
        super().close()


class Writer(io.RawIOBase):
    """An object being written; it exists once close() (or commit()) returns.
    In a with block an exception aborts it instead."""

    def __init__(self, cache, uri):
        super().__init__()
        self._cache = cache
        self._h = ctypes.c_void_p()
        check(lib.objcache_writer_open(cache._h, _b(uri), ctypes.byref(self._h)), uri)
        self.name = uri

    def writable(self):
        return True

    def write(self, b):
        self._checkClosed()
        m = memoryview(b).cast("B")
        data = bytes(m) if m.readonly else (ctypes.c_char * len(m)).from_buffer(m)
        check(lib.objcache_write(self._h, data, len(m)), self.name)
        return len(m)

    def commit(self):
        if self._h:
            try:
                check(lib.objcache_writer_commit(self._h), self.name)
            finally:
                lib.objcache_writer_close(self._h)
                self._h = ctypes.c_void_p()
        super().close()

    def abort(self):
        if self._h:
            lib.objcache_writer_abort(self._h)
            lib.objcache_writer_close(self._h)
            self._h = ctypes.c_void_p()
        super().close()

    def close(self):
        self.commit()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        else:
            self.commit()
        return False


_default = None
_default_lock = threading.Lock()


def default_cache():
    """The Cache of OBJCACHE_CONFIG (else the user's, else the system's)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Cache()
        return _default


def open(uri, mode="rb", buffering=-1, cache=None):  # noqa: A001 (the file-object convention)
    return (cache or default_cache()).open(uri, mode, buffering)


def list(prefix, cache=None):  # noqa: A001
    return (cache or default_cache()).list(prefix)


def stat(uri, cache=None):
    return (cache or default_cache()).stat(uri)


def prefetch(uris, cache=None):
    return (cache or default_cache()).prefetch(uris)


def writer(uri, cache=None):
    return (cache or default_cache()).writer(uri)


def __getattr__(name):
    # torch is imported only when the Dataset is asked for.
    if name == "MapDataset":
        from .dataset import MapDataset

        return MapDataset
    raise AttributeError(name)
