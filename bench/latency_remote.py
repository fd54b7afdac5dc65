# SPDX-License-Identifier: Apache-2.0
"""A fast S3 remote with latency for benchmarks: nginx on 127.0.0.1 in front
of an s3rver, adding a fixed delay (default 20 ms) to every request.

  /usr/bin/python3 bench/latency_remote.py [--latency-ms 20] [--objects 500] [--size 102400]

(the CLI starts an s3rver with some objects, the remote in front of it,
measures the remote's capacity and prints it; Ctrl-C or --serve 0 ends it.)

How a request goes:
  - the public server sleeps (echo_sleep, a timer: no CPU) and then routes:
  - a GET without a query string (an object read) is proxied to a second,
    internal nginx server on a Unix socket that serves the object's file
    from s3rver's directory statically (s3rver stores key K of bucket B as
    DIR/B/K._S3rver_object), with Range (206, Content-Range) and with S3's
    ETag, the md5 s3rver keeps beside it (K._S3rver_object.md5), read when
    the remote starts into a map (nginx's own ETag, `etag off`, would
    differ). An object uploaded after the start is served without an ETag
    (as a client must accept); without S3's ETag, rclone's VFS cache takes
    every GET as a changed object. A key with no file falls through to
    s3rver (so its errors are S3's XML).
  - If-Match on such a GET (objcache sends it on every GET) is decided by
    the public server, before the hop, against the same map: 412 with S3's
    PreconditionFailed XML when none of the listed ETags is the object's,
    served as usual when one is (quoted or not), when the header is `*` or
    absent. An object uploaded after the start has no ETag in the map, so
    its If-Match is not checked (`if_match` below says whether the remote
    knew any ETags; check_semantics tests a 412 and a match). The header
    is removed on the hop, because the internal server's own If-Match
    check compares nginx's ETag (absent here: `etag off`) and would
    always answer 412. s3rver itself ignores If-Match on GET. The map is
    read at the start: an object overwritten later keeps its old ETag here
    (and gets 412 for its new one), so the remote is for a bucket that does
    not change while it runs, as the benchmarks' buckets do not.
  - everything else (LIST and anything with a query string, HEAD, PUT,
    POST, DELETE) is proxied to s3rver, which gives S3's ETag and headers.
    Writes (PUT, the multipart calls, CopyObject, DELETE) so pay the same
    delay as reads; their bodies are streamed to s3rver, not buffered
    (proxy_request_buffering off). check_writes() checks it.
  - with cache_lists=True, nginx keeps LIST replies (GETs with a query
    string, 200 only, keyed by the request URI) for an hour, so a repeated
    LIST costs the delay but not s3rver's CPU (s3rver needs ~0.4 s of CPU to
    list 2,000 keys, S3 itself far less). Only for a bucket that does not
    change while it runs.
nginx runs one worker process per core (at most 4; `workers` to change):
with a single worker on 2 cores the remote itself added ~3 ms to each
request at 32 in flight (p50 22.6 ms against 21.3 ms with two), so a
client measured against 20 ms paid for the emulator's queueing.
nginx runs as a non-daemon child with its own prefix and temp dirs in a
temporary directory, error log to a file, no access log; stop() ends it
with SIGQUIT (graceful), then SIGTERM, then SIGKILL.

A second public port (`raw_endpoint`) routes the same way without the
sleep, to measure what the remote can carry when latency is not the limit.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

NGINX = "/usr/sbin/nginx"
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"


def default_workers():
    return max(1, min(4, os.cpu_count() or 1))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3rver_etags(s3_dir):
    """{request URI: md5} for every object s3rver stored under s3_dir."""
    from urllib.parse import quote
    out = {}
    suffix = "._S3rver_object.md5"
    for root, _, files in os.walk(s3_dir):
        for name in files:
            if not name.endswith(suffix):
                continue
            with open(os.path.join(root, name)) as f:
                md5 = f.read().strip()
            if len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
                continue
            rel = os.path.relpath(os.path.join(root, name[:-len(suffix)]), s3_dir)
            out["/" + quote(rel, safe="/~")] = md5
    return out


# If-Match against the object's ETag, decided on "IF_MATCH|ETAG" (an ETag
# has no '|'): pass when the header is absent or `*`, when the remote does
# not know the object's ETag, or when one of the listed ETags is the
# object's (quoted, as S3 gives it, or bare); fail (412) otherwise.
IF_MATCH_MAP = r"""  map "$http_if_match|$objcache_etag" $objcache_if_match {
    default fail;
    "~^\|" pass;
    "~^\s*\*\s*\|" pass;
    "~\|$" pass;
    "~^(?:[^|]*,)?\s*([^|,\s]+)\s*(?:,[^|]*)?\|\1$" pass;
    "~^(?:[^|]*,)?\s*([^|,\s\"]+)\s*(?:,[^|]*)?\|\"\1\"$" pass;
  }
