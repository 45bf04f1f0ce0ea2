"""Typed sessions: the view's types, the check when a cookie opens, migration, write-back and FastAPI."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NotRequired, cast

import pydantic
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from typing_extensions import TypedDict

from sealed_sessions import ConfigurationError, Session, SessionDataError, SessionMiddleware
from sealed_sessions.testing import seal, unseal
from sealed_sessions.typed import TypedSession
from tests.helpers import KEY_A, KEY_B, Result, call, cookie, https_client, rejection_reasons, rejections
from tests.typing_checks import typed_session_usage as usage

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"_auth_uid": 7, "_auth_tok": "t" * 43, "_flashes": [["info", "hi"]], "theme": "dark"}
"""Keys other layers and the application keep in the session: a typed view never touches them."""


class Cart(BaseModel):
    items: list[str] = []
    currency: str = "EUR"


@dataclasses.dataclass
class CartData:
    items: list[str] = dataclasses.field(default_factory=list)
    currency: str = "EUR"


@pydantic.dataclasses.dataclass
class CartPydanticData:
    items: list[str] = dataclasses.field(default_factory=list)
    currency: str = "EUR"


class CartDict(TypedDict, total=False):
    items: list[str]
    currency: str


class Counter(BaseModel):
    n: int = 0
    ratio: float = 0.0
    seen: datetime.datetime | None = None
    pair: tuple[int, int] = (0, 0)
    extra: Any = None


def items_of(view: Any) -> list[str]:
    """The view's ``items`` list, whatever the model kind."""
    return cast(list[str], view.setdefault("items", []) if isinstance(view, dict) else view.items)


def set_currency(view: Any, value: object) -> None:
    """Assign ``currency`` the way the model kind does it."""
    if isinstance(view, dict):
        view["currency"] = value
    else:
        view.currency = value


KINDS = pytest.mark.parametrize("model", [Cart, CartData, CartPydanticData, CartDict], ids=lambda m: m.__name__)

Action = Callable[[Any], object]


def typed_app(typed: TypedSession[Any], action: Action, *, schema: bool = True, **options: Any) -> Starlette:
    """An app whose route applies ``action`` to the typed view and returns the whole session as JSON.

    A ``ValidationError`` from the action becomes a 422 (the application's choice, not the library's).
    """

    async def endpoint(request: Request) -> Response:
        try:
            action(typed(request))
        except ValidationError:
            return PlainTextResponse("invalid", status_code=422)
        return JSONResponse(dict(request.session))

    options.setdefault("secret_key", KEY_A)
    if schema:
        options["schema"] = typed
    return Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, **options)])


def sealed_data(result: Result) -> dict[str, Any]:
    """The data in the one Set-Cookie of ``result``."""
    return unseal(KEY_A, result.cookie_value()).data


def nothing(view: Any) -> None:
    """Read the view and change nothing."""


# -- reading ---------------------------------------------------------------------------------------


@KINDS
async def test_view_reads_the_cookie_as_the_model(model: type[Any]) -> None:
    """The view holds the cookie's declared keys as the model's type, and reading it sends no Set-Cookie."""
    seen: list[Any] = []
    app = typed_app(TypedSession(model), seen.append)
    result = await call(app, cookie(seal(KEY_A, {"items": ["pear"], "currency": "USD", **AUTH})))
    [view] = seen
    assert isinstance(view, dict if model is CartDict else model)
    assert items_of(view) == ["pear"]
    assert result.json() == {"items": ["pear"], "currency": "USD", **AUTH}
    assert result.set_cookie == []
    assert result.header(b"vary") == [b"Cookie"]


