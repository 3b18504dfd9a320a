"""Baseline (b) of bench/run: what a user would write by hand. A confluent-kafka consumer that
decodes each JSON record, COPYs the rows into PostgreSQL with psycopg in batches, commits the
transaction, then commits the Kafka offsets (at least once). Runs until stopped (SIGTERM).

    python_consumer.py BROKERS TOPIC GROUP DSN TABLE BATCH narrow|wide
"""

import json
import signal
import sys

import psycopg
from confluent_kafka import Consumer

brokers, topic, group, dsn, table, batch_size, shape = sys.argv[1:8]
batch_size = int(batch_size)
columns = ["id", "customer", "amount", "status", "created_at", "note"]
if shape == "wide":
    columns += [f"f{i:02d}" for i in range(14)]

running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)

consumer = Consumer({"bootstrap.servers": brokers, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
consumer.subscribe([topic])
conn = psycopg.connect(dsn, application_name="bench_python_baseline")
copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"

while running:
    messages = consumer.consume(num_messages=batch_size, timeout=0.1)
    rows = []
    for m in messages:
        if m.error():
            continue
        record = json.loads(m.value())
        rows.append(tuple(record.get(c) for c in columns))
    if not rows:
        continue
    with conn.cursor() as cur:
        with cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
    conn.commit()
    consumer.commit(asynchronous=True)

consumer.close()
conn.close()