"""
PRECONDITION_FAILED = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>'
                       '<Message>At least one of the pre-conditions you specified did not hold</Message>'
                       '<Condition>If-Match</Condition></Error>')


def _etag_conf(etags):
    """nginx maps from the request URI (as the client sent it) to S3's ETag
    and from If-Match and that ETag to pass / fail; the ETag header line."""
    if not etags:
        return '  map $request_uri $objcache_etag {\n    default "";\n  }\n' + IF_MATCH_MAP, ""
    entries = "".join(f'    "{u}" "\\"{m}\\"";\n' for u, m in etags.items())
    return ("  map $request_uri $objcache_etag {\n    default \"\";\n" + entries + "  }\n" + IF_MATCH_MAP,
            "    add_header ETag $objcache_etag;\n")


def _conf(prefix, s3_dir, s3_port, port, raw_port, latency_ms, workers, cache_lists, etags=None):
    etag_map, etag_header = _etag_conf(etags)
    sock = os.path.join(prefix, "static.sock")
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"  {k}_temp_path {prefix}/tmp/{k};"
                     for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    sleep = f"{latency_ms / 1000:.3f}"
    common = '''
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_read_timeout 300s;'''
    list_cache = '''
      proxy_cache objcache_lists;
      proxy_cache_key $request_uri;
      proxy_cache_valid 200 1h;
      proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;''' if cache_lists else ""
    routes = f'''    location @object {{
      default_type application/xml;
      if ($objcache_if_match = fail) {{
        return 412 '{PRECONDITION_FAILED}';
      }}
      proxy_pass http://objcache_static;{common}
      proxy_set_header If-Match "";
    }}
    location @list {{
      proxy_pass http://objcache_s3rver;{common}{list_cache}
    }}
    location @s3 {{
      proxy_pass http://objcache_s3rver;{common}
      proxy_request_buffering off;
    }}'''
    return f"""# written by bench/latency_remote.py
