"""The /sim control plane answers loopback clients only unless opened; the OKX endpoints answer anyone.

Real sockets: the simulator binds 0.0.0.0 and the client dials this machine's non-loopback address (the first
one ``hostname -I`` lists), so the simulator sees a non-loopback peer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys

import httpx
import pytest

from okx_simulator import SimulatorConfig, SimulatorServer


def _outside_address() -> str:
    """This machine's first non-loopback IPv4 address (a peer dialling it is not loopback)."""
    listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()
    for text in listed:
        address = ipaddress.ip_address(text)
        if address.version == 4 and not address.is_loopback:
            return text
    pytest.skip(f"no non-loopback IPv4 address on this machine (hostname -I: {listed})")


OUTSIDE = _outside_address()
_CONFIG = {"seed": 3, "pairs": ("BTC-USDT",), "history_hours": 0.2, "host": "0.0.0.0"}


async def _get(client: httpx.AsyncClient, host: str, port: int, path: str) -> httpx.Response:
    return await client.get(f"http://{host}:{port}{path}")


async def test_a_non_loopback_client_gets_403_json_while_loopback_and_okx_endpoints_work() -> None:
    async with SimulatorServer(SimulatorConfig(**_CONFIG)) as sim, httpx.AsyncClient(timeout=10) as client:
        refused = await _get(client, OUTSIDE, sim.port, "/sim/stats")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/json")
        body = refused.json()
        assert body == {
            "error": "the /sim control endpoints answer loopback clients only",
            "remote": OUTSIDE,
            "fix": "start the simulator with --control-allow CIDR (repeatable) or --open-control",
        }
        # every control route, reading and writing, is refused the same way; nothing was changed
        for method, path in (("POST", "/sim/faults"), ("DELETE", "/sim/faults"), ("GET", "/sim/tape")):
            other = await client.request(
                method, f"http://{OUTSIDE}:{sim.port}{path}?instId=BTC-USDT", json={"kind": "drop"}
            )
            assert other.status_code == 403, (method, path)
        assert sim.state.faults.faults == []
        # the OKX protocol endpoints stay open to anyone
        okx = await _get(client, OUTSIDE, sim.port, "/api/v5/public/time")
        assert okx.status_code == 200 and okx.json()["code"] == "0"
        local = await _get(client, "127.0.0.1", sim.port, "/sim/stats")
        assert local.status_code == 200 and "connections" in local.json()


async def test_control_allow_opens_the_named_network_only() -> None:
    inside = str(ipaddress.ip_network(f"{OUTSIDE}/24", strict=False))
    async with httpx.AsyncClient(timeout=10) as client:
        async with SimulatorServer(SimulatorConfig(**_CONFIG, control_allow=(inside,))) as sim:
            added = await client.post(f"http://{OUTSIDE}:{sim.port}/sim/faults", json={"kind": "drop"})
            assert added.status_code == 200 and added.json() == {"id": "f1"}
            assert [f.kind for f in sim.state.faults.faults] == ["drop"]
        async with SimulatorServer(SimulatorConfig(**_CONFIG, control_allow=("10.255.0.0/16",))) as sim:
            assert (await _get(client, OUTSIDE, sim.port, "/sim/stats")).status_code == 403


def test_a_bad_control_allow_network_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"control_allow: 'lan' is not a CIDR network like 192.0.2.0/24"):
        SimulatorConfig(control_allow=("lan",))


async def _start_cli(*options: str) -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "okx_simulator", "--host", "0.0.0.0", "--pairs", "BTC-USDT",
        "--history-hours", "0.2", *options, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    urls = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
    return process, int(urls["rest"].rsplit(":", 1)[1])


async def _stop(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    assert await asyncio.wait_for(process.wait(), 20) == 0


@pytest.mark.parametrize(
    ("options", "outside_status"),
    [((), 403), (("--open-control",), 200), (("--control-allow", f"{OUTSIDE}/32"), 200)],
    ids=["default", "open-control", "control-allow"],
)
async def test_the_cli_switches_open_the_control_plane(options: tuple[str, ...], outside_status: int) -> None:
    process, port = await _start_cli(*options)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await _get(client, OUTSIDE, port, "/sim/stats")).status_code == outside_status
            assert (await _get(client, "127.0.0.1", port, "/sim/stats")).status_code == 200
    finally:
        await _stop(process)


