#!/usr/bin/env python3
"""Opens N keep-alive client connections to HOST:PORT, sends one request on each, reads the
answer whole, and then holds every connection open and idle until stdin closes.

    idle_clients.py PORT N PATH [COOKIE]

Prints "ready OPEN STATUS:COUNT..." once all answers are in, then holds the connections
until stdin closes. Used by benches/memory.sh to measure what an idle connection costs a
proxy.
"""
import asyncio
import collections
import sys


async def one(port, path, cookie, counts, sem):
    async with sem:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["connect-error"] += 1
            return None
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n"
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        writer.write((head + "\r\n").encode())
        try:
            headers = await reader.readuntil(b"\r\n\r\n")
            status = headers.split(b" ", 2)[1].decode()
            length = 0
            for line in headers.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            counts["read-error"] += 1
            writer.close()
            return None
        counts[status] += 1
        return reader, writer


async def main():
    port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cookie = sys.argv[4] if len(sys.argv) > 4 else ""
    counts = collections.Counter()
    sem = asyncio.Semaphore(200)
    conns = [c for c in await asyncio.gather(
        *(one(port, path, cookie, counts, sem) for _ in range(n))) if c]
    summary = " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))
    print(f"ready {len(conns)} {summary}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for _, writer in conns:
        writer.close()


asyncio.run(main())
