"""Small functions that build the demo's HTML. Every value from outside goes through ``escape``."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from starlette.responses import HTMLResponse

__all__ = ["form", "hidden_field", "html_page", "input_field", "notice"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem} form{margin:1rem 0;padding:1rem;border:1px solid #ddd;border-radius:.5rem}
label{display:block;margin:.5rem 0} input{display:block;width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:.5rem;padding:.4rem 1rem} .error{color:#b00020} .notice{color:#1b5e20}
dt{font-weight:bold} footer{margin-top:2rem;color:#777;font-size:.85rem} nav a{margin-right:1rem}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ddd}
td form{margin:0;padding:0;border:0} td button{margin:0}
"""

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def html_page(
    title: str,
    body: str,
    *,
    served_by: str,
    status_code: int = 200,
    logged_in: bool = False,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A whole page: ``body`` is trusted HTML built by this module's functions; ``title`` is escaped.

    ``headers`` (such as ``Retry-After``) are sent along with the security headers.
    """
    nav = (
        '<a href="/profile">Profile</a><a href="/devices">Your devices</a>'
        if logged_in
        else '<a href="/login">Log in</a><a href="/register">Register</a>'
    )
    document = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - sealed-sessions demo</title><style>{_STYLE}</style></head>"
        f"<body><nav>{nav}</nav><h1>{escape(title)}</h1>{body}"
        f'<footer>sealed-sessions demo, served by <span id="served-by">{escape(served_by)}</span></footer>'
        "</body></html>\n"
    )
    return HTMLResponse(document, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})})


def input_field(label: str, name: str, *, kind: str = "text", value: str = "", autocomplete: str = "") -> str:
    """A labelled ``<input>``."""
    extra = f' autocomplete="{escape(autocomplete)}"' if autocomplete else ""
    return (
        f"<label>{escape(label)}"
        f'<input type="{escape(kind)}" name="{escape(name)}" id="{escape(name)}"'
        f' value="{escape(value)}" required{extra}>'
        "</label>"
    )


def hidden_field(name: str, value: str) -> str:
    """A hidden ``<input>``."""
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def form(action: str, csrf_token: str, fields: str, button: str, *, form_id: str) -> str:
    """A POST form carrying the session's CSRF token in a hidden field."""
    return (
        f'<form method="post" action="{escape(action)}" id="{escape(form_id)}">'
        f'{hidden_field("csrf_token", csrf_token)}{fields}<button type="submit">{escape(button)}</button></form>'
    )


def notice(text: str, *, error: bool = False) -> str:
    """A one-line message above a form."""
    css = "error" if error else "notice"
    role = "alert" if error else "status"
    return f'<p class="{css}" role="{role}">{escape(text)}</p>'