load_module {ECHO_MODULE};
{user}worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
  worker_connections 8192;
  multi_accept on;
}}
http {{
  # Before any map (the first map fixes them): room for one ETag per object.
  map_hash_max_size 262144;
  map_hash_bucket_size 256;
  access_log off;
{temp}
  types {{ }}
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  client_max_body_size 0;
  client_body_buffer_size 1m;
  server_tokens off;
  proxy_buffer_size 256k;
  proxy_buffers 8 256k;
  proxy_busy_buffers_size 512k;
  proxy_max_temp_file_size 0;
  proxy_cache_path {prefix}/tmp/lists keys_zone=objcache_lists:8m max_size=256m inactive=1h use_temp_path=off;

  upstream objcache_static {{
    server unix:{sock};
    keepalive 256;
  }}
  upstream objcache_s3rver {{
    server 127.0.0.1:{s3_port};
    keepalive 64;
  }}
  # Object GETs (no query string) to the static server, LISTs (GETs with a
  # query string) and everything else to s3rver.
  map "$request_method:$args" $objcache_route {{
    default   @s3;
    "GET:"    @object;
    "~^GET:." @list;
  }}

  # Public, with the delay.
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      echo_sleep {sleep};
      echo_exec $objcache_route;
    }}
{routes}
  }}

  # Public, without the delay (to measure the remote itself).
  server {{
    listen 127.0.0.1:{raw_port} backlog=4096;
    location / {{
      echo_exec $objcache_route;
    }}
{routes}
  }}

  # Internal: objects as s3rver stored them, Range served by nginx, S3's
  # ETag from the map (none for a key it does not have).
{etag_map}  server {{
    listen unix:{sock};
    etag off;
{etag_header}    location / {{
      root {s3_dir};
      try_files $uri._S3rver_object @s3rver;
    }}
    location @s3rver {{
      proxy_pass http://objcache_s3rver;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
    }}
  }}
}}
"""


class LatencyRemote:
    """nginx on 127.0.0.1 adding latency_ms to every request in front of the
    s3rver listening on s3_port whose data directory is s3_dir."""

    def __init__(self, s3_dir, s3_port, latency_ms=20.0, workers=None, workdir=None, cache_lists=False,
                 etags=True):
        if not os.path.exists(NGINX) or not os.path.exists(ECHO_MODULE):
            raise RuntimeError(f"latency_remote: needs {NGINX} and {ECHO_MODULE} "
                               "(apt-get install nginx libnginx-mod-http-echo, or make deps)")
        self.latency_ms = latency_ms
        # Set by check_semantics once it saw If-Match honoured (a 412 and a match).
        self.if_match_checked = False
        self.workers = workers if workers else default_workers()
        # S3's ETags of the objects present now (etags=False: none).
        self.etags = s3rver_etags(s3_dir) if etags else {}
        self.prefix = tempfile.mkdtemp(prefix="objcache-nginx-", dir=workdir)
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "lists"):
            os.makedirs(os.path.join(self.prefix, "tmp", k))
        self.error_log = os.path.join(self.prefix, "error.log")
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.proc = None
        for attempt in range(5):
            self.port, self.raw_port = free_port(), free_port()
            with open(self.conf, "w") as f:
                f.write(_conf(self.prefix, os.path.abspath(s3_dir), s3_port, self.port, self.raw_port,
                              latency_ms, self.workers, cache_lists, self.etags))
            self.proc = subprocess.Popen(
                [NGINX, "-p", self.prefix, "-c", self.conf, "-e", self.error_log, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_listening():
                break
            self.stop(quiet=True)
            if attempt == 4 or "in use" not in self.log_tail():
                raise RuntimeError(f"latency_remote: nginx did not start:\n{self.log_tail()}")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.raw_endpoint = f"http://127.0.0.1:{self.raw_port}"

    def _wait_listening(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            ok = 0
            for p in (self.port, self.raw_port):
                try:
                    with socket.create_connection(("127.0.0.1", p), timeout=0.5):
                        ok += 1
                except OSError:
                    pass
            if ok == 2:
                return True
            time.sleep(0.05)
        return False

    def log_tail(self, n=3000):
        out = ""
        try:
            with open(self.error_log) as f:
                out = f.read()[-n:]
        except OSError:
            pass
        if self.proc is not None and self.proc.stderr is not None and self.proc.poll() is not None:
            out += self.proc.stderr.read().decode(errors="replace")[-n:]
        return out.strip()

    def errors_logged(self):
        """Lines of nginx's error log at [error] or worse (for the report)."""
        try:
            with open(self.error_log) as f:
                return [l.rstrip() for l in f if any(t in l for t in ("[error]", "[crit]", "[alert]", "[emerg]"))]
        except OSError:
            return []

    def stop(self, quiet=False):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            for sig, wait in ((signal.SIGQUIT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if p.stderr is not None:
            p.stderr.close()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def measure(endpoint, objects, concurrency, requests, tmpdir=None, timeout=300):
    """`requests` ranged GETs (whole object as a Range, with If-Match of its
    ETag, as objcache sends them) over `objects` [(path, size, etag)], at
    `concurrency` connections, with curl's parallel mode (C, so the client is
    not what is measured). Returns {gets_per_s, mb_per_s, p50_ms, p90_ms,
    requests, concurrency, errors}."""
    fd, cfg = tempfile.mkstemp(prefix="objcache-curl-", suffix=".cfg", dir=tmpdir)
    with os.fdopen(fd, "w") as f:
        for i in range(requests):
            path, size, etag = objects[i % len(objects)]
            if i:
                f.write("next\n")
            f.write(f'url = "{endpoint}{path}"\noutput = "/dev/null"\nrange = "0-{size - 1}"\n'
                    f'header = "If-Match: \\"{etag}\\""\n'
                    'write-out = "%{http_code} %{time_total} %{size_download}\\n"\n')
    try:
        t = time.perf_counter()
        p = subprocess.run(["curl", "-s", "-Z", "--parallel-max", str(concurrency), "-K", cfg],
                           capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t
    finally:
        os.unlink(cfg)
    lat, nbytes, errors = [], 0, 0
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        code, tt, sz = parts
        if code not in ("200", "206"):
            errors += 1
            continue
        lat.append(float(tt))
        nbytes += int(sz)
    errors += max(0, requests - len(lat) - errors)  # transfers curl never reported
    if p.returncode != 0 and not lat:
        raise RuntimeError(f"latency_remote: curl exit {p.returncode}: {p.stderr.strip()[-500:]}")
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1e3 if lat else float("nan")  # noqa: E731
    return {"requests": requests, "concurrency": concurrency, "gets_per_s": len(lat) / wall,
            "mb_per_s": nbytes / wall / 1e6, "p50_ms": q(0.5), "p90_ms": q(0.9), "errors": errors,
            "wall_s": wall}


def nginx_cpu_seconds(pid):
    """User+system CPU seconds of nginx's master and workers (children of pid)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def capacity(remote, objects, plan=((1, 50), (32, 2000), (64, 3000)), raw=(64, 6000), tmpdir=None):
    """Measures the remote (with its latency) at each (concurrency, requests)
    of plan, and the same route without latency at raw; returns a list of
    dicts (measure()'s, plus 'where' and nginx's CPU share)."""
    rows = []
    for where, endpoint, steps in (("with latency", remote.endpoint, plan),
                                   ("without latency", remote.raw_endpoint, (raw,) if raw else ())):
        for conc, n in steps:
            c0 = nginx_cpu_seconds(remote.proc.pid)
            r = measure(endpoint, objects, conc, n, tmpdir=tmpdir)
            r["nginx_cpu_pct"] = 100 * (nginx_cpu_seconds(remote.proc.pid) - c0) / r["wall_s"]
            r["where"] = where
            rows.append(r)
    return rows


def check_semantics(remote, bucket, key, data, etag):
    """A few requests through the remote that objcache relies on; raises on
    a wrong answer. Returns the measured latency of one small GET (ms).
    When the remote knows the object's ETag, also checks that If-Match is
    honoured (a ranged GET with another ETag gets 412, with the object's
    ETag, bare or in a list, or `*` it is served) and sets
    remote.if_match_checked."""
    from urllib.parse import quote
    url = f"{remote.endpoint}/{bucket}/{key}"
    known = "/" + quote(f"{bucket}/{key}", safe="/~") in remote.etags
    t = time.perf_counter()
    req = urllib.request.Request(url, headers={"Range": "bytes=10-19", "If-Match": f'"{etag}"'})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        # S3's ETag when the remote knew the object at its start, else none.
        want = f'"{etag}"' if known else None
        if r.status != 206 or body != data[10:20] or r.headers.get("ETag") != want:
            raise RuntimeError(f"latency_remote: ranged GET gave {r.status}, {len(body)} bytes, "
                               f"ETag {r.headers.get('ETag')}")
    ms = (time.perf_counter() - t) * 1e3
    if known:
        other = f'"{"0" * 32 if etag != "0" * 32 else "1" * 32}"'
        for if_match, served in ((other, False), (f"{other}, {other}", False), (etag, True),
                                 (f'{other}, "{etag}"', True), ("*", True), (None, True)):
            h = {"Range": "bytes=0-9"}
            if if_match is not None:
                h["If-Match"] = if_match
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=h), timeout=10) as r:
                    status, body = r.status, r.read()
            except urllib.error.HTTPError as e:
                status, body = e.code, e.read()
            if served and (status != 206 or body != data[:10]):
                raise RuntimeError(f"latency_remote: a GET with If-Match {if_match} gave {status}, "
                                   f"{len(body)} bytes (expected the object's first 10 bytes)")
            if not served and (status != 412 or b"<Code>PreconditionFailed</Code>" not in body):
                raise RuntimeError(f"latency_remote: a GET with If-Match {if_match} (not the object's "
                                   f"ETag {etag}) gave {status}, expected 412 PreconditionFailed")
        remote.if_match_checked = True
    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.headers.get("ETag") != f'"{etag}"' or int(r.headers.get("Content-Length")) != len(data):
            raise RuntimeError(f"latency_remote: HEAD gave ETag {r.headers.get('ETag')}, "
                               f"length {r.headers.get('Content-Length')}")
    with urllib.request.urlopen(f"{remote.endpoint}/{bucket}?list-type=2&max-keys=1", timeout=10) as r:
        if b"<ListBucketResult" not in r.read():
            raise RuntimeError("latency_remote: LIST did not reach s3rver")
    return ms


def check_writes(remote, direct_endpoint, bucket, tmpdir=None, parts=3, part_size=8 << 20):
    """Writes through the remote as the benchmarks of writable mounts send
    them (they go to s3rver after the same delay as any request): small
    PUTs, a multipart upload of `parts` parts (boto3 upload_file), HEAD and
    DELETE; the object read back from s3rver directly must be the bytes
    sent. Raises on a wrong answer. Returns {put_ms, put_direct_ms (medians
    of 5), multipart_s, multipart_bytes}."""
    import hashlib
    import statistics
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    def client(endpoint):
        return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                            region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    via, direct = client(remote.endpoint), client(direct_endpoint)
    out = {}
    for label, c in (("put_ms", via), ("put_direct_ms", direct)):
        ts = []
        for i in range(6):
            t = time.perf_counter()
            c.put_object(Bucket=bucket, Key=f"latency-remote-probe/small{i}", Body=b"p" * 1000)
            ts.append((time.perf_counter() - t) * 1e3)
        out[label] = statistics.median(ts[1:])  # the first one opens the connection
    size = parts * part_size - 12345
    fd, path = tempfile.mkstemp(prefix="objcache-remote-mpu-", dir=tmpdir)
    try:
        data = os.urandom(size)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        t = time.perf_counter()
        via.upload_file(path, bucket, "latency-remote-probe/multipart",
                        Config=TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                              max_concurrency=parts))
        out["multipart_s"], out["multipart_bytes"] = time.perf_counter() - t, size
    finally:
        os.unlink(path)
    head = via.head_object(Bucket=bucket, Key="latency-remote-probe/multipart")
    if head["ContentLength"] != size:  # (s3rver's ETag of a multipart object is not S3's "md5-N")
        raise RuntimeError(f"latency_remote: multipart upload gave length {head['ContentLength']}, "
                           f"expected {size}")
    body = direct.get_object(Bucket=bucket, Key="latency-remote-probe/multipart")["Body"].read()
    if hashlib.sha256(body).digest() != hashlib.sha256(data).digest():
        raise RuntimeError("latency_remote: the object uploaded through the remote is not the bytes sent")
    for i in range(6):
        via.delete_object(Bucket=bucket, Key=f"latency-remote-probe/small{i}")
    via.delete_object(Bucket=bucket, Key="latency-remote-probe/multipart")
    if direct.list_objects_v2(Bucket=bucket, Prefix="latency-remote-probe/").get("KeyCount", 0) != 0:
        raise RuntimeError("latency_remote: DELETE through the remote left objects behind")
    return out


def format_capacity(rows, size):
    out = ["| route | concurrency | GETs | GETs/s | MB/s | p50 ms | p90 ms | errors | nginx CPU |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['where']} | {r['concurrency']} | {r['requests']:,} | {r['gets_per_s']:,.0f} | "
                   f"{r['mb_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['errors']} | "
                   f"{r['nginx_cpu_pct']:.0f} % |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--objects", type=int, default=500)
    ap.add_argument("--size", type=int, default=100 * 1024)
    ap.add_argument("--workers", type=int, default=None, help="nginx worker processes (default: one per core, at most 4)")
    ap.add_argument("--cache-lists", action="store_true", help="keep LIST replies in nginx")
    ap.add_argument("--serve", type=float, default=0,
                    help="after measuring, keep serving this many seconds (-1: until Ctrl-C)")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(repo, "tests", "preload"))
    os.environ.setdefault("OBJCACHE_TEST_SOURCE_DIR", os.path.join(repo, "tests"))
    import concurrent.futures
    import hashlib
    import random
    import mount_fixture as mf

    work = tempfile.mkdtemp(prefix="objcache-latency-remote-")
    server = remote = None
    try:
        server = mf.S3Server(work)
        client = server.client()
        rng = random.Random(5)
        objs = []

        def put(i):
            data = rng.randbytes(args.size)
            key = f"cap/obj{i:05d}.bin"
            client.put_object(Bucket=mf.BUCKET, Key=key, Body=data)
            return (f"/{mf.BUCKET}/{key}", args.size, hashlib.md5(data).hexdigest()), data

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(put, range(args.objects)))
        objs = [g[0] for g in got]
        remote = LatencyRemote(server.dir, server.port, args.latency_ms, workers=args.workers, workdir=work,
                               cache_lists=args.cache_lists)
        one = check_semantics(remote, mf.BUCKET, objs[0][0].split("/", 2)[2], got[0][1], objs[0][2])
        print(f"latency_remote: {remote.endpoint} (raw {remote.raw_endpoint}) over s3rver "
              f"{server.endpoint}; one ranged GET took {one:.1f} ms; If-Match "
              f"{'honoured (checked: 412 on another ETag)' if remote.if_match_checked else 'not checked'}",
              file=sys.stderr)
        rows = capacity(remote, objs, tmpdir=work)
        print(format_capacity(rows, args.size))
        errs = remote.errors_logged()
        if errs:
            print(f"nginx error log ({len(errs)} lines), first: {errs[0]}", file=sys.stderr)
        if args.serve:
            print(f"serving {remote.endpoint} (bucket {mf.BUCKET}, keys cap/obj00000.bin...)", file=sys.stderr)
            try:
                time.sleep(args.serve if args.serve > 0 else 10**9)
            except KeyboardInterrupt:
                pass
    finally:
        if remote is not None:
            remote.close()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
