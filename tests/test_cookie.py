"""Cookie attributes and response headers (catalogue section F), through the whole ASGI stack."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sealed_sessions import ConfigurationError, SessionMiddleware, SessionTooLarge
from sealed_sessions._cookie import MAX_SAME_NAME, MAX_SET_COOKIE, CookieOptions, find_cookies
from sealed_sessions.testing import seal
from tests.helpers import COOKIE, KEY_A, ClientFactory, https_client


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """Split a Set-Cookie value into name, value and attributes (names lower-cased)."""
    first, *rest = (part.strip() for part in header.split(";"))
    name, _, value = first.partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, attr_value = part.partition("=")
        assert key.lower() not in attributes, f"attribute {key} repeated"
        attributes[key.lower()] = attr_value
    return name, value, attributes


def make_app(**options: Any) -> Starlette:
    """An app with routes that write, read, clear or ignore the session, under ``options``."""

    async def write(request: Request) -> Response:
        request.session.update(await request.json())
        return PlainTextResponse("written")

    async def read(request: Request) -> Response:
        return PlainTextResponse(repr(dict(request.session)))

    async def clear(request: Request) -> Response:
        request.session.clear()
        return PlainTextResponse("cleared")

    async def untouched(request: Request) -> Response:
        return PlainTextResponse("untouched")

    async def cached(request: Request) -> Response:
        request.session["x"] = 1
        return PlainTextResponse("cached", headers={"cache-control": request.query_params["cc"]})

    options.setdefault("secret_key", KEY_A)
    return Starlette(
        routes=[
            Route("/write", write, methods=["POST"]),
            Route("/read", read),
            Route("/clear", clear, methods=["POST"]),
            Route("/untouched", untouched),
            Route("/cached", cached),
        ],
        middleware=[Middleware(SessionMiddleware, **options)],
    )


def cookie_options(name: str = "session", **overrides: Any) -> CookieOptions:
    options: dict[str, Any] = {
        "path": "/",
        "same_site": "lax",
        "secure": True,
        "domain": None,
        "partitioned": False,
    }
    options.update(overrides)
    return CookieOptions(name, **options)


# -- F1, F4: defaults ------------------------------------------------------------------------------


@pytest.mark.case("F1", "F4", "F17")
async def test_default_attributes_are_secure_httponly_lax_root_path(client_factory: ClientFactory) -> None:
    """Defaults are the name __Host-session and exactly Path=/, Max-Age, HttpOnly, SameSite=Lax, Secure, no Domain."""
    async with client_factory(make_app()) as client:
        response = await client.post("/write", json={"a": 1})
    name, value, attributes = parse_set_cookie(response.headers["set-cookie"])
    assert name == COOKIE
    assert value
    assert attributes == {"path": "/", "max-age": str(14 * 24 * 3600), "httponly": "", "samesite": "lax", "secure": ""}


@pytest.mark.case("F4")
@pytest.mark.parametrize("same_site", ["lax", "strict", "none", "Strict"])
async def test_same_site_always_written_explicitly(client_factory: ClientFactory, same_site: str) -> None:
    """Every SameSite setting is written out explicitly, lower-cased."""
    async with client_factory(make_app(same_site=same_site)) as client:
        response = await client.post("/write", json={"a": 1})
    assert parse_set_cookie(response.headers["set-cookie"])[2]["samesite"] == same_site.lower()


async def test_partitioned_and_domain_attributes(client_factory: ClientFactory) -> None:
    """``partitioned=True`` and ``domain`` appear as attributes next to Secure."""
    async with client_factory(
        make_app(partitioned=True, domain="example.com"), base_url="https://app.example.com"
    ) as client:
        response = await client.post("/write", json={"a": 1})
        assert (await client.get("/read")).text == "{'a': 1}"
    attributes = parse_set_cookie(response.headers["set-cookie"])[2]
    assert attributes["domain"] == "example.com"
    assert "partitioned" in attributes
    assert "secure" in attributes


# -- F2, F3, F5: refused at construction -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"),
    [
        pytest.param("__Host-session", {"domain": "example.com"}, id="host-domain", marks=pytest.mark.case("F2")),
        pytest.param("__Host-session", {"path": "/app"}, id="host-path", marks=pytest.mark.case("F2")),
        pytest.param("__Host-session", {"https_only": False}, id="host-insecure", marks=pytest.mark.case("F2")),
        pytest.param("__Secure-session", {"https_only": False}, id="secure-prefix-insecure"),
        pytest.param("__host-session", {"path": "/app"}, id="host-lowercase", marks=pytest.mark.case("F2")),
        pytest.param("__SECURE-session", {"https_only": False}, id="secure-prefix-uppercase"),
        pytest.param(
            "session",
            {"same_site": "none", "https_only": False},
            id="samesite-none-insecure",
            marks=pytest.mark.case("F3"),
        ),
        pytest.param("session", {"partitioned": True, "https_only": False}, id="partitioned-insecure"),
        pytest.param("session", {"same_site": "sometimes"}, id="samesite-unknown"),
    ],
)
def test_contradictory_settings_refused_at_construction(name: str, options: dict[str, Any]) -> None:
    """Settings a browser would silently reject fail at construction with ConfigurationError."""
    with pytest.raises(ConfigurationError):
        SessionMiddleware(make_app(), secret_key=KEY_A, session_cookie=name, **options)


@pytest.mark.case("F2")
async def test_host_prefix_accepted_with_its_rules(client_factory: ClientFactory) -> None:
    """A ``__Host-`` cookie with Secure, Path=/ and no Domain works end to end."""
    async with client_factory(make_app(session_cookie="__Host-sid")) as client:
        response = await client.post("/write", json={"a": 1})
        assert (await client.get("/read")).text == "{'a': 1}"
    name, _, attributes = parse_set_cookie(response.headers["set-cookie"])
    assert name == "__Host-sid"
    assert attributes["path"] == "/"
    assert "domain" not in attributes


BAD_CHARACTERS = [";", ",", " ", "\r", "\n", "\t", "\x00"]


@pytest.mark.case("F5")
@pytest.mark.parametrize("char", BAD_CHARACTERS, ids=["semicolon", "comma", "space", "cr", "lf", "tab", "nul"])
@pytest.mark.parametrize("field", ["session_cookie", "path", "domain"])
def test_separators_in_name_path_or_domain_refused(field: str, char: str) -> None:
    """A separator or control character in the name, path or domain fails at construction."""
    values: dict[str, Any] = {"session_cookie": "sess", "path": "/app", "domain": "example.com"}
    values[field] = values[field][:2] + char + values[field][2:]
    with pytest.raises(ConfigurationError):
        SessionMiddleware(make_app(), secret_key=KEY_A, **values)


@pytest.mark.case("F5")
@pytest.mark.parametrize(
    ("field", "value"),
    [("session_cookie", ""), ("session_cookie", "séance"), ("session_cookie", "a=b"), ("path", "app"), ("path", "")],
)
def test_other_bad_names_and_paths_refused(field: str, value: str) -> None:
    """Empty or non-token names and paths not starting with '/' fail at construction."""
    with pytest.raises(ConfigurationError):
        options: dict[str, Any] = {field: value}
        SessionMiddleware(make_app(), secret_key=KEY_A, **options)


# -- F6: too large ------------------------------------------------------------------------------------


@pytest.mark.case("F6")
def test_set_cookie_limit_counts_the_whole_header() -> None:
    """A header of exactly 4096 bytes is sent; one more byte raises SessionTooLarge with the facts."""
    options = cookie_options()
    overhead = len(options.set_cookie("", 1209600))
    assert len(options.set_cookie("x" * (MAX_SET_COOKIE - overhead), 1209600)) == MAX_SET_COOKIE
    with pytest.raises(SessionTooLarge) as caught:
        options.set_cookie("x" * (MAX_SET_COOKIE - overhead + 1), 1209600)
    assert caught.value.size == MAX_SET_COOKIE + 1
    assert caught.value.limit == MAX_SET_COOKIE
    assert caught.value.cookie_name == "session"
    assert "4097" in str(caught.value)
    assert "4096" in str(caught.value)
    assert "server" in str(caught.value)  # the advice: keep large data server-side


@pytest.mark.case("F6")
async def test_oversized_session_is_a_loud_500_without_cookie() -> None:
    """Writing too much data gives a 500 from ServerErrorMiddleware and no Set-Cookie at all."""
    app = make_app()
    async with https_client(app, raise_app_exceptions=False) as client:
        response = await client.post("/write", json={"blob": "x" * 5000})
        assert response.status_code == 500
        assert "set-cookie" not in response.headers
        assert "written" not in response.text
        # a session just under the limit still works on the same app
        small = await client.post("/write", json={"blob": "x" * 2000})
        assert small.status_code == 200
        assert "set-cookie" in small.headers


@pytest.mark.case("F6")
async def test_oversized_session_raises_session_too_large(client_factory: ClientFactory) -> None:
    """The exception the server logs for an oversized session is SessionTooLarge with its size."""
    async with client_factory(make_app()) as client:
        with pytest.raises(SessionTooLarge) as caught:
            await client.post("/write", json={"blob": "x" * 5000})
    assert caught.value.size > caught.value.limit == MAX_SET_COOKIE


# -- F7, F8: when Set-Cookie is sent ----------------------------------------------------------------------


@pytest.mark.case("F7")
async def test_unchanged_read_sends_no_cookie(client_factory: ClientFactory) -> None:
    """Reading an existing session without changing it sends no Set-Cookie."""
    async with client_factory(make_app()) as client:
        assert "set-cookie" in (await client.post("/write", json={"a": 1})).headers
        response = await client.get("/read")
        assert response.text == "{'a': 1}"
        assert "set-cookie" not in response.headers
        assert "set-cookie" not in (await client.get("/untouched")).headers


@pytest.mark.case("F8")
@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {"session_cookie": "sid", "path": "/", "domain": "example.com", "same_site": "strict"}, id="custom"
        ),
        pytest.param({"https_only": False, "same_site": "strict"}, id="insecure"),
    ],
)
async def test_clear_sends_a_matching_deletion_cookie(client_factory: ClientFactory, options: dict[str, Any]) -> None:
    """Clearing the session expires the cookie with the same name, path, domain, Secure and SameSite."""
    async with client_factory(make_app(**options), base_url="https://app.example.com") as client:
        issued = parse_set_cookie((await client.post("/write", json={"a": 1})).headers["set-cookie"])
        response = await client.post("/clear")
        assert (await client.get("/read")).text == "{}"
    deletion = parse_set_cookie(response.headers["set-cookie"])
    assert deletion[0] == issued[0]
    assert deletion[1] == ""
    assert deletion[2]["max-age"] == "0"
    assert "1970" in deletion[2]["expires"]
    for attribute in ("path", "domain", "secure", "samesite", "httponly"):
        assert deletion[2].get(attribute) == issued[2].get(attribute), attribute


@pytest.mark.case("F8")
async def test_clearing_a_session_that_never_existed_sends_nothing(client_factory: ClientFactory) -> None:
    """Logging out without a session cookie sends no deletion cookie."""
    async with client_factory(make_app()) as client:
        response = await client.post("/clear")
    assert "set-cookie" not in response.headers


# -- F9: caches --------------------------------------------------------------------------------------------


@pytest.mark.case("F9")
async def test_vary_cookie_only_when_the_session_was_read(client_factory: ClientFactory) -> None:
    """A response that read the session has ``Vary: Cookie``; one that never touched it has none."""
    async with client_factory(make_app()) as client:
        await client.post("/write", json={"a": 1})
        read = await client.get("/read")
        untouched = await client.get("/untouched")
    assert read.headers["vary"] == "Cookie"
    assert "vary" not in untouched.headers
    assert "cache-control" not in untouched.headers


@pytest.mark.case("F9")
async def test_setting_a_cookie_adds_cache_control_private(client_factory: ClientFactory) -> None:
    """A response that sets the cookie says ``Cache-Control: private``; a plain read does not add it."""
    async with client_factory(make_app()) as client:
        written = await client.post("/write", json={"a": 1})
        read = await client.get("/read")
        cleared = await client.post("/clear")
    assert written.headers["cache-control"] == "private"
    assert cleared.headers["cache-control"] == "private"
    assert "cache-control" not in read.headers


@pytest.mark.case("F9")
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("public, max-age=60", "max-age=60, private", id="public-removed"),
        pytest.param("s-maxage=600, max-age=60", "max-age=60, private", id="s-maxage-removed"),
        pytest.param("PUBLIC", "private", id="case-insensitive"),
        pytest.param("no-store", "no-store", id="no-store-kept"),
        pytest.param("public, no-store", "no-store", id="public-removed-beside-no-store"),
        pytest.param("private, s-maxage=60", "private", id="s-maxage-removed-beside-private"),
        pytest.param("private, max-age=5", "private, max-age=5", id="private-kept"),
        pytest.param("no-cache", "no-cache, private", id="no-cache-extended"),
    ],
)
async def test_existing_cache_control_made_private(client_factory: ClientFactory, given: str, expected: str) -> None:
    """The app's Cache-Control loses shared-cache directives and gains ``private`` when a cookie is set."""
    async with client_factory(make_app()) as client:
        response = await client.get("/cached", params={"cc": given})
    assert "set-cookie" in response.headers
    assert response.headers.get_list("cache-control") == [expected]


