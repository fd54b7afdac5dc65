# SPDX-License-Identifier: Apache-2.0
"""Data sets of many small objects (issue 15), what tests/preload/run_scale.py
and bench/bench_scale.py share: an ImageNet-shaped tree
(train/nXXXXXXXX/nXXXXXXXX_NNNN.JPEG, a few bytes each) and a flat prefix,
written straight into s3rver's on-disk layout (uploading 100,000 objects
through s3rver one PUT at a time takes minutes; writing its files takes
seconds) and the same tree on local disk, to compare against.

s3rver 3.7.1 keeps key K of bucket B as three files (tests/s3server/start.js
starts it over such a directory): DIR/B/K._S3rver_object (the bytes; its
mtime is the object's Last-Modified), K._S3rver_object.md5 (the hex MD5,
no newline: the ETag) and K._S3rver_metadata.json (what a PUT without
headers leaves: the content type, JSON.stringify(..., null, 2), no newline).
write_s3rver() writes exactly those, as a PUT through s3rver does (checked
by the test against an object uploaded through s3rver).

Standard library only.
"""
import hashlib
import os
import random

# What s3rver writes for a PUT with no Content-Type and no x-amz-meta-*.
S3RVER_METADATA = b'{\n  "content-type": "binary/octet-stream"\n}'


def imagenet_items(objects, classes, seed=15, big_classes=0, big_size=2500):
    """[(relative key, bytes)] of an ImageNet-shaped tree, sorted by key:
    `objects` files under train/ in `classes` class folders named like
    ImageNet's synsets (nXXXXXXXX, distinct, random), the counts per class
    uneven (between half and 1.5 times the mean), file names
    nXXXXXXXX_N.JPEG with N of 1 to 6 digits as in ImageNet (so plain
    byte order and the order of the numbers differ), 1 to 24 bytes each.
    The first big_classes classes hold big_size files each (a directory
    longer than one LIST page, listed as key ranges), taken from the total."""
    rng = random.Random(seed)
    synsets = sorted(rng.sample(range(1_000_000, 16_000_000), classes))
    names = [f"n{s:08d}" for s in synsets]
    counts = [big_size] * min(big_classes, classes)
    rest = classes - len(counts)
    left = objects - sum(counts)
    if rest <= 0 or left < rest:
        raise ValueError("imagenet_items: too few objects for the classes asked")
    mean = left / rest
    for i in range(rest):
        counts.append(max(1, int(rng.uniform(0.5, 1.5) * mean)))
    # Make the total exact: spread the difference over the small classes.
    diff = left - sum(counts[len(counts) - rest:])
    i = 0
    while diff != 0:
        j = len(counts) - rest + (i % rest)
        step = 1 if diff > 0 else -1
        if counts[j] + step >= 1:
            counts[j] += step
            diff -= step
        i += 1
    items = []
    for cls, n in zip(names, counts):
        nums = sorted(rng.sample(range(1, 1_300_000), n))
        for num in nums:
            key = f"train/{cls}/{cls}_{num}.JPEG"
            size = 1 + (num * 7919) % 24
            items.append((key, key.encode()[-size:]))
    items.sort()
    return items


def flat_items(objects, prefix="", seed=16):
    """[(relative key, bytes)] of a flat prefix: `objects` names
    img_NNNNNNNN_XXXX.jpg (a counter, then hex digits), a few bytes each,
    sorted."""
    rng = random.Random(seed)
    items = []
    for i in range(objects):
        key = f"{prefix}img_{i:08d}_{rng.getrandbits(16):04x}.jpg"
        items.append((key, key.encode()[-(1 + i % 16):]))
    items.sort()
    return items


def write_s3rver(s3_dir, bucket, prefix, items, mtime=None, metadata=True):
    """Writes items as objects prefix + key of bucket in s3rver's layout
    under s3_dir (what S3Server(workdir).dir is; the bucket's directory is
    made if missing). mtime (epoch seconds) sets every object's
    Last-Modified; None leaves the time of writing. metadata=False leaves
    out K._S3rver_metadata.json: s3rver reads a missing one as no stored
    headers, and answers as for a PUT without any (Content-Type
    binary/octet-stream); a third fewer files to create in a flat
    directory, where ext4 slows down as it grows."""
    base = os.path.join(s3_dir, bucket)
    made = set()
    for key, data in items:
        path = os.path.join(base, prefix + key)
        d = os.path.dirname(path)
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        obj = path + "._S3rver_object"
        _write(obj, data, mtime=mtime)
        _write(obj + ".md5", hashlib.md5(data).hexdigest().encode())
        if metadata:
            _write(path + "._S3rver_metadata.json", S3RVER_METADATA)


def write_local(root, items, file_mode=0o444, dir_mode=0o555, mtime=None):
    """The same items as files under root, with the modes the shim gives
    (files 0444, directories 0555, root included), so a stat compares;
    mtime (epoch seconds) for every file, as write_s3rver's."""
    made = set()
    for key, data in items:
        path = os.path.join(root, key)
        d = os.path.dirname(path)
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        _write(path, data, mode=file_mode, mtime=mtime)
    os.makedirs(root, exist_ok=True)
    dirs = set()
    for d in made:
        while len(d) >= len(root) and d not in dirs:
            dirs.add(d)
            d = os.path.dirname(d)
    for d in dirs:
        os.chmod(d, dir_mode)


def unlock_local(root):
    """Makes a tree written by write_local removable again by anyone (a
    directory of mode 0555 keeps its files from a non-root user)."""
    for d, dirs, _ in os.walk(root):
        os.chmod(d, 0o755)


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _write(path, data, mode=0o644, mtime=None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        if mode & _UMASK:
            os.fchmod(fd, mode)  # what the umask took off
        if mtime is not None:
            os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)


def start_server(workdir, buckets, static_lists=()):
    """s3rver through tests/s3server/start_scale.js (s3rver with a listing
    that costs one page, not the whole bucket) over workdir/s3, with
    mount_fixture.S3Server's interface (endpoint, dir, client(), stop()).
    static_lists: buckets whose LISTs come from an index made at the start
    (see start_scale.js; for benchmarks, over buckets that do not change)."""
    import json
    import subprocess
    import mount_fixture as mf

    class ScaleServer(mf.S3Server):
        def __init__(self):  # noqa: D107 - S3Server's, with another start script
            self.dir = os.path.join(workdir, "s3")
            os.makedirs(self.dir, exist_ok=True)
            self.radosgw = False
            start = os.path.join(mf.SOURCE_DIR, "s3server", "start_scale.js")
            argv = ["node", "--openssl-legacy-provider", start, "--dir", self.dir]
            for b in buckets:
                argv += ["--bucket", b]
            for b in static_lists:
                argv += ["--static-lists", b]
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("start_scale.js: s3rver did not start")
            self.port = json.loads(line)["port"]
            self.endpoint = f"http://127.0.0.1:{self.port}"

    return ScaleServer()
