# SPDX-License-Identifier: Apache-2.0
"""A PyTorch map-style Dataset over the objects under a prefix, like the OSS
connector's OssMapDataset: item i is transform(obj) for the i-th key in key
order, where obj is a readable binary file (objcache.File) with .name and
.key (the URI or path it was listed as), .size and .etag; the default
transform returns the object's bytes. DataLoader
workers (forked) read through the parent's Cache: the node's shared pages."""
import torch.utils.data

import objcache


class MapDataset(torch.utils.data.Dataset):
    def __init__(self, names, transform=None, cache=None, config_path=None):
        self.names = list(names)
        self.transform = transform
        self._config_path = config_path
        self._cache = cache

    @classmethod
    def from_prefix(cls, prefix, transform=None, cache=None, config_path=None):
        c = cache or (objcache.Cache(config_path) if config_path else objcache.default_cache())
        names = [e.name for e in c.list(prefix)]
        return cls(names, transform=transform, cache=c, config_path=config_path)

    @classmethod
    def from_uris(cls, uris, transform=None, cache=None, config_path=None):
        return cls(uris, transform=transform, cache=cache, config_path=config_path)

    def cache(self):
        if self._cache is None:
            self._cache = objcache.Cache(self._config_path) if self._config_path else objcache.default_cache()
        return self._cache

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        name = self.names[i]
        with self.cache().open(name, buffering=0) as f:
            f.key = name
            if self.transform is None:
                return f.readall()
            return self.transform(f)

    def prefetch(self, indices):
        """Queues the items in the order a sampler will ask for them."""
        return self.cache().prefetch([self.names[i] for i in indices])

    # Spawned workers get a pickled copy: it opens its own Cache.
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None
        if state["_config_path"] is None and self._cache is not None:
            state["_config_path"] = self._cache.config_path
        return state