async def test_values_round_trip_in_their_json_form() -> None:
    """A datetime, a tuple and a float are sealed as JSON and read back as themselves on the next request."""
    moment = datetime.datetime(2027, 1, 15, 8, 0, tzinfo=datetime.UTC)

    def write(view: Counter) -> None:
        view.seen, view.pair, view.ratio = moment, (1, 2), 0.5

    counter = TypedSession(Counter)
    written = sealed_data(await call(typed_app(counter, write)))
    assert written == {"seen": "2027-01-15T08:00:00Z", "pair": [1, 2], "ratio": 0.5}
    seen: list[Counter] = []
    await call(typed_app(counter, seen.append), cookie(seal(KEY_A, written)))
    assert (seen[0].seen, seen[0].pair, seen[0].ratio) == (moment, (1, 2), 0.5)


def test_a_model_that_validates_assignments_is_used_as_it_is() -> None:
    """A model with validate_assignment=True gives views of its own class, so they compare equal to its instances."""

    class Strict(BaseModel):
        model_config = ConfigDict(validate_assignment=True)
        n: int = 0

    view = TypedSession(Strict)(Session({"n": 1}))
    assert type(view) is Strict
    assert view == Strict(n=1)
    generated = TypedSession(Cart)(Session())
    assert type(generated) is not Cart and isinstance(generated, Cart)
    assert generated.model_dump() == Cart().model_dump()


async def test_view_is_built_once_per_request() -> None:
    """Every call in a request returns one view, given the request or its session; the next request gets a new one."""
    cart_session = TypedSession(Cart)
    views: list[Cart] = []

    async def endpoint(request: Request) -> Response:
        view = cart_session(request)
        assert cart_session(request) is view
        assert cart_session(Session.of(request)) is view
        views.append(view)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    await call(app)
    await call(app)
    assert views[0] is not views[1]


# -- writing ---------------------------------------------------------------------------------------


@KINDS
async def test_nested_change_is_saved_and_other_keys_kept(model: type[Any]) -> None:
    """``view.items.append(x)`` is saved when the response starts; keys the model does not declare stay as they are."""
    app = typed_app(TypedSession(model), lambda view: items_of(view).append("apple"))
    result = await call(app, cookie(seal(KEY_A, {"items": ["pear"], "currency": "USD", **AUTH})))
    assert sealed_data(result) == {"items": ["pear", "apple"], "currency": "USD", **AUTH}


async def test_new_session_stores_only_the_fields_the_view_changed() -> None:
    """Without a cookie, changing one field stores that field alone: the defaults are not written."""
    result = await call(typed_app(TypedSession(Cart), lambda view: view.items.append("apple")))
    assert sealed_data(result) == {"items": ["apple"]}


@KINDS
async def test_unchanged_view_sends_no_cookie(model: type[Any]) -> None:
    """A view read and left as it was causes no Set-Cookie, with or without a cookie."""
    app = typed_app(TypedSession(model), nothing)
    assert (await call(app)).set_cookie == []
    assert (await call(app, cookie(seal(KEY_A, {"items": ["pear"], **AUTH})))).set_cookie == []


@KINDS
async def test_invalid_assignment_raises_validation_error(model: type[Any]) -> None:
    """Assigning a value of the wrong type raises pydantic's ValidationError at once; nothing is saved."""
    app = typed_app(TypedSession(model), lambda view: set_currency(view, 3))
    result = await call(app, cookie(seal(KEY_A, {"items": ["pear"], **AUTH})))
    assert result.status == 422
    assert result.set_cookie == []


def test_assignments_are_validated_in_lax_python_mode() -> None:
    """An assignment is validated as the model's constructor would: "3" becomes 3 in the view and in the cookie."""
    session = Session()
    view = TypedSession(Counter)(session)
    view.n = "3"  # type: ignore[assignment]
    assert view.n == 3
    session.run_finishers()
    assert dict(session) == {"n": 3}


