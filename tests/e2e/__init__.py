"""Real containers: the rendered chart run with podman (cluster.py) against the machine's own
PostgreSQL and Redis and a ClickHouse front (backing.py). Not part of `make test`: see
tests/e2e/README.md."""