@pytest.mark.case("F9")
async def test_vary_merged_with_the_apps_own(client_factory: ClientFactory) -> None:
    """An existing ``Vary`` keeps its values and gains Cookie once."""

    async def endpoint(request: Request) -> Response:
        _ = request.session.get("a")
        return PlainTextResponse("ok", headers={"vary": request.query_params["vary"]})

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    async with client_factory(app) as client:
        accept = await client.get("/", params={"vary": "Accept-Encoding"})
        already = await client.get("/", params={"vary": "accept, cookie"})
    assert accept.headers["vary"] == "Accept-Encoding, Cookie"
    assert already.headers["vary"] == "accept, cookie"


# -- F13: plain http ----------------------------------------------------------------------------------------


@pytest.mark.case("F13")
async def test_https_only_false_works_over_plain_http(client_factory: ClientFactory) -> None:
    """With ``https_only=False`` the cookie has no Secure flag and round-trips over http://."""
    async with client_factory(make_app(https_only=False), base_url="http://testserver") as client:
        response = await client.post("/write", json={"a": 1})
        assert "secure" not in parse_set_cookie(response.headers["set-cookie"])[2]
        assert (await client.get("/read")).text == "{'a': 1}"


@pytest.mark.case("F13")
async def test_default_secure_cookie_not_sent_back_over_plain_http(client_factory: ClientFactory) -> None:
    """With the default ``https_only=True`` a client on http:// never returns the cookie."""
    async with client_factory(make_app(), base_url="http://testserver") as client:
        await client.post("/write", json={"a": 1})
        assert (await client.get("/read")).text == "{}"


