"""Run as a child process by test_crash.py: a writer whose database is unreachable, killed with SIGKILL.

Puts chunks of trades; after each chunk waits until the writer has spilled them (memory is far from full, so
only the per-interval spill can do that) and prints ``spilled <last id>``; then puts one more chunk, prints
``put <last id>`` and waits to be killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from collectors.storage.engine import make_engine
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import trade

CHUNK = 500


async def main(spill_dir: Path, chunks: int) -> None:
    engine = make_engine(os.environ["DATABASE_URL"])
    options = WriterOptions(flush_interval_s=0.1, spill_dir=spill_dir, retry_initial_s=5, retry_max_s=5)
    async with BatchWriter(open_sink(engine), options=options) as writer:
        for chunk in range(chunks):
            last = (chunk + 1) * CHUNK
            await writer.put_many(trade(i) for i in range(chunk * CHUNK + 1, last + 1))
            for _ in range(3_000):  # up to 30 s; the test fails on its own timeout first
                if writer.stats().spilled_rows >= last:
                    break
                await asyncio.sleep(0.01)
            else:
                raise SystemExit(f"not spilled: {writer.stats()}")
            print(f"spilled {last}", flush=True)
        await writer.put_many(trade(i) for i in range(chunks * CHUNK + 1, (chunks + 1) * CHUNK + 1))
        print(f"put {(chunks + 1) * CHUNK}", flush=True)
        await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
