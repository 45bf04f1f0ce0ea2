"""The sealed-sessions demo: register, log in, see the session and your devices, log out one device or all
others, change password.

Start it with ``python -m examples.demo`` (SQLite in ./demo.db, http://127.0.0.1:8000), or build it
in code with :func:`create_app`. Settings come from the environment: see :mod:`.settings`.
"""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
