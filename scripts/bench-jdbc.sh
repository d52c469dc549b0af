#!/usr/bin/env bash
# The JDBC connectors' benchmark (issue 13): JDBC source rows/s out of MariaDB and JDBC
# sink upserts/s into PostgreSQL, each beside the database's own bulk path on the same
# rows in the same run (MariaDB's client read; PostgreSQL's COPY and batched
# INSERT .. ON CONFLICT). Real MariaDB and PostgreSQL processes on free ports, one
# fjord-coord + fjord-broker, one fjord-connect standalone worker: see
# bench/connect/bench_jdbc.py for what each line measures.
#   scripts/bench-jdbc.sh           N=200,000 rows
#   scripts/bench-jdbc.sh --quick   N=20,000 rows
# env: FJORD_BIN (the binaries), N (rows)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/connect/bench_jdbc.py "$@"
