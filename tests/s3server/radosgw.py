#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Needs: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd
#
# Starts a throwaway single-node Ceph cluster (one ceph-mon, one ceph-osd on
# memstore, one radosgw with the beast frontend) on 127.0.0.1 and prints one
# line of JSON on stdout once its buckets exist:
#
#   {"port": N, "access_key": "...", "secret_key": "...", "region": "..."}
#
# It stops when its stdin closes (or on SIGTERM/SIGINT): every daemon it
# started is killed and its directory removed, so a test that dies never
# leaves a cluster behind (the daemons also get SIGKILL if this script dies).
# Same protocol as start.js:
#
#   python3 radosgw.py [--dir DIR] [--port N] [--bucket NAME]... [--keep]
#                      [--timeout SECONDS] [--verbose]
#
# --dir puts the cluster in a new subdirectory of DIR (removed at the end);
# --port fixes radosgw's port (default: radosgw binds a free one itself);
# --keep leaves the directory, with every daemon's log, for a post-mortem.
# A start that fails (or takes over --timeout, 180 s) names the daemon and
# prints the last lines of its log on stderr, and exits 1.
#
# Nothing in /etc/ceph, /var/lib/ceph or /var/log/ceph is read or written:
# all state, sockets and logs live in DIR (default: a fresh mkdtemp). Python
# 3.11+ standard library only (Debian 12's /usr/bin/python3). Runs as root or
# any user: the daemons run as whoever starts this. See RADOSGW.md.
import argparse
import ctypes
import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

ACCESS_KEY = "S3RVER"  # the keys tests/support/s3_server.h uses
SECRET_KEY = "S3RVER"
REGION = "us-east-1"  # radosgw accepts any region in the SigV4 scope
USER = "objcache"

PROG = "radosgw.py"


class StartError(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=25):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return f"    ({path}: {e.strerror})"
    return "\n".join("    " + line for line in lines[-n:]) or f"    ({path} is empty)"


def asok(path, prefix):
    """One admin-socket command; the parsed JSON answer, or None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(json.dumps({"prefix": prefix}).encode() + b"\0")
            buf = b""
            while len(buf) < 4:
                chunk = s.recv(4 - len(buf))
                if not chunk:
                    return None
                buf += chunk
            (n,) = struct.unpack(">I", buf)
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    return None
                data += chunk
        return json.loads(data)
    except (OSError, ValueError):
        return None


def listen_ports(pid):
    """The 127.0.0.1 TCP ports that process pid itself listens on."""
    try:
        with open("/proc/net/tcp") as f:
            listening = {}  # socket inode -> port
            for line in list(f)[1:]:
                cols = line.split()
                addr, port = cols[1].split(":")
                if addr == "0100007F" and cols[3] == "0A":  # 127.0.0.1, LISTEN
                    listening[cols[9]] = int(port, 16)
        ports = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in listening:
                ports.add(listening[link[8:-1]])
        return ports
    except OSError:
        return set()


# --- a minimal SigV4 signer --------------------------------------------------


def _uri_encode(s, keep_slash):
    out = []
    for b in s.encode():
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-._~" or (keep_slash and c == "/")):
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def sigv4_headers(method, host, path, query, headers, body, access_key, secret_key, region):
    """Headers (with Authorization) for a SigV4-signed request.

    query is a list of (name, value); path is unencoded.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    payload_hash = hashlib.sha256(body).hexdigest()
    h = {k.lower(): str(v).strip() for k, v in headers.items()}
    h["host"] = host
    h["x-amz-date"] = amz_date
    h["x-amz-content-sha256"] = payload_hash
    signed = sorted(h)
    canonical_query = "&".join(
        f"{_uri_encode(k, False)}={_uri_encode(v, False)}" for k, v in sorted(query)
    )
    canonical = "\n".join(
        [
            method,
            _uri_encode(path, True),
            canonical_query,
            "".join(f"{k}:{h[k]}\n" for k in signed),
            ";".join(signed),
            payload_hash,
        ]
    )
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
    return h


def s3_request(port, method, path, query=(), headers=None, body=b"", timeout=30):
    host = f"127.0.0.1:{port}"
    h = sigv4_headers(method, host, path, list(query), headers or {}, body, ACCESS_KEY, SECRET_KEY, REGION)
    url = _uri_encode(path, True)
    if query:
        url += "?" + "&".join(f"{_uri_encode(k, False)}={_uri_encode(v, False)}" for k, v in query)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, url, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


# --- the cluster --------------------------------------------------------------


