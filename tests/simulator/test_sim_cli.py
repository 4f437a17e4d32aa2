"""``python -m collectors.simulator``: the first stdout line is the URL object; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import httpx


async def test_cli_prints_urls_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collectors.simulator",
        "--port",
        "0",
        "--pairs",
        "BTC-USDT,PEPE-USDT",
        "--history-hours",
        "0.5",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        urls = json.loads(line)
        assert list(urls) == ["rest", "ws_public", "ws_business", "control"]
        assert urls["rest"].startswith("http://127.0.0.1:") and urls["control"] == urls["rest"] + "/sim"
        assert urls["ws_public"] == urls["rest"].replace("http", "ws") + "/ws/v5/public"
        async with httpx.AsyncClient() as http:
            body = (
                await http.get(urls["rest"] + "/api/v5/public/instruments", params={"instType": "SPOT"})
            ).json()
        assert [r["instId"] for r in body["data"]] == ["BTC-USDT", "PEPE-USDT"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