def test_typed_dict_view_validates_item_assignment() -> None:
    """A TypedDict view validates ``view[key] = value`` at once and refuses keys the TypedDict does not declare."""
    session = Session({"theme": "dark"})
    view = TypedSession(CartDict)(session)
    with pytest.raises(ValidationError):
        view["currency"] = 3  # type: ignore[typeddict-item]
    with pytest.raises(KeyError, match="theme"):
        view["theme"] = "light"  # type: ignore[typeddict-unknown-key]
    view["currency"] = "USD"
    session.run_finishers()
    assert dict(session) == {"theme": "dark", "currency": "USD"}


def test_changes_are_written_only_by_the_finisher() -> None:
    """The view writes back when the middleware runs the finishers (HTTP only): a WebSocket's view is never saved."""
    session = Session({"items": ["pear"]})
    TypedSession(Cart)(session).items.append("apple")
    assert session["items"] == ["pear"]
    assert session.modified is False
    session.run_finishers()
    assert session["items"] == ["pear", "apple"]
    assert session.modified is True


@pytest.mark.case("U6")
async def test_view_that_no_longer_fits_is_refused_at_response_start() -> None:
    """A nested change breaking the schema raises SessionDataError naming the field, not the value; no cookie."""
    app = typed_app(TypedSession(Cart), lambda view: cast(list[Any], view.items).append(12345))
    with pytest.raises(SessionDataError, match=r"session\['items'\]") as error:
        await call(app, cookie(seal(KEY_A, {"items": ["pear"]})))
    assert "12345" not in str(error.value)


@pytest.mark.case("U6")
async def test_value_that_is_not_json_raises_session_data_error_naming_the_field() -> None:
    """A value pydantic cannot turn into JSON raises SessionDataError naming its field when the response starts."""

    def write(view: Counter) -> None:
        view.extra = object()

    with pytest.raises(SessionDataError, match=r"session\['extra'\] cannot be stored as JSON"):
        await call(typed_app(TypedSession(Counter), write))


@pytest.mark.case("U6")
def test_typed_dict_key_deleted_or_updated_wrongly_is_refused_at_the_end() -> None:
    """``update()`` with a wrong type passes at once but is refused when the response starts."""
    session = Session()
    view = TypedSession(CartDict)(session)
    view.update(currency=3)  # type: ignore[call-arg]
    with pytest.raises(SessionDataError, match="currency"):
        session.run_finishers()
    assert dict(session) == {}


