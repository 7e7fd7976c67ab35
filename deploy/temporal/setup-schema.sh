#!/bin/sh
# One-shot job (temporalio/admin-tools): create Temporal's two PostgreSQL databases and bring
# their schemas to this server version with Temporal's own temporal-sql-tool, as Temporal's
# compose samples do. Safe on every `docker compose up`: a database that already exists is
# kept (no setup-schema on it), and update-schema applies only the versions it lacks.
set -eu
: "${POSTGRES_SEEDS:?set POSTGRES_SEEDS}" "${POSTGRES_USER:?set POSTGRES_USER}" "${SQL_PASSWORD:?set SQL_PASSWORD}"
port=${DB_PORT:-5432}
schema=/etc/temporal/schema/postgresql/v12
sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$port" "$@"; }

until nc -z -w 5 "$POSTGRES_SEEDS" "$port"; do echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$port"; sleep 2; done

for db in temporal temporal_visibility; do
  if sql --db "$db" create; then
    sql --db "$db" setup-schema -v 0.0
  else
    echo "database $db exists: keeping it"
  fi
done
sql --db temporal update-schema -d "$schema/temporal/versioned"
sql --db temporal_visibility update-schema -d "$schema/visibility/versioned"
echo "Temporal schema is current"
