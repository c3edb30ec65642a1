"""Insert BATCHES batches of ROWS rows into TABLE of the ClickHouse HTTP front on PORT.

python -m tests.support.scripts.clickhouse_inserter PORT DATABASE TABLE BATCHES ROWS
"""

import sys
import uuid
from datetime import UTC, datetime

import clickhouse_connect

port, database, table, batches, rows = sys.argv[1:]
client = clickhouse_connect.get_client(
    host="127.0.0.1", port=int(port), username="default", password="", database=database
)
for _ in range(int(batches)):
    data = [[uuid.uuid4(), datetime.now(UTC), "x"] for _ in range(int(rows))]
    client.insert(table, data, column_names=["id", "at", "payload"])