def test_the_cli_refuses_a_bad_network() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "okx_simulator", "--control-allow", "10.0.0.0/33"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "control_allow: '10.0.0.0/33' is not a CIDR network" in result.stderr


def _outside_address_v6() -> str | None:
    listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()
    return next((a for a in listed if ipaddress.ip_address(a).version == 6 and not ipaddress.ip_address(a).is_loopback
                 and not ipaddress.ip_address(a).is_link_local), None)  # fmt: skip


async def test_ipv6_peers_follow_the_same_rule() -> None:
    outside = _outside_address_v6()
    if outside is None:
        pytest.skip("no non-loopback IPv6 address on this machine")
    config = SimulatorConfig(**{**_CONFIG, "host": "::"})
    async with SimulatorServer(config) as sim, httpx.AsyncClient(timeout=10) as client:
        refused = await client.get(f"http://[{outside}]:{sim.port}/sim/stats")
        assert refused.status_code == 403 and refused.json()["remote"] == outside
        assert (await client.get(f"http://[::1]:{sim.port}/sim/stats")).status_code == 200


def test_an_ipv4_mapped_loopback_peer_counts_as_loopback() -> None:
    """A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d; Python 3.11 calls that not loopback."""
    from okx_simulator.control import _address

    assert not ipaddress.ip_address("::ffff:127.0.0.1").is_loopback
    mapped = _address("::ffff:127.0.0.1")
    assert mapped == ipaddress.ip_address("127.0.0.1") and mapped.is_loopback
    assert _address("::ffff:192.0.2.2") == ipaddress.ip_address("192.0.2.2")
    assert _address("") is None and _address("/tmp/sim.sock") is None


def _raw_get(host: str, port: int, target: str, headers: str = "") -> tuple[int, bytes]:
    """One HTTP/1.1 request with ``target`` sent byte for byte (no client-side normalisation)."""
    import socket

    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


_SPOOFED = (
    "X-Forwarded-For: 127.0.0.1\r\n",
    "X-Forwarded-For: 127.0.0.1, 127.0.0.1\r\n",
    "X-Real-IP: 127.0.0.1\r\n",
    "Forwarded: for=127.0.0.1;proto=http\r\n",
    'Forwarded: for="[::1]"\r\n',
    "X-Forwarded-Host: localhost\r\nX-Client-IP: 127.0.0.1\r\n",
)
# ways to write /sim/stats or /sim/faults that a check on the raw path could miss
_DISGUISED = (
    "/%73im/stats",
    "/sim%2Fstats",
    "/%2Fsim/stats",
    "//sim/stats",
    "/sim//stats",
    "/./sim/stats",
    "/sim/./stats",
    "/api/v5/../../sim/stats",
    "/api/v5/%2E%2E/%2E%2E/sim/stats",
    "/SIM/stats",
    "/Sim/Stats",
    "/sim/stats/",
    "/sim/stats?x=1#frag",
    "/sim/stats;x=1",
    "http://127.0.0.1/sim/stats",
    "/sim/faults/log",
)


async def test_forwarding_headers_do_not_make_an_outside_peer_loopback() -> None:
    async with SimulatorServer(SimulatorConfig(**_CONFIG)) as sim:
        for headers in _SPOOFED:
            status, body = await asyncio.to_thread(_raw_get, OUTSIDE, sim.port, "/sim/stats", headers)
            assert status == 403 and json.loads(body)["remote"] == OUTSIDE, (headers, status, body)


async def test_no_spelling_of_a_control_path_reaches_a_control_handler_from_outside() -> None:
    """Every target answers 403 (the check ran) or 404 (no route), never a control answer; from loopback the
    same targets never answer 403 (the check is on the peer, not the spelling)."""
    async with SimulatorServer(SimulatorConfig(**_CONFIG)) as sim:
        for target in _DISGUISED:
            status, body = await asyncio.to_thread(_raw_get, OUTSIDE, sim.port, target)
            assert status in (403, 404), (target, status, body[:200])
            assert b"connections" not in body and b'"kind"' not in body, (target, body[:200])
            local, _ = await asyncio.to_thread(_raw_get, "127.0.0.1", sim.port, target)
            assert local != 403, target
        assert sim.state.faults.faults == []
