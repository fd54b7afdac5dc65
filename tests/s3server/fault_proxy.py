# SPDX-License-Identifier: Apache-2.0
"""An HTTP proxy in front of a test S3 server that injects faults per
request: a 503 SlowDown (with S3's XML body), a 500 InternalError, a
connection reset in the middle of the body, a body cut short under a full
Content-Length (a clean close), a stall (the request is never answered),
and a delay. For the chaos suite (tests/chaos/run_chaos.py) and the long
chaos run; not a mock of S3: every request that is not faulted goes to the
real server and its answer comes back unchanged.

Seeded and replayable: whether a request is faulted, and how, is drawn from
a generator seeded with (seed, method, path and query, Range, how many times
this same request was seen before). The same client doing the same requests
meets the same faults in any interleaving of its connections. `counts` says
what was done (requests seen, faults of each kind, answers passed through).

HTTP/1.1 with keep-alive, Content-Length and chunked bodies both ways, and
Expect: 100-continue (answered here: the body is read before the request is
forwarded or faulted). Responses are read whole before they are sent on,
so a reset or a truncation always cuts a body at its middle. One upstream
connection per client connection."""
import asyncio
import hashlib
import random
import socket
import struct
import threading

from loop_server import LoopServer

KINDS = ("slowdown", "error500", "reset", "truncate", "stall", "delay")

_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        '<Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>')
_CANNED = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "error500": (500, "Internal Server Error", "InternalError",
                 "We encountered an internal error. Please try again."),
}


class _Closed(Exception):
    pass


