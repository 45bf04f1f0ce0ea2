"""Response headers: Vary and cache directives edited on the raw header list, whatever the case of their names.

Catalogue F9 (Vary, Cache-Control: private), F14 (mixed-case Cache-Control) and F15 (CDN-only cache
headers). The same rules through the middleware, on a raw ASGI response, are in test_middleware_asgi.py.
"""

from __future__ import annotations

import pytest

from sealed_sessions._headers import Headers, keep_out_of_shared_caches, vary_on_cookie


def values(headers: Headers, name: bytes) -> list[bytes]:
    return [v for k, v in headers if k.lower() == name]


@pytest.mark.case("F14")
@pytest.mark.parametrize("name", [b"cache-control", b"Cache-Control", b"CACHE-CONTROL"])
def test_public_cache_control_in_any_case_becomes_one_private_header(name: bytes) -> None:
    """``Cache-Control: public, max-age=3600`` spelled in any case leaves exactly one header, private, max-age kept."""
    headers: Headers = [(name, b"public, max-age=3600"), (b"set-cookie", b"s=1")]
    keep_out_of_shared_caches(headers)
    assert values(headers, b"cache-control") == [b"max-age=3600, private"]


@pytest.mark.case("F9", "F14")
def test_s_maxage_dropped_and_no_store_kept() -> None:
    """``s-maxage`` goes (shared caches only), ``no-store`` stays and makes ``private`` unnecessary."""
    headers: Headers = [(b"Cache-Control", b"no-store, S-Maxage=60")]
    keep_out_of_shared_caches(headers)
    assert values(headers, b"cache-control") == [b"no-store"]


@pytest.mark.case("F14")
def test_cache_control_split_over_two_headers_is_merged() -> None:
    """Two Cache-Control headers are read as one list of directives and written back as one header."""
    headers: Headers = [(b"cache-control", b"public"), (b"Cache-Control", b"max-age=5")]
    keep_out_of_shared_caches(headers)
    assert values(headers, b"cache-control") == [b"max-age=5, private"]


@pytest.mark.case("F15")
@pytest.mark.parametrize("name", [b"CDN-Cache-Control", b"cdn-cache-control", b"Surrogate-Control"])
def test_cdn_cache_headers_become_no_store(name: bytes) -> None:
    """A CDN-only cache header on a response that sets the cookie is replaced by ``no-store``."""
    headers: Headers = [(name, b"max-age=86400"), (b"cache-control", b"private")]
    keep_out_of_shared_caches(headers)
    assert values(headers, name.lower()) == [b"no-store"]
    assert values(headers, b"cache-control") == [b"private"]


@pytest.mark.case("F9", "F15")
def test_no_cache_header_gets_private_and_no_cdn_header_is_invented() -> None:
    """Without any cache header, ``private`` is added and no CDN header appears."""
    headers: Headers = []
    keep_out_of_shared_caches(headers)
    assert headers == [(b"cache-control", b"private")]


@pytest.mark.case("F9")
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param([], [b"Cookie"], id="none"),
        pytest.param([(b"Vary", b"Accept-Encoding")], [b"Accept-Encoding, Cookie"], id="mixed_case_name"),
        pytest.param([(b"VARY", b"cookie")], [b"cookie"], id="already_there"),
        pytest.param([(b"vary", b"*")], [b"*"], id="star"),
        pytest.param([(b"vary", b"Accept"), (b"Vary", b"Origin")], [b"Accept, Origin, Cookie"], id="two_headers"),
    ],
)
def test_vary_gets_cookie_once_whatever_the_case(given: Headers, expected: list[bytes]) -> None:
    """``Vary`` ends up as one header listing Cookie once, however the app spelled the header name."""
    headers = list(given)
    vary_on_cookie(headers)
    assert values(headers, b"vary") == expected
