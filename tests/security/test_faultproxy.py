"""The fault proxy itself, against a loopback echo server: each mode does what the fault tests rely on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from .faultproxy import FaultProxy


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def _roundtrip(port: int, payload: bytes = b"ping", timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), timeout)
    finally:
        writer.close()


async def test_proxy_passes_bytes(echo_port: int) -> None:
    """In pass mode the proxy forwards both ways."""
    async with FaultProxy("127.0.0.1", echo_port) as proxy:
        assert await _roundtrip(proxy.port) == b"ping"


async def test_proxy_refuse_then_heal(echo_port: int) -> None:
    """Refuse mode gives connection refused on the same port; healing listens again."""
    async with FaultProxy("127.0.0.1", echo_port) as proxy:
        await proxy.set_mode("refuse")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", proxy.port)
        await proxy.heal()
        assert await _roundtrip(proxy.port) == b"ping"


async def test_proxy_cut_closes_on_first_byte(echo_port: int) -> None:
    """Cut mode drops a connection as soon as it carries data: the reader sees EOF or a reset."""
    async with FaultProxy("127.0.0.1", echo_port) as proxy:
        await proxy.set_mode("cut")
        try:
            assert await _roundtrip(proxy.port) == b""
        except ConnectionResetError:
            pass


async def test_proxy_stall_holds_until_healed(echo_port: int) -> None:
    """Stall mode forwards nothing; after healing the held bytes flow."""
    async with FaultProxy("127.0.0.1", echo_port) as proxy:
        await proxy.set_mode("stall")
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"held")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1024), 0.3)
        await proxy.heal()
        assert await asyncio.wait_for(reader.read(1024), 2) == b"held"
        writer.close()


async def test_proxy_slow_delays_but_delivers(echo_port: int) -> None:
    """Slow mode delivers late: not within a short wait, but within the delay."""
    async with FaultProxy("127.0.0.1", echo_port, delay=0.4) as proxy:
        await proxy.set_mode("slow")
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"late")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1024), 0.1)
        assert await asyncio.wait_for(reader.read(1024), 3) == b"late"
        writer.close()


async def test_proxy_cut_all_drops_live_connections(echo_port: int) -> None:
    """cut_all aborts every open connection (a database restart) and counts none live after."""
    async with FaultProxy("127.0.0.1", echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(1024), 2) == b"x"
        assert proxy.live == 1
        proxy.cut_all()
        assert proxy.live == 0
        try:
            assert await asyncio.wait_for(reader.read(1024), 2) == b""
        except ConnectionResetError:
            pass
        writer.close()


def test_proxy_refuses_non_loopback_upstream() -> None:
    """The proxy never forwards off the machine."""
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("10.0.0.1", 5432)
