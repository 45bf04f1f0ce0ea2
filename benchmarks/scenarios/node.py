"""The reference: express with and without Mozilla's client-sessions, the library sealed-sessions descends from."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..harness import LOG_DIR, Competitor, Progress, Spec, login, measure, skipped
from ..report import Section
from ..servers import running

__all__ = ["scenario_node"]

NODE_PACKAGES = ["express@4", "client-sessions@0.8"]
NODE_APP = Path(__file__).resolve().parent.parent / "apps" / "node_app.js"


def scenario_node(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """``npm install`` into a temporary folder (never the repository), then both apps, read one key."""
    key, title = "server.node", "Node: express with and without client-sessions (the reference)"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return [skipped(key, title, "node or npm is not installed")], {}
    tmp = Path(tempfile.mkdtemp(prefix="sealed-bench-node-"))
    try:
        progress("node: npm install express client-sessions (into a temporary folder)")
        shutil.copy(NODE_APP, tmp / "node_app.js")
        (tmp / "package.json").write_text('{"name": "sealed-bench-node", "private": true}\n')
        install = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", *NODE_PACKAGES],
            cwd=tmp,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if install.returncode != 0:
            why = install.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["npm install failed"]
            return [skipped(key, title, why[0][:200])], {}
        app = str(tmp / "node_app.js")
        specs: list[Spec] = [
            ("express", [node, app, "{port}", "none"], {}),
            ("client-sessions", [node, app, "{port}", "client-sessions"], {}),
        ]
        with running(specs, log_dir=LOG_DIR) as servers:
            cookie = login(servers["client-sessions"], "/login")
            competitors = [
                Competitor("express", ("express",), "/read", None, "express 4, no session"),
                Competitor("client-sessions", ("client-sessions",), "/read", cookie, "client-sessions, read one key"),
            ]
            section, _ = measure(key, title, "express", competitors, servers, profile, progress)
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
        section.notes.append(f"Node {version}; compare its ratio with ours read / none, not the absolute numbers")
        return [section], {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