def _pdeathsig():
    # The daemons die with this script even if it is SIGKILLed.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Cluster:
    def __init__(self, root, timeout, verbose=False):
        self.verbose = verbose
        self.t0 = time.monotonic()
        self.root = root
        self.timeout = timeout
        self.procs = []  # (name, Popen)
        self.pgid = None
        self.conf = os.path.join(root, "ceph.conf")
        self.fsid = str(uuid.uuid4())
        for d in ("mon/a", "osd/0", "run", "log", "crash", "rgw", "tmp"):
            os.makedirs(os.path.join(root, d), exist_ok=True)

    def note(self, what):
        if self.verbose:
            sys.stderr.write(f"{PROG}: {time.monotonic() - self.t0:6.2f} s  {what}\n")

    def log(self, name):
        return os.path.join(self.root, "log", f"{name}.log")

    def out(self, name):
        return os.path.join(self.root, "log", f"{name}.out")

    def write_conf(self, mon_port, rgw_port):
        r = self.root
        conf = f"""[global]
fsid = {self.fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
# one bind attempt: a port taken since we picked it fails at once, not after
# 2 x 5 s of retries (and then we pick another)
ms bind retry count = 1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
# radosgw defaults to a "secure" mon connection, which needs cephx
ms mon client mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc

# one OSD, so one copy of everything
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000

# commit map changes (osd boot, pool creation) at once, not once a second
paxos propose interval = 0.01
paxos min wait = 0.01

# small: a 2-core test machine
osd objectstore = memstore
# the capacity memstore reports; stored data takes RAM as it comes
memstore device bytes = 4294967296
osd op num shards = 1
osd op num threads per shard = 2
ms async op threads = 2
mon data avail warn = 1
mon data avail crit = 0

# everything in {r}, nothing in /var or /etc
run dir = {r}/run
admin socket = {r}/run/$name.asok
pid file = {r}/run/$name.pid
log file = {r}/log/$name.log
crash dir = {r}/crash
tmp dir = {r}/tmp
keyring = {r}/keyring
mon data = {r}/mon/$id
osd data = {r}/osd/$id
rgw data = {r}/rgw
mon cluster log to file = false
log to syslog = false
err to syslog = false
clog to syslog = false

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw thread pool size = 32
# virtual-hosted addressing as BUCKET.s3.localhost:PORT (as s3rver); path style always works
rgw dns name = s3.localhost
rgw dynamic resharding = false
rgw enable lc threads = false
# free the RAM of deleted or overwritten objects within a minute, not hours
rgw gc obj min wait = 30
rgw gc processor period = 30
rgw enable usage log = false
rgw run sync thread = false
rgw data log backing = omap
"""
        with open(self.conf, "w") as f:
            f.write(conf)

    def spawn(self, name, argv):
        out = open(self.out(name), "wb")
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=self.pgid if self.pgid is not None else 0,
            preexec_fn=_pdeathsig,
            close_fds=True,
        )
        out.close()
        if self.pgid is None:
            self.pgid = p.pid
        self.procs.append((name, p))
        return p

    def run(self, what, argv, timeout=60):
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StartError(f"{what} did not finish within {timeout} s: {' '.join(argv)}")
        if r.returncode != 0:
            raise StartError(
                f"{what} failed with exit code {r.returncode}: {' '.join(argv)}\n"
                + r.stderr.decode("utf-8", "replace")
                + r.stdout.decode("utf-8", "replace")
            )
        return r.stdout.decode()

    def bind_failed(self, name):
        # ceph-mon: "unable to bind monitor to ..."; radosgw: "failed to bind address ..."
        return any(
            "unable to bind" in t or "failed to bind" in t
            for t in (tail(self.log(name), 200), tail(self.out(name), 50))
        )

    def wait(self, daemon, name, p, ready, deadline, started):
        """Waits until ready() is true; fails naming the daemon and its logs."""
        while not ready():
            rc = p.poll()
            if rc is not None:
                what = f"exited with code {rc}"
            elif time.monotonic() > deadline:
                what = f"did not start within {self.timeout:g} s"
            else:
                time.sleep(0.02)  # poll: the daemon's admin socket or port
                continue
            raise StartError(
                f"{daemon} ({name}) {what}.\n"
                f"  last lines of {self.log(name)}:\n{tail(self.log(name))}\n"
                f"  last lines of {self.out(name)}:\n{tail(self.out(name), 10)}"
            )

    def start(self, rgw_port):
        started = time.monotonic()
        deadline = started + self.timeout
        c = ["-c", self.conf]
        for attempt in range(3):
            mon_port = free_port()
            self.write_conf(mon_port, rgw_port)
            shutil.rmtree(os.path.join(self.root, "mon", "a"), ignore_errors=True)
            keyring = os.path.join(self.root, "keyring")
            monmap = os.path.join(self.root, "monmap")
            self.run("ceph-authtool", ["ceph-authtool", "--create-keyring", keyring, "--gen-key",
                                       "-n", "mon.", "--cap", "mon", "allow *"])
            self.run("monmaptool", ["monmaptool", "--create", "--clobber", "--fsid", self.fsid,
                                    "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", monmap])
            self.run("ceph-mon --mkfs", ["ceph-mon", *c, "--mkfs", "-i", "a", "--monmap", monmap,
                                         "--keyring", keyring])
            mon = self.spawn("mon.a", ["ceph-mon", *c, "-i", "a", "-f"])
            mon_asok = os.path.join(self.root, "run", "mon.a.asok")

            def mon_ready():
                st = asok(mon_asok, "mon_status")
                return st is not None and st.get("state") == "leader"

            try:
                self.wait("ceph-mon", "mon.a", mon, mon_ready, deadline, started)
                self.note(f"ceph-mon is leader on 127.0.0.1:{mon_port}")
                break
            except StartError:
                # Someone took the port between free_port() and the bind.
                if attempt < 2 and mon.poll() is not None and self.bind_failed("mon.a"):
                    self.procs.remove(("mon.a", mon))
                    self.pgid = None  # that group died with its only member
                    continue
                raise

        osd_uuid = str(uuid.uuid4())
        osd_id = self.run("ceph osd new", ["ceph", *c, "--connect-timeout", "60", "osd", "new", osd_uuid]).strip()
        if osd_id != "0":
            raise StartError(f"ceph osd new gave id {osd_id!r}, not 0")
        self.run("ceph-osd --mkfs", ["ceph-osd", *c, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid])
        osd = self.spawn("osd.0", ["ceph-osd", *c, "-i", "0", "-f"])
        osd_asok = os.path.join(self.root, "run", "osd.0.asok")

        def osd_ready():
            st = asok(osd_asok, "status")
            return st is not None and st.get("state") == "active"

        self.wait("ceph-osd", "osd.0", osd, osd_ready, deadline, started)
        self.note("ceph-osd is active")

        # Port 0 unless --port: beast binds a free port itself, which we
        # then read from /proc, so no other process can take it meanwhile.
        rgw = self.spawn("client.rgw.a", ["radosgw", *c, "-n", "client.rgw.a", "-f"])
        ports = set()

        def rgw_ready():
            ports.update(listen_ports(rgw.pid))
            return bool(ports)

        self.wait("radosgw", "client.rgw.a", rgw, rgw_ready, deadline, started)
        port = ports.pop()
        if rgw_port and port != rgw_port:
            raise StartError(f"radosgw listens on {port}, not on --port {rgw_port}")
        self.note(f"radosgw listens on 127.0.0.1:{port}")

        self.run("radosgw-admin user create", [
            "radosgw-admin", *c, "-n", "client.admin", "user", "create", f"--uid={USER}",
            f"--display-name={USER}", f"--access-key={ACCESS_KEY}", f"--secret-key={SECRET_KEY}"])
        self.note(f"user {USER} created")
        return port

    def stop(self):
        # SIGKILL: the cluster is thrown away, and a memstore OSD stopped
        # with SIGTERM would first write all its objects to disk.
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _, p in self.procs:
            try:
                p.kill()
            except ProcessLookupError:
                pass
            p.wait()


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main():
    ap = argparse.ArgumentParser(prog=PROG, description="Start a throwaway radosgw on 127.0.0.1.")
    ap.add_argument("--dir", help="directory for the cluster (default: a new temporary one)")
    ap.add_argument("--port", type=int, default=0, help="radosgw port (default: a free one)")
    ap.add_argument("--bucket", action="append", default=[], help="bucket to create (repeatable; default: test)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds the whole start may take")
    ap.add_argument("--keep", action="store_true", help="keep the directory (logs) after stopping")
    ap.add_argument("--verbose", action="store_true", help="report each step's time on stderr")
    args = ap.parse_args()
    buckets = args.bucket or ["test"]

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
        # Ours alone: remove only what we make in it.
        root = tempfile.mkdtemp(prefix="rgw-", dir=args.dir)
    else:
        root = tempfile.mkdtemp(prefix="objcache-radosgw-")
    # Unix socket paths are limited to 107 bytes.
    if len(os.path.join(root, "run", "client.rgw.a.asok")) > 100:
        shutil.rmtree(root, ignore_errors=True)
        root = tempfile.mkdtemp(prefix="objcache-radosgw-")

    cluster = Cluster(root, args.timeout, args.verbose)
    code = 0
    try:
        port = cluster.start(args.port)
        for b in buckets:
            status, body = s3_request(port, "PUT", f"/{b}")
            if status != 200:
                raise StartError(f"creating bucket {b} answered {status}: {body.decode('utf-8', 'replace')}")
            cluster.note(f"bucket {b} created")
        line = json.dumps({"port": port, "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "region": REGION})
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        while sys.stdin.buffer.read(65536):
            pass
    except StartError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        code = 1
    except SystemExit as e:
        code = 0 if e.code in (None, 128 + signal.SIGTERM, 128 + signal.SIGINT) else e.code
    except (OSError, ValueError) as e:  # stdout or stdin gone, or a bad answer
        sys.stderr.write(f"{PROG}: {e}\n")
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cluster.stop()
        if args.keep:
            sys.stderr.write(f"{PROG}: kept {root}\n")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
