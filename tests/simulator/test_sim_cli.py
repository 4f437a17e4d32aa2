"""The CLI (``python -m okx_simulator`` and ``okx-collector simulate``): the first stdout line is the URL
object; SIGTERM and SIGINT stop it cleanly (exit 0)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

import httpx
import pytest

from okx_simulator import SimulatorConfig, SimulatorServer
from okx_simulator.cli import add_arguments, config_from_args

ROOT = Path(__file__).resolve().parents[2]


async def test_cli_prints_urls_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "okx_simulator",
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
        line = await asyncio.wait_for(process.stdout.readline(), 60)  # start-up on a loaded machine
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
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
async def test_okx_collector_simulate(stop: signal.Signals) -> None:
    """The console script ``okx-collector`` (flows.cli:main) runs the simulator until SIGINT or SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "flows.cli", "simulate", "--port", "0", "--seed", "4"),
        *("--pairs", "ETH-USDT", "--history-hours", "0.2"),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
        port = urls["rest"].rsplit(":", 1)[1]
        assert urls == {
            "rest": f"http://127.0.0.1:{port}",
            "ws_public": f"ws://127.0.0.1:{port}/ws/v5/public",
            "ws_business": f"ws://127.0.0.1:{port}/ws/v5/business",
            "control": f"http://127.0.0.1:{port}/sim",
        }
        async with httpx.AsyncClient() as http:
            body = (
                await http.get(urls["rest"] + "/api/v5/public/instruments", params={"instType": "SPOT"})
            ).json()
        assert body["code"] == "0" and [(r["instId"], r["tickSz"], r["lotSz"]) for r in body["data"]] == [
            (
                "ETH-USDT",
                "0.01",
                "0.000001",
            )
        ]
        process.send_signal(stop)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_wildcard_host_prints_loopback_urls() -> None:
    config = SimulatorConfig(host="0.0.0.0", seed=2, history_hours=0.1, pairs=("BTC-USDT",))
    async with SimulatorServer(config) as sim:
        assert sim.urls() == {
            "rest": f"http://127.0.0.1:{sim.port}",
            "ws_public": f"ws://127.0.0.1:{sim.port}/ws/v5/public",
            "ws_business": f"ws://127.0.0.1:{sim.port}/ws/v5/business",
            "control": f"http://127.0.0.1:{sim.port}/sim",
        }
        async with httpx.AsyncClient() as http:
            answer = (await http.get(sim.rest_url + "/api/v5/public/time")).json()
    assert answer["code"] == "0" and int(answer["data"][0]["ts"]) > 0


def _config(*argv: str) -> SimulatorConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


def test_firehose_rate_is_spread_over_the_pairs_without_bursts() -> None:
    config = _config("--firehose-rate", "20000", "--pairs", "BTC-USDT,ETH-USDT,SOL-USDT,DOGE-USDT")
    assert (config.trade_rate, config.history_trade_rate, config.chunk_ms) == (5000.0, 2.0, 1000)
    assert (config.quiet_prob, config.burst_prob) == (0.0, 0.0)
    bursty = _config("--firehose-rate", "20000", "--firehose-bursts", "--trade-rate", "3")
    assert (bursty.trade_rate, bursty.history_trade_rate) == (20000 / 9, 3.0)
    assert (bursty.quiet_prob, bursty.burst_prob) == (0.08, 0.05)
    legacy = _config("--firehose")
    assert (legacy.trade_rate, legacy.chunk_ms, legacy.quiet_prob, legacy.burst_prob) == (
        5000.0,
        1000,
        0.08,
        0.05,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--firehose-bursts",), "--firehose-bursts needs --firehose-rate"),
        (("--firehose-rate", "0"), "--firehose-rate must be positive, got 0"),
    ],
)
def test_firehose_options_refused(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(*argv)


def test_firehose_and_firehose_rate_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _config("--firehose", "--firehose-rate", "100")
    assert "not allowed with argument" in capsys.readouterr().err
