"""``python -m examples.demo [--host 127.0.0.1] [--port 8000]``: serve the demo with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn

from sealed_sessions import ConfigurationError

from .app import create_app
from .settings import Settings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    try:
        app = create_app(Settings.from_env())
    except (ConfigurationError, ValueError) as exc:  # ConfigurationError names the key's position, never its value
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"sealed-sessions demo: open http://{args.host}:{args.port}/ in a browser", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