@pytest.mark.case("U9")
async def test_logout_after_reading_the_view_deletes_the_cookie() -> None:
    """Emptying the session after reading the view sends a deletion cookie: the view's fields are not written back."""
    cart_session = TypedSession(Cart)

    async def logout(request: Request) -> Response:
        assert cart_session(request).items == ["pear"]
        request.session.clear()
        return PlainTextResponse("bye")

    app = Starlette(routes=[Route("/", logout)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    result = await call(app, cookie(seal(KEY_A, {"items": ["pear"], **AUTH})))
    assert result.cookie_value() == ""


@pytest.mark.case("U9")
async def test_a_view_changed_before_logout_does_not_survive_it() -> None:
    """A view changed and then emptied by logout writes nothing back: the cookie is deleted, the cart gone."""
    cart_session = TypedSession(Cart)

    async def logout(request: Request) -> Response:
        cart_session(request).items.append("apple")
        request.session.clear()
        return PlainTextResponse("bye")

    app = Starlette(routes=[Route("/", logout)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    result = await call(app, cookie(seal(KEY_A, {"items": ["pear"], **AUTH})))
    assert result.cookie_value() == ""


@pytest.mark.case("U10")
async def test_view_taken_before_a_reset_is_detached() -> None:
    """After ``session.reset()`` (login) a call gives a fresh view; the earlier one is never saved, planted data too."""
    cart_session = TypedSession(Cart)

    async def login(request: Request) -> Response:
        before = cart_session(request)
        before.items.append("changed before login")
        Session.of(request).reset(keep=["theme"])
        after = cart_session(request)
        assert after is not before and after.items == []
        after.currency = "USD"
        before.items.append("changed after login")
        return PlainTextResponse("welcome")

    app = Starlette(routes=[Route("/", login)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    result = await call(app, cookie(seal(KEY_A, {"items": ["planted"], **AUTH})))
    assert sealed_data(result) == {"theme": "dark", "currency": "USD"}


# -- the check when a cookie opens ---------------------------------------------------------------


@pytest.mark.case("U1")
async def test_misfit_cookie_becomes_an_empty_session_logged_as_schema(caplog: pytest.LogCaptureFixture) -> None:
    """A cookie whose declared keys no longer fit is an empty session (login too) and a `schema` rejection; no 500.

    No deletion cookie is sent: like any refused cookie it stays in the browser, refused again on
    each request, until the application writes a new session over it.
    """
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    app = typed_app(TypedSession(Cart), nothing)
    stale = cookie(seal(KEY_A, {"items": "pear", **AUTH}))
    for _ in range(2):
        result = await call(app, stale)
        assert result.status == 200
        assert result.json() == {}
        assert result.set_cookie == []
    assert rejection_reasons(caplog) == ["schema", "schema"]
    assert "pear" not in caplog.text


@pytest.mark.case("U2")
@pytest.mark.parametrize(
    "data",
    [{"n": "3"}, {"n": 3.0}, {"n": True}, {"ratio": "0.5"}, {"seen": 1_800_000_000}, {"pair": [1, 2, 3]}],
    ids=["str-for-int", "float-for-int", "bool-for-int", "str-for-float", "int-for-datetime", "long-tuple"],
)
def test_wrong_json_type_is_a_misfit_not_coerced(data: dict[str, Any]) -> None:
    """Strict mode on the JSON: a value that is not already the JSON of its declared type does not fit."""
    assert TypedSession(Counter).check({**data, **AUTH}) is None


def test_json_forms_of_the_declared_types_fit() -> None:
    """What the view writes fits: an ISO string for a datetime, an array for a tuple, an int for a float."""
    data = {"n": 3, "ratio": 1, "seen": "2027-01-15T08:00:00Z", "pair": [1, 2], **AUTH}
    assert TypedSession(Counter).check(data) is data


@pytest.mark.case("U8")
@pytest.mark.parametrize("junk", [None, "x" * 300, [1, {"a": []}], {"nested": True}], ids=repr)
def test_undeclared_keys_are_never_validated(junk: object) -> None:
    """Keys the model does not declare are not validated, even under a model that forbids extra fields."""

    class Closed(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n: int = 0

    data = {"n": 1, "_auth_uid": junk, "_flashes": junk, "anything": junk}
    assert TypedSession(Closed).check(data) is data


def rename_basket(data: dict[str, Any]) -> dict[str, Any] | None:
    """The migration from the previous release, which kept the cart under ``basket``: other data passes as it is."""
    if "basket" not in data:
        return data
    migrated = {k: v for k, v in data.items() if k != "basket"}
    migrated["items"] = data["basket"]
    return migrated


@pytest.mark.case("U3")
async def test_migrate_hook_renames_a_key_and_the_session_is_resealed(caplog: pytest.LogCaptureFixture) -> None:
    """A cookie in the old shape is migrated when it opens and resealed on that very response, other keys kept."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    seen: list[Cart] = []
    app = typed_app(TypedSession(Cart, migrate=rename_basket), seen.append)
    result = await call(app, cookie(seal(KEY_A, {"basket": ["pear"], **AUTH})))
    assert seen[0].items == ["pear"]
    assert sealed_data(result) == {**AUTH, "items": ["pear"]}
    assert rejections(caplog) == []


async def test_migrate_hook_that_returns_the_data_as_it_is_changes_nothing() -> None:
    """The hook sees every cookie; returning the same dict uses it unchanged and sends no Set-Cookie."""
    data = {"items": ["pear"], **AUTH}
    assert TypedSession(Cart, migrate=rename_basket).check(data) is data
    app = typed_app(TypedSession(Cart, migrate=rename_basket), nothing)
    assert (await call(app, cookie(seal(KEY_A, data)))).set_cookie == []


@pytest.mark.case("U4")
@pytest.mark.parametrize(
    "migrate",
    [
        lambda data: None,
        lambda data: data,
        lambda data: {"items": "still a string"},
        lambda data: ["not", "a", "dict"],
        lambda data: 1 / 0,
    ],
    ids=["refuses", "leaves-the-misfit", "misfit-result", "not-a-dict", "raises"],
)
async def test_failed_migration_refuses_the_cookie(migrate: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A migration that refuses, leaves or makes a misfit, or raises, gives an empty session, never a 500."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    app = typed_app(TypedSession(Cart, migrate=migrate), nothing)
    result = await call(app, cookie(seal(KEY_A, {"items": "pear", **AUTH})))
    assert (result.status, result.json(), result.set_cookie) == (200, {}, [])
    assert rejection_reasons(caplog)[-1] == "schema"
    assert "pear" not in caplog.text


def test_migrate_that_raises_is_logged_by_its_class_only(caplog: pytest.LogCaptureFixture) -> None:
    """The hook's exception is logged as an error naming its class, never its message (it could quote session data)."""

    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(f"cannot read {data['basket']}")

    assert TypedSession(Cart, migrate=broken).check({"basket": "secret-pear"}) is None
    [record] = rejections(caplog)
    assert record.levelno == logging.ERROR
    assert "ValueError" in record.getMessage()
    assert "secret-pear" not in caplog.text


@pytest.mark.case("U7")
async def test_schema_sees_only_authentic_data() -> None:
    """The check runs after the MAC: a cookie sealed under another key or tampered with never reaches it."""
    checked: list[dict[str, Any]] = []

    class Spy(TypedSession[Cart]):
        def check(self, data: dict[str, Any]) -> dict[str, Any] | None:
            checked.append(data)
            return super().check(data)

    app = typed_app(Spy(Cart), nothing)
    genuine = seal(KEY_A, {"items": ["pear"]})
    await call(app, cookie(seal(KEY_B, {"items": ["pear"]})))
    await call(app, cookie(genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")))
    assert checked == []
    await call(app, cookie(genuine))
    assert checked == [{"items": ["pear"]}]


# -- without the middleware's schema= ------------------------------------------------------------


@pytest.mark.case("U5")
async def test_misfit_read_without_schema_drops_the_declared_keys_only(caplog: pytest.LogCaptureFixture) -> None:
    """Without ``schema=``, a misfit is found at the first ``typed(request)``: the declared keys go, the others stay."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    seen: list[Cart] = []
    app = typed_app(TypedSession(Cart), seen.append, schema=False)
    result = await call(app, cookie(seal(KEY_A, {"items": "pear", "currency": "USD", **AUTH})))
    assert seen[0].model_dump() == Cart().model_dump()
    assert sealed_data(result) == AUTH
    assert rejection_reasons(caplog) == ["schema"]


async def test_migration_without_schema_runs_at_first_read() -> None:
    """Without ``schema=``, the migrate hook runs at the first ``typed(request)`` and the result is saved."""
    app = typed_app(TypedSession(Cart, migrate=rename_basket), nothing, schema=False)
    result = await call(app, cookie(seal(KEY_A, {"basket": ["pear"], **AUTH})))
    assert sealed_data(result) == {**AUTH, "items": ["pear"]}


def test_a_session_written_by_hand_in_the_wrong_type_reads_as_defaults() -> None:
    """Data stored by hand in the wrong type never makes ``typed(...)`` raise: the view starts from the defaults."""
    session = Session()
    session["items"] = "pear"
    assert TypedSession(Cart)(session).items == []
    assert "items" not in session


# -- construction ----------------------------------------------------------------------------------


class Required(BaseModel):
    user_id: int


@dataclasses.dataclass
class Underscored:
    _secret: str = ""


class Complete(TypedDict):
    items: list[str]


class Partly(TypedDict, total=False):
    items: list[str]
    currency: NotRequired[str]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        pytest.param(int, "BaseModel subclass with fields, a dataclass or a TypedDict", id="int"),
        pytest.param(dict, "BaseModel subclass with fields", id="dict"),
        pytest.param(BaseModel, "BaseModel subclass with fields", id="BaseModel"),
        pytest.param(RootModel[list[int]], "BaseModel subclass with fields", id="RootModel"),
        pytest.param(Cart(), "needs a class", id="instance"),
        pytest.param(Required, "user_id must have a default", id="required"),
        pytest.param(Complete, "items must have a default", id="total-typeddict"),
        pytest.param(
            Underscored, "_secret: session keys starting with '_'", id="underscore", marks=pytest.mark.case("U8")
        ),
        pytest.param(typing.TypedDict("Old", {"n": int}), "typing_extensions.TypedDict", id="typing"),  # type: ignore[operator]
    ],
)
def test_unusable_models_are_configuration_errors(model: Any, message: str) -> None:
    """A model the typed view cannot use is refused at construction with a message saying what to change."""
    with pytest.raises(ConfigurationError, match=message):
        TypedSession(model)


def test_typed_dict_with_optional_keys_is_accepted() -> None:
    """A TypedDict whose keys are all optional (total=False or NotRequired) is usable; its keys are in order."""
    assert TypedSession(Partly).keys == ("items", "currency")


def test_without_the_middleware_the_view_names_what_is_missing() -> None:
    """Asking for a view where no sealed_sessions middleware runs is a ConfigurationError naming the scope key."""
    request = Request({"type": "http", "headers": [], "session": {}})
    with pytest.raises(ConfigurationError, match="scope_key='session'"):
        TypedSession(Cart)(request)


# -- FastAPI -----------------------------------------------------------------------------------------


fastapi_cart = TypedSession(Cart)
"""At module level: FastAPI resolves the string annotations below in this module's globals."""


async def test_fastapi_dependency_gives_the_view() -> None:
    """``Depends(typed.dependency)`` and ``Depends(typed)`` both give the request's one view, saved."""
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=KEY_A, schema=fastapi_cart)

    @app.post("/add")
    async def add(
        item: str,
        cart: Annotated[Cart, Depends(fastapi_cart.dependency)],
        same: Annotated[Cart, Depends(fastapi_cart)],
    ) -> list[str]:
        assert cart is same
        cart.items.append(item)
        return cart.items

    async with https_client(app) as client:
        await client.post("/add", params={"item": "pear"})
        response = await client.post("/add", params={"item": "apple"})
    assert response.json() == ["pear", "apple"]
    assert unseal(KEY_A, response.cookies["__Host-session"]).data == {"items": ["pear", "apple"]}


async def test_usage_example_runs() -> None:
    """The type-checked usage file works as an application: writes saved, wrong types refused."""
    async with https_client(usage.app) as client:
        await client.post("/cart", params={"item": "pear"})
        assert (await client.post("/cart", params={"item": "apple"})).json() == ["pear", "apple"]
        theme = await client.post("/theme", params={"theme": "dark"})
        assert theme.json() == {"theme": "dark", "pages": ["/theme"]}
        assert (await client.post("/wrong")).text == '"refused"'
        data = unseal(usage.SECRET_KEY, client.cookies["__Host-session"]).data
    assert data == {"items": ["pear", "apple"], "theme": "dark", "pages": ["/theme"]}


def test_usage_example_type_checks() -> None:
    """mypy --strict accepts the usage file, whose deliberate wrong assignment must stay a type error."""
    path = Path(usage.__file__).relative_to(ROOT)
    result = subprocess.run(  # mypy in its own process: its warnings must not meet pytest's filters
        [sys.executable, "-m", "mypy", "--strict", "--warn-unused-ignores", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
