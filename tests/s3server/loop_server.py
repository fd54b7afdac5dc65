# SPDX-License-Identifier: Apache-2.0
"""An asyncio TCP server on a free 127.0.0.1 port, run by its own event loop
in a daemon thread: what the test proxies (delay_proxy.py, fault_proxy.py)
stand on."""
import asyncio
import threading


class LoopServer:
    """Calls `await serve(reader, writer)` per connection. `port` and
    `endpoint` are set once it listens; stop() closes it and ends the loop."""

    def __init__(self, serve, limit=1 << 16):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.port = None

        async def start():
            self.server = await asyncio.start_server(serve, "127.0.0.1", 0, limit=limit)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("test proxy did not start listening")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self):
        def shut():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(shut)
        self.thread.join(5)
