"""In-process measurements: sealing, opening and whole ASGI requests, without sockets.

``runner`` times the groups (calibrated batches, rotated order, ratios per round); ``crypto``
holds the sealing, opening and key ring groups; ``asgi`` the whole-request group; ``toolkit``
the read path with each toolkit option on but unused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..report import Section
from ..stats import summarize
from .asgi import asgi_group, overhead_ratios
from .crypto import keyring_group, open_group, seal_group
from .runner import Group, GroupResult, run_groups
from .toolkit import toolkit_group

__all__ = ["build_groups", "run"]


def build_groups(loop: asyncio.AbstractEventLoop) -> list[Group]:
    return [seal_group(), open_group(), keyring_group(), asgi_group(loop), toolkit_group(loop)]


def _note_overhead(result: GroupResult, section: Section, what: str, target: str = "", *, bare: str = "") -> float:
    """Note on ``section`` the share of Starlette's added cost that ours adds, for ``what``; its median.

    ``bare`` names the 'none ...' row the added cost is counted from (``what`` by default).
    """
    bare = bare or what
    share = summarize(overhead_ratios(result, f"ours {what}", f"starlette {what}", f"none {bare}"))
    section.notes.append(
        f"cost added over 'none {bare}': ours {what} / starlette {what} = {share.median:.2f} "
        f"(per-round min-max {share.low:.2f}-{share.high:.2f}){target}"
    )
    return share.median


def run(profile: dict[str, Any], progress: Callable[[str], None]) -> tuple[list[Section], dict[str, float]]:
    """Every group for ``profile['ip_rounds']`` rounds: the sections, and the ASGI overhead share."""
    loop = asyncio.new_event_loop()
    try:
        groups = build_groups(loop)
        results = run_groups(groups, rounds=profile["ip_rounds"], batch_seconds=profile["ip_batch"], progress=progress)
    finally:
        loop.close()
    sections: list[Section] = []
    derived: dict[str, float] = {}
    for result in results:
        section = result.section()
        if result.name == "asgi":
            share = _note_overhead(result, section, "read", "; target <= 0.5")
            derived["derived.asgi-read-overhead-share"] = share
            rich = _note_overhead(result, section, "read rich", "; target <= 0.5", bare="read")
            derived["derived.asgi-read-rich-overhead-share"] = rich
            cart = _note_overhead(result, section, "read cart", bare="read")
            derived["derived.asgi-read-cart-overhead-share"] = cart
            derived["derived.asgi-write-overhead-share"] = _note_overhead(result, section, "write")
        sections.append(section)
    return sections, derived
