"""docker-compose.yml, the Dockerfile and deploy/nginx.conf agree with each other and with the demo.

No Docker engine runs here, so this checks consistency by reading the files: the services, the
environment variables the app actually reads, the ports, and the load balancer naming each replica.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
import tomllib
from typing import Any

import pytest

from examples.demo import Settings, create_app
from examples.demo.settings import (
    DATABASE_URL_ENV,
    DOCS_ENV,
    HTTPS_ONLY_ENV,
    INSTANCE_NAME_ENV,
    KEYS_ENV,
    READ_DATABASE_URL_ENV,
)
from tests.helpers import KEY_A

from .harness import CLUSTER_SIZE, REPO_ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (it reads docker-compose.yml)")

APP_READS = {KEYS_ENV, DATABASE_URL_ENV, READ_DATABASE_URL_ENV, HTTPS_ONLY_ENV, INSTANCE_NAME_ENV, DOCS_ENV}
UVICORN_READS = {"FORWARDED_ALLOW_IPS"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: str, dot_env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against the variables of a .env file."""

    def one(match: re.Match[str]) -> str:
        name, operator, word = match.groups()
        if name in dot_env:
            return dot_env[name]
        if operator == "-":
            return str(word)
        raise AssertionError(f"compose would stop: {name} is unset ({word})")

    return _VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def apps(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The demo replicas: the services built from this repository's Dockerfile."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def dockerfile_cmd() -> list[str]:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    commands = [line for line in text.splitlines() if line.startswith("CMD ")]
    assert len(commands) == 1
    parsed = ast.literal_eval(commands[0].removeprefix("CMD ").strip())
    assert isinstance(parsed, list)
    return [str(part) for part in parsed]


def container_port() -> int:
    cmd = dockerfile_cmd()
    return int(cmd[cmd.index("--port") + 1])


def nginx_conf() -> str:
    return (REPO_ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")


def test_compose_has_database_replicas_and_one_load_balancer(
    compose: dict[str, Any], apps: dict[str, dict[str, Any]]
) -> None:
    """PostgreSQL, as many demo replicas as the loopback test starts (at least two), and one published port."""
    services = compose["services"]
    assert services["db"]["image"].startswith("postgres:")
    assert len(apps) >= 2
    assert len(apps) == CLUSTER_SIZE  # the same topology as tests/demo/test_several_servers.py
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert list(published) == ["lb"]
    (port,) = published["lb"]
    assert port.startswith("127.0.0.1:")  # the demo is not exposed beyond this machine by default
    assert int(port.rsplit(":", 1)[1]) == int(re.search(r"listen\s+(\d+);", nginx_conf()).group(1))  # type: ignore[union-attr]
    for app in apps.values():
        assert app["build"] == "."
        assert app["depends_on"]["db"]["condition"] == "service_healthy"
        assert "ports" not in app  # reachable only through the load balancer
        assert [str(p) for p in app["expose"]] == [str(container_port())]
    assert set(services["lb"]["depends_on"]) == set(apps)


def test_replicas_set_exactly_what_the_app_reads_and_share_one_key(apps: dict[str, dict[str, Any]]) -> None:
    """Every replica sets the app's variables, the same required key, the shared database, and its own name."""
    keys, urls, names = set(), set(), []
    for app in apps.values():
        env = app["environment"]
        assert set(env) <= APP_READS | UVICORN_READS, set(env) - APP_READS - UVICORN_READS
        assert {KEYS_ENV, DATABASE_URL_ENV, HTTPS_ONLY_ENV, INSTANCE_NAME_ENV} <= set(env)
        keys.add(env[KEYS_ENV])
        urls.add(env[DATABASE_URL_ENV])
        names.append(env[INSTANCE_NAME_ENV])
    assert len(keys) == 1 and len(urls) == 1
    (key,) = keys
    assert re.fullmatch(r"\$\{" + KEYS_ENV + r":\?[^}]+\}", key), "the key must come from .env and be required"
    assert len(set(names)) == len(names) and set(names) == set(apps)


def test_database_url_points_at_the_compose_database(compose: dict[str, Any], apps: dict[str, dict[str, Any]]) -> None:
    """DATABASE_URL names the db service with its user, password and database, through asyncpg."""
    db_env = compose["services"]["db"]["environment"]
    url = next(iter(apps.values()))["environment"][DATABASE_URL_ENV]
    user, password, name = db_env["POSTGRES_USER"], db_env["POSTGRES_PASSWORD"], db_env["POSTGRES_DB"]
    assert url == f"postgresql+asyncpg://{user}:{password}@db:5432/{name}"


def test_read_replica_streams_from_the_compose_database(
    compose: dict[str, Any], apps: dict[str, dict[str, Any]]
) -> None:
    """db-replica copies db with pg_basebackup -R as a replication role db creates and lets in; the app reads it."""
    services = compose["services"]
    db, replica = services["db"], services["db-replica"]
    assert replica["image"] == db["image"]  # same major version, or the physical copy will not start
    assert replica["depends_on"]["db"]["condition"] == "service_healthy"
    assert "ports" not in replica
    assert replica["user"] == "postgres"  # postgres refuses to run as root, and the entrypoint is ours
    command = " ".join(db["command"])
    assert "wal_level=replica" in command and "max_wal_senders=" in command
    assert "./deploy/db-init:/docker-entrypoint-initdb.d:ro" in db["volumes"]
    init = (REPO_ROOT / "deploy" / "db-init" / "10-replication.sh").read_text(encoding="utf-8")
    role = re.search(r"CREATE ROLE (\w+) WITH REPLICATION LOGIN PASSWORD '\$REPLICATION_PASSWORD'", init)
    assert role is not None
    assert f"host replication {role.group(1)} all scram-sha-256" in init
    script_mount = next(v for v in replica["volumes"] if v.startswith("./deploy/db-replica.sh:"))
    assert replica["entrypoint"] == ["/bin/sh", script_mount.split(":")[1]]
    script = (REPO_ROOT / "deploy" / "db-replica.sh").read_text(encoding="utf-8")
    assert "pg_basebackup --host=db --port=5432" in script
    assert f"--username={role.group(1)}" in script
    assert "--write-recovery-conf" in script  # standby.signal and primary_conninfo: it streams, read-only
    assert script.rstrip().splitlines()[-1].startswith("exec postgres ")
    assert replica["environment"]["PGPASSWORD"] == db["environment"]["REPLICATION_PASSWORD"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in replica["volumes"])
    for app in apps.values():
        read_url = app["environment"][READ_DATABASE_URL_ENV]
        assert read_url == app["environment"][DATABASE_URL_ENV].replace("@db:", "@db-replica:")
        assert app["depends_on"]["db-replica"]["condition"] == "service_healthy"


def replica_settings(compose: dict[str, Any], dot_env: dict[str, str]) -> Settings:
    """The Settings the first replica builds from its compose environment, with ``dot_env`` as .env."""
    env = compose["services"]["app1"]["environment"]
    return Settings.from_env({name: interpolate(value, dot_env) for name, value in env.items()})


def test_compose_environment_builds_settings_and_the_app(compose: dict[str, Any]) -> None:
    """The replicas' environment, with the .env values filled in, gives valid Settings and a working create_app."""
    with pytest.raises(AssertionError, match=KEYS_ENV):
        interpolate(compose["services"]["app1"]["environment"][KEYS_ENV], {})  # without .env, compose refuses
    settings = replica_settings(compose, {KEYS_ENV: KEY_A})  # DEMO_HTTPS_ONLY falls back to its default
    assert settings.keys == (KEY_A,)
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.read_database_url is not None
    assert settings.read_database_url.startswith("postgresql+asyncpg://")
    assert settings.https_only is False
    assert settings.cookie_name == "session"  # plain HTTP on 127.0.0.1:8080
    assert settings.docs is False
    assert settings.instance_name == "app1"
    app = create_app(settings)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert "/healthz" in paths
    assert not paths & {"/docs", "/redoc", "/openapi.json"}


def test_https_in_dot_env_gives_the_host_prefixed_cookie(compose: dict[str, Any]) -> None:
    """With DEMO_HTTPS_ONLY=true in .env (TLS at the load balancer), the replicas' cookie is `__Host-session`."""
    settings = replica_settings(compose, {KEYS_ENV: KEY_A, HTTPS_ONLY_ENV: "true"})
    assert settings.https_only is True
    assert settings.cookie_name == "__Host-session"


def test_load_balancer_sets_the_client_address_itself() -> None:
    """nginx overwrites X-Forwarded-For with the client's address, which the replicas trust for login throttling."""
    conf = nginx_conf()
    directives = re.findall(r"^\s*proxy_set_header\s+X-Forwarded-For\s+(\S+);", conf, re.M | re.I)
    assert directives == ["$remote_addr"]  # never $proxy_add_x_forwarded_for: a client could pick its address


def test_load_balancer_upstream_names_each_replica(apps: dict[str, dict[str, Any]], compose: dict[str, Any]) -> None:
    """nginx's upstream lists every replica at the container port, and the conf is mounted where nginx reads it."""
    conf = nginx_conf()
    upstream = re.search(r"upstream\s+(\w+)\s*\{(.*?)\}", conf, re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server\s+([\w.-]+:\d+)", upstream.group(2), re.M)
    assert sorted(servers) == sorted(f"{name}:{container_port()}" for name in apps)
    assert f"proxy_pass http://{upstream.group(1)};" in conf
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in compose["services"]["lb"]["volumes"]


def test_dockerfile_installs_the_demo_extra_and_serves_the_demo() -> None:
    """The image installs `.[demo]`, runs `python -m examples.demo` on the exposed port, and checks /healthz."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'pip install ".[demo]"' in text
    cmd = dockerfile_cmd()
    assert cmd[:3] == ["python", "-m", "examples.demo"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert f"EXPOSE {container_port()}" in text
    assert f"127.0.0.1:{container_port()}/healthz" in text
    assert re.search(r"^USER (?!root)\w+", text, re.M)  # not root
    for copied in re.findall(r"^COPY (.+) \./?\S*$", text, re.M):
        for source in shlex.split(copied):
            assert (REPO_ROOT / source).exists(), source


def _requirements(extra: str, extras: dict[str, list[str]], seen: set[str]) -> set[str]:
    """Distribution names an extra pulls in, following sealed-sessions[...] self-references."""
    names: set[str] = set()
    for requirement in extras[extra]:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
        if name == "sealed-sessions":
            for inner in re.search(r"\[(.*?)\]", requirement).group(1).split(","):  # type: ignore[union-attr]
                if inner.strip() not in seen:
                    seen.add(inner.strip())
                    names |= _requirements(inner.strip(), extras, seen)
        else:
            names.add(name)
    return names


def test_demo_extra_covers_every_import_of_the_demo() -> None:
    """Every third-party module the demo imports comes from the `demo` extra or the core: one install runs it."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    provided = _requirements("demo", project["optional-dependencies"], {"demo"})
    provided |= {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in project["dependencies"]}
    assert {"fastapi", "sqlalchemy", "aiosqlite", "asyncpg", "uvicorn", "python-multipart"} <= provided
    module_to_distribution = {"multipart": "python-multipart", "pydantic": "fastapi", "nacl": "pynacl"}
    imported: set[str] = set()
    for path in (REPO_ROOT / "examples" / "demo").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"sealed_sessions", "examples", "__future__"}
    assert third_party  # the scan found the demo's imports
    missing = {m for m in third_party if module_to_distribution.get(m, m).lower() not in provided}
    assert not missing, f"the demo imports {missing}, which the demo extra does not install"
