# SPDX-License-Identifier: Apache-2.0
"""The training loop `make demo` times: an ordinary PyTorch image-classification
loop (torchvision ImageFolder, DataLoader with forked workers, decode, a
small CNN step on CPU), with no objcache code in it. It reads either a
directory (local disk, or a path objcache maps to a bucket when run under
LD_PRELOAD) or, as users do without a cache, the bucket itself with one
boto3 GET per sample.

Prints one JSON line: {"epochs": [seconds, ...], "samples": N}.
"""
import argparse
import io
import json
import os
import time

import torch
import torch.nn as nn
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

TRANSFORM = T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor()])


class S3ImageDataset(Dataset):
    """Without a cache: list the prefix once, GET every sample with boto3."""

    def __init__(self, endpoint, bucket, prefix):
        self.endpoint, self.bucket, self.prefix = endpoint, bucket, prefix
        client = self._client()
        keys = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        keys.sort()
        classes = sorted({k[len(prefix):].split("/")[0] for k in keys})
        self.index = {c: i for i, c in enumerate(classes)}
        self.samples = [(k, self.index[k[len(prefix):].split("/")[0]]) for k in keys]
        self._pid, self._c = None, None

    def _client(self):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, max_pool_connections=4))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        if self._pid != os.getpid():  # one client per worker process
            self._pid, self._c = os.getpid(), self._client()
        key, label = self.samples[i]
        body = self._c.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return TRANSFORM(Image.open(io.BytesIO(body)).convert("RGB")), label


def model(classes):
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", help="a directory of class folders")
    ap.add_argument("--s3", help="ENDPOINT/BUCKET/PREFIX/ read with boto3 instead")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.s3:
        scheme, rest = args.s3.split("://", 1)
        host, bucket, prefix = rest.split("/", 2)
        ds = S3ImageDataset(f"{scheme}://{host}", bucket, prefix)
        classes = len(ds.index)
    else:
        ds = ImageFolder(args.root, transform=TRANSFORM)
        classes = len(ds.classes)
    net = model(classes)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                        multiprocessing_context="fork")
    times = []
    for _ in range(args.epochs):
        t = time.perf_counter()
        for x, y in loader:
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        times.append(time.perf_counter() - t)
    print(json.dumps({"epochs": times, "samples": len(ds)}))


if __name__ == "__main__":
    main()