# -- find_cookies: the raw Cookie header ---------------------------------------------------------------------


def test_find_cookies_in_order_and_exact_name() -> None:
    """Every ``name=`` pair is found in order, a name merely ending with ours is ignored, and nothing is unquoted."""
    name_eq = b"session="
    assert find_cookies([(b"cookie", b"xsession=1; session=2; session=3")], name_eq) == ["2", "3"]
    assert find_cookies([(b"cookie", b"a=1"), (b"cookie", b'session="q"')], name_eq) == ['"q"']
    assert find_cookies([(b"cookie", b"sessionx=1")], name_eq) == []
    assert find_cookies([(b"x-cookie", b"session=1")], name_eq) == []


@pytest.mark.case("A20")
def test_find_cookies_stops_at_the_bound() -> None:
    """At most MAX_SAME_NAME values of one name are returned, however many the header holds."""
    header = b"; ".join(b"session=%d" % i for i in range(50))
    assert find_cookies([(b"cookie", header)], b"session=") == [str(i) for i in range(MAX_SAME_NAME)]


@pytest.mark.case("A19")
def test_nameless_cookie_spoofing_our_name_is_not_ours() -> None:
    """A nameless cookie carrying ``__Host-session=...`` (Cookie Crumbles) is not read as the __Host- cookie."""
    name_eq = b"__Host-session="
    assert find_cookies([(b"cookie", b"=__Host-session=forged")], name_eq) == []
    assert find_cookies([(b"cookie", b"a=b, __Host-session=forged")], name_eq) == []


def test_cookie_value_in_a_crafted_header_is_found(client_factory: ClientFactory) -> None:
    """A value sealed by ``testing.seal`` is located among other cookies by the parser."""
    value = seal(KEY_A, {"a": 1})
    header = f"other=1; session={value}; last=2".encode()
    assert find_cookies([(b"cookie", header)], b"session=") == [value]
