#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A PyTorch DataLoader over objcache.MapDataset (no LD_PRELOAD needed):

    OBJCACHE_CONFIG=objcache.toml /usr/bin/python3 dataset.py s3://bucket/train/ [--workers 2] [--epochs 2]

Prints samples/s and MiB/s per epoch; the first epoch fetches, later ones
read the node's shared page cache. PYTHONPATH must reach the objcache
module (installed under PREFIX/share/objcache/python)."""
import argparse
import time

import torch.utils.data

import objcache


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    # transform: what a sample becomes; here its name and size in bytes.
    ds = objcache.MapDataset.from_prefix(args.prefix, transform=lambda f: (f.name, len(f.read())))
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                     multiprocessing_context="fork", collate_fn=list)
    for epoch in range(args.epochs):
        start = time.monotonic()
        n = size = 0
        for batch in dl:
            n += len(batch)
            size += sum(b for _, b in batch)
        s = time.monotonic() - start
        print(f"dataset: epoch {epoch + 1}: {n} samples, {size} bytes, {s:.3f} s: "
              f"{n / s:.1f} samples/s, {size / s / 2**20:.1f} MiB/s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
