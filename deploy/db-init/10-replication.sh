#!/bin/sh
# Runs once, when the compose primary's data directory is first initialised (docker-entrypoint-initdb.d):
# a login role that may stream WAL, and a pg_hba.conf line that lets it (an "all" line never matches
# replication connections). db-replica copies the primary with it (deploy/db-replica.sh).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '$REPLICATION_PASSWORD'"
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
