# SPDX-License-Identifier: Apache-2.0
"""A TCP proxy that holds every chunk a client sends for a fixed delay before
passing it on: in front of s3rver, each request then takes that much longer,
like a store far away. For tests that need requests to overlap (a demand
read joining a prefetch already in flight); a few dozen connections at most.
With `down` set it plays a store that went away: new connections are closed
at once and a request on an open one drops it (a reset, to the client).
Not fast: the benchmarks use bench/latency_remote.py."""
import asyncio

from loop_server import LoopServer


class DelayProxy:
    def __init__(self, upstream_port, delay_s):
        self.upstream_port = upstream_port
        self.delay = delay_s
        self.down = False
        self._srv = LoopServer(self._serve)
        self.port, self.endpoint = self._srv.port, self._srv.endpoint

    async def _pipe(self, reader, writer, delay, upstream=False):
        try:
            while True:
                data = await reader.read(65536)
                if not data or (upstream and self.down):
                    break
                if delay:
                    await asyncio.sleep(delay)  # pace: the delay this proxy exists to add
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _serve(self, creader, cwriter):
        if self.down:
            cwriter.close()
            return
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(self._pipe(creader, uwriter, self.delay, upstream=True),
                             self._pipe(ureader, cwriter, 0))

    def stop(self):
        self._srv.stop()
