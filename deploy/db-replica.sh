#!/bin/sh
# db-replica's entrypoint: a hot standby streaming from the compose primary (db).
# On first start (an empty data directory), copy the primary with pg_basebackup -R, which also writes
# standby.signal and primary_conninfo; then run postgres, which replays WAL and serves reads only.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    attempts=0
    until pg_basebackup --host=db --port=5432 --username=replicator --pgdata="$PGDATA" \
        --write-recovery-conf --wal-method=stream --checkpoint=fast --no-password; do
        attempts=$((attempts + 1))
        if [ "$attempts" -ge 30 ]; then
            echo "db-replica: pg_basebackup from db failed 30 times; giving up" >&2
            exit 1
        fi
        rm -rf "${PGDATA:?}"/* 2>/dev/null || true
        sleep 2
    done
fi
chmod 0700 "$PGDATA"
exec postgres -D "$PGDATA" -c hot_standby=on
