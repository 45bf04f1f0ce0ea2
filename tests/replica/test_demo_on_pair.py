"""Three demo processes on the real pair: DATABASE_URL on the primary, DEMO_READ_DATABASE_URL on the replica.

The compose topology with ``db-replica`` (docker-compose.yml), on loopback: a session made on one
process is served by the others while the replica lags (a miss is confirmed on the primary), and
"log out all other devices" on a third is refused everywhere once the replica has replayed it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.demo.harness import CLUSTER_SIZE, DemoServer, demo_cluster, fresh_postgres_database
from tests.demo.test_several_servers import PASSWORD, devices, unique_email
from tests.replica.pgpair import PgPair


@pytest.fixture
def servers_on_pair(pg_pair: PgPair, tmp_path: Path) -> Iterator[list[DemoServer]]:
    """CLUSTER_SIZE demo processes writing to a fresh database on the primary and checking on its replica."""
    with fresh_postgres_database(pg_pair.primary_url) as primary_url:
        database = make_url(primary_url).database
        replica_url = make_url(pg_pair.replica_url).set(database=database).render_as_string(hide_password=False)
        pg_pair.wait_caught_up()  # the new database exists on the replica too
        with demo_cluster(CLUSTER_SIZE, primary_url, tmp_path, read_database_url=replica_url) as servers:
            yield servers
        pg_pair.ensure_streaming()  # so the DROP DATABASE below runs on a running primary


@pytest.mark.case("R1", "R2", "R5")
async def test_demo_processes_on_the_pair_serve_lagging_logins_and_refuse_replayed_revocations(
    pg_pair: PgPair, servers_on_pair: list[DemoServer]
) -> None:
    """Logged in on app1 during paused replay, served by app2 and app3; logout-others on app3 refused once replayed."""
    app1, app2, app3 = servers_on_pair
    email = unique_email()
    async with devices(3) as (laptop, phone, tablet):
        pg_pair.pause_replay()  # every login below reaches the replica only later
        await laptop.sign_up(app1, email)
        for server in (app2, app3):
            response = await laptop.me(server)
            assert response.status_code == 200, response.text  # confirmed on the primary
            assert response.json()["served_by"] == server.name
        login = {"email": email, "password": PASSWORD}
        assert (await phone.call(app2, "POST", "/api/login", login)).status_code == 200
        assert (await tablet.call(app3, "POST", "/api/login", login)).status_code == 200
        assert (await phone.me(app1)).status_code == 200
        pg_pair.resume_replay()
        pg_pair.wait_caught_up()
        before = {"laptop": laptop.cookie, "phone": phone.cookie}

        pg_pair.pause_replay()
        assert (await tablet.call(app3, "POST", "/api/logout-others", {})).status_code == 204
        laptop.cookie = before["laptop"]
        assert (await laptop.me(app1)).status_code == 200  # the documented lag: not replayed yet
        assert (await laptop.call(app2, "GET", "/api/devices")).status_code == 401  # primary_user: at once
        assert laptop.cookie is None
        for server in (app1, app2):  # the tablet's new token, not on the replica yet: confirmed on the primary
            assert (await tablet.me(server)).status_code == 200

        pg_pair.resume_replay()
        pg_pair.wait_caught_up()
        for name, device in (("laptop", laptop), ("phone", phone)):
            for server in (app1, app2, app3):
                device.cookie = before[name]
                response = await device.me(server)
                assert response.status_code == 401, (name, server.name, response.text)
                assert device.cookie is None
        for server in (app1, app2, app3):
            assert (await tablet.me(server)).status_code == 200