async def _read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise ConnectionError("connection closed inside a message head")
        raise _Closed()
    except asyncio.LimitOverrunError:
        raise ConnectionError("message head too long")
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _get(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def _read_body(reader, headers, until_close=False):
    """The body's bytes as sent (chunked bodies keep their framing)."""
    te = _get(headers, "transfer-encoding")
    if te is not None and "chunked" in te.lower():
        out = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            out += line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = await reader.readuntil(b"\r\n")
                    out += t
                    if t == b"\r\n":
                        return bytes(out)
            out += await reader.readexactly(size + 2)
    length = _get(headers, "content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    if until_close:
        return await reader.read()
    return b""


def _head_bytes(first, headers):
    return (first + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


class FaultProxy:
    """rates: kind -> probability per request (their sum at most 1).
    stall_s: how long a stalled request is held before its connection is
    closed (the client's own deadline should end it first). delay_s: what a
    delayed request waits before its answer is sent."""

    def __init__(self, upstream_port, seed=1, rates=None, stall_s=30.0, delay_s=0.2, max_in_flight=None,
                 hold_s=0.0):
        """max_in_flight: a store that takes at most this many requests at
        once: one that arrives while that many are being served is answered
        503 SlowDown (counted as "over_limit"). hold_s: how long every request
        that passes is held before it goes upstream (so requests overlap)."""
        self.upstream_port = upstream_port
        self.seed = seed
        self.stall_s = stall_s
        self.delay_s = delay_s
        self.max_in_flight = max_in_flight
        self.hold_s = hold_s
        self._in_flight = 0
        self._lock = threading.Lock()
        self.set_rates(rates or {})
        self.counts = {k: 0 for k in ("requests", "passed", "over_limit", "peak_in_flight") + KINDS}
        self._seen = {}
        self._srv = LoopServer(self._serve, limit=1 << 20)
        self.port, self.endpoint = self._srv.port, self._srv.endpoint

    def set_rates(self, rates):
        bad = set(rates) - set(KINDS)
        if bad:
            raise ValueError(f"unknown fault kinds {sorted(bad)}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        with self._lock:
            self.rates = dict(rates)

    def snapshot(self):
        with self._lock:
            return dict(self.counts)

    def faults(self):
        with self._lock:
            return sum(self.counts[k] for k in KINDS)

    def _decide(self, method, target, rng_header):
        ident = f"{method} {target} {rng_header or ''}"
        with self._lock:
            n = self._seen.get(ident, 0)
            self._seen[ident] = n + 1
            self.counts["requests"] += 1
            rates = dict(self.rates)
        digest = hashlib.sha256(f"{self.seed}|{ident}|{n}".encode()).digest()
        r = random.Random(int.from_bytes(digest[:8], "little")).random()
        acc = 0.0
        for kind in KINDS:
            acc += rates.get(kind, 0.0)
            if r < acc:
                return kind
        return None

    def _count(self, kind):
        with self._lock:
            self.counts[kind] += 1

    async def _serve(self, creader, cwriter):
        ureader = uwriter = None
        try:
            while True:
                first, headers = await _read_head(creader)
                method, target = (first.split(" ") + ["", ""])[:2]
                expect = _get(headers, "expect")
                if expect is not None and expect.lower() == "100-continue":
                    cwriter.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await cwriter.drain()
                    headers = [(k, v) for k, v in headers if k.lower() != "expect"]
                body = await _read_body(creader, headers)
                kind = self._decide(method, target, _get(headers, "range"))
                if kind is None and self.max_in_flight is not None:
                    with self._lock:
                        over = self._in_flight >= self.max_in_flight
                        if over:
                            self.counts["over_limit"] += 1
                        else:
                            self._in_flight += 1
                            self.counts["peak_in_flight"] = max(self.counts["peak_in_flight"], self._in_flight)
                    if over:
                        status, reason, code, message = _CANNED["slowdown"]
                        xml = _XML.format(code=code, message=message).encode()
                        cwriter.write(_head_bytes(f"HTTP/1.1 {status} {reason}", [
                            ("Content-Type", "application/xml"), ("Content-Length", str(len(xml))),
                            ("Connection", "keep-alive")]) + xml)
                        await cwriter.drain()
                        continue
                    try:
                        ureader, uwriter, answer = await self._forward(ureader, uwriter, first, headers, body,
                                                                       method)
                    finally:
                        # Done before the answer goes out: the client cannot
                        # have its next request here while this one counts.
                        with self._lock:
                            self._in_flight -= 1
                    self._count("passed")
                    cwriter.write(answer[0])
                    await cwriter.drain()
                    if answer[1]:
                        return
                    continue
                if kind in _CANNED:
                    status, reason, code, message = _CANNED[kind]
                    xml = _XML.format(code=code, message=message).encode()
                    cwriter.write(_head_bytes(f"HTTP/1.1 {status} {reason}", [
                        ("Content-Type", "application/xml"), ("Content-Length", str(len(xml))),
                        ("Connection", "keep-alive")]) + xml)
                    await cwriter.drain()
                    self._count(kind)
                    continue
                if kind == "stall":
                    self._count(kind)
                    # pace: a stalled store, held until the client gives up
                    await asyncio.wait_for(creader.read(), timeout=self.stall_s)
                    return
                if ureader is None:
                    ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port,
                                                                     limit=1 << 20)
                uwriter.write(_head_bytes(first, headers) + body)
                await uwriter.drain()
                while True:  # skip interim answers (we sent our own 100)
                    rfirst, rheaders = await _read_head(ureader)
                    status = int(rfirst.split(" ")[1])
                    if status >= 200 or status == 101:
                        break
                no_body = method == "HEAD" or status in (204, 304)
                close_after = (_get(rheaders, "connection") or "").lower() == "close"
                rbody = b"" if no_body else await _read_body(
                    ureader, rheaders, until_close=_get(rheaders, "content-length") is None)
                if kind == "delay":
                    self._count(kind)
                    await asyncio.sleep(self.delay_s)  # pace: a slow answer, the fault itself
                    kind = None
                if kind in ("reset", "truncate"):
                    self._count(kind)
                    cwriter.write(_head_bytes(rfirst, rheaders) + rbody[:len(rbody) // 2])
                    await cwriter.drain()
                    sock = cwriter.get_extra_info("socket")
                    if kind == "reset" and sock is not None:
                        # SO_LINGER 0: close() sends RST instead of FIN.
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        cwriter.transport.abort()
                    return
                self._count("passed")
                cwriter.write(_head_bytes(rfirst, rheaders) + rbody)
                await cwriter.drain()
                if close_after or _get(rheaders, "content-length") is None and not no_body and \
                        _get(rheaders, "transfer-encoding") is None:
                    return
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                asyncio.LimitOverrunError, ValueError, IndexError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            for w in (cwriter, uwriter):
                if w is not None:
                    try:
                        w.close()
                    except Exception:
                        pass

    async def _forward(self, ureader, uwriter, first, headers, body, method):
        """Holds the request hold_s, sends it upstream and reads the whole
        answer: (reader, writer, (answer bytes, close after it))."""
        if self.hold_s:
            await asyncio.sleep(self.hold_s)  # pace: the store's own time per request
        if ureader is None:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port, limit=1 << 20)
        uwriter.write(_head_bytes(first, headers) + body)
        await uwriter.drain()
        while True:  # skip interim answers (we sent our own 100)
            rfirst, rheaders = await _read_head(ureader)
            status = int(rfirst.split(" ")[1])
            if status >= 200 or status == 101:
                break
        no_body = method == "HEAD" or status in (204, 304)
        rbody = b"" if no_body else await _read_body(
            ureader, rheaders, until_close=_get(rheaders, "content-length") is None)
        close_after = (_get(rheaders, "connection") or "").lower() == "close" or (
            _get(rheaders, "content-length") is None and not no_body and _get(rheaders, "transfer-encoding") is None)
        return ureader, uwriter, (_head_bytes(rfirst, rheaders) + rbody, close_after)

    def stop(self):
        self._srv.stop()


def main():
    """Stand-alone: python3 fault_proxy.py UPSTREAM_PORT [SEED] [kind=rate...];
    prints {"port": N} and runs until stdin closes; prints the counts."""
    import json
    import sys
    upstream = int(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rates = {}
    for a in sys.argv[3:]:
        k, _, v = a.partition("=")
        rates[k] = float(v)
    p = FaultProxy(upstream, seed=seed, rates=rates)
    print(json.dumps({"port": p.port}), flush=True)
    sys.stdin.read()
    print(json.dumps(p.snapshot()), flush=True)


if __name__ == "__main__":
    main()
