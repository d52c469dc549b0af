"""JDBC connector benchmark (issue 13): rows/s of the JDBC source out of MariaDB and
upserts/s of the JDBC sink into PostgreSQL, each beside the database's own bulk path
on the same rows in the same run.

One fjord-coord + fjord-broker, a private MariaDB and PostgreSQL (tests/python/
connect/jdbc_dbs.py: fsync off in both, for them and for the anchors alike), one
fjord-connect standalone worker. A MariaDB table of N rows (INT id, VARCHAR, DECIMAL
(10,2) with NULLs, TEXT with NULLs, DATETIME(6)):

- source: from the POST of a JdbcSourceConnector (incrementing, batch.max.rows=10000,
  JsonConverter with schemas) until the topic holds N records;
  anchor: the same rows read by MariaDB's own client (`mariadb --quick -B`, over TCP);
- sink: from the POST of a JdbcSinkConnector on that topic (upsert, pk.mode=
  record_value, auto.create, batch.size=3000) until PostgreSQL counts N rows;
  anchors: the same rows loaded by `COPY` (psql's \\copy of the file the MariaDB
  client wrote), and as multi-row `INSERT .. ON CONFLICT DO UPDATE` statements of
  3,000 rows (the sink's statement, batched by psql with no Kafka in between).

usage: bench_jdbc.py [--quick]   (N=200,000; --quick N=20,000; env N overrides)"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "python"))

from fjordtest.broker import Cluster  # noqa: E402
from connect.conftest import OVERRIDES, Worker, create_topic  # noqa: E402
from connect.jdbc_dbs import PASSWORD, MariaDB, Postgres  # noqa: E402

QUICK = "--quick" in sys.argv
N = int(os.environ.get("N", 20_000 if QUICK else 200_000))
TOPIC = "mariadb_bench"


def rate(n, secs):
    return n / secs if secs > 0 else float("inf")


def wait(pred, timeout, what, every=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(every)
    raise SystemExit("bench-jdbc: %s not within %d s" % (what, timeout))


class Watcher:
    """One psql session kept open to watch the sink's table: a query every 10 ms costs
    a round trip, where a psql process per look (connection, fork, authentication)
    took a third of a core from the run it measured and saw the end up to 0.15 s late."""

    def __init__(self, pg):
        self.p = subprocess.Popen(
            ["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", "postgres", "-At", "-q"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, PGPASSWORD=PASSWORD))

    def one(self, query):
        self.p.stdin.write(query + ";\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def fill_mariadb(db):
    db.sql("CREATE TABLE bench (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, amount DECIMAL(10,2), "
           "note TEXT, updated_at DATETIME(6) NOT NULL)")
    step, stmts = 5000, []
    for start in range(0, N, step):
        rows = ",".join("(%d, 'row-%d', %s, %s, '2026-12-05 10:%02d:%02d.%06d')" % (
            i + 1, i, "NULL" if i % 7 == 0 else "%d.%02d" % (i, i % 100),
            "NULL" if i % 3 == 0 else "'note %d'" % i, (i // 60) % 60, i % 60, i % 1_000_000)
            for i in range(start, min(N, start + step)))
        stmts.append("INSERT INTO bench VALUES %s;" % rows)
    subprocess.run(["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", str(db.port), "-u", "fjord",
                    "-p" + PASSWORD, "-D", "shop"], input="\n".join(stmts).encode(), check=True,
                   capture_output=True, timeout=600)


def cpu_secs(pid):
    """utime + stime of a process, in seconds."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def topic_end(bs):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bs, "group.id": "bench-watch"})
    try:
        return c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=5)[1]
    finally:
        c.close()


def psql(pg, *args, stdin=None):
    t0 = time.time()
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", "postgres",
                    "-v", "ON_ERROR_STOP=1", "-q", *args], check=True, capture_output=True,
                   env=dict(os.environ, PGPASSWORD=PASSWORD), input=stdin, timeout=600)
    return time.time() - t0


def main():
    work = tempfile.mkdtemp(prefix="fjord-bench-jdbc-")
    my, pg = MariaDB().start(), Postgres().start()
    try:
        with Cluster(1, OVERRIDES) as cluster:
            bs = cluster.bootstrap
            fill_mariadb(my)
            create_topic(bs, TOPIC)

            # Anchor 1: MariaDB's own client reads the same rows over TCP.
            tsv = os.path.join(work, "bench.tsv")
            t0 = time.time()
            with open(tsv, "w") as out:
                subprocess.run(["mariadb", "--no-defaults", "--quick", "-h", "127.0.0.1", "-P", str(my.port),
                                "-u", "fjord", "-p" + PASSWORD, "-D", "shop", "-N", "-B", "-e",
                                "SELECT id, name, amount, note, updated_at FROM bench ORDER BY id"],
                               check=True, stdout=out, timeout=600)
            my_read = time.time() - t0

            w = Worker(work, bs, extra={"consumer.max.poll.records": "10000"}).start()
            try:
                src = {"connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
                       "connection.url": my.url, "connection.user": my.user, "connection.password": PASSWORD,
                       "mode": "incrementing", "incrementing.column.name": "id", "table.whitelist": "bench",
                       "topic.prefix": "mariadb_", "poll.interval.ms": "100", "batch.max.rows": "10000",
                       "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                       "value.converter.schemas.enable": "true"}
                t0 = time.time()
                code, info = w.call("POST", "/connectors", {"name": "bench-source", "config": src})
                assert code == 201, info
                t1 = wait(lambda: topic_end(bs) >= N, 600, "the source's %d records" % N)
                src_secs = t1 - t0

                sink = {"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "topics": TOPIC,
                        "connection.url": pg.url, "connection.user": pg.user, "connection.password": PASSWORD,
                        "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id",
                        "auto.create": "true", "table.name.format": "sink_bench", "batch.size": "3000",
                        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                        "value.converter.schemas.enable": "true"}
                watcher = Watcher(pg)
                cpu0 = cpu_secs(w.proc.pid)
                t0 = time.time()
                code, info = w.call("POST", "/connectors", {"name": "bench-sink", "config": sink})
                assert code == 201, info

                # The sink writes the topic in offset order, a transaction a batch, and
                # ids rise with offsets: max(id) = N (an index lookup) says the last
                # batch is in; the count after it checks that every row is.

                def landed():
                    if watcher.one("SELECT to_regclass('sink_bench') IS NOT NULL") != "t":
                        return False
                    return int(watcher.one("SELECT coalesce(max(id), 0) FROM sink_bench") or 0) >= N

                def landed_or_failed():
                    if landed():
                        return True
                    if time.time() - last_status[0] >= 0.5:
                        last_status[0] = time.time()
                        st = w.call("GET", "/connectors/bench-sink/status")[1] or {}
                        if any(t.get("state") == "FAILED" for t in st.get("tasks", [])):
                            raise SystemExit("bench-jdbc: the sink failed: %s" % st)
                    return False
                last_status = [0.0]
                t1 = wait(landed_or_failed, 900, "the sink's %d rows" % N, every=0.01)
                rows = int(watcher.one("SELECT count(*) FROM sink_bench"))
                watcher.close()
                if rows != N:
                    raise SystemExit("bench-jdbc: the sink wrote %d rows, not %d" % (rows, N))
                sink_secs = t1 - t0
                sink_cpu = cpu_secs(w.proc.pid) - cpu0
                rss = int(open("/proc/%d/status" % w.proc.pid).read().split("VmHWM:")[1].split()[0])
            finally:
                w.stop()

            # Anchor 2: PostgreSQL's COPY of the same rows (the file MariaDB's client wrote).
            psql(pg, "-c", "CREATE TABLE copy_bench (id INT PRIMARY KEY, name TEXT NOT NULL, amount DECIMAL(10,2), "
                           "note TEXT, updated_at TIMESTAMP NOT NULL)")
            copy_secs = psql(pg, "-c", "\\copy copy_bench FROM '%s' WITH (FORMAT text, NULL 'NULL')" % tsv)
            # Anchor 3: the sink's own statement, 3,000 rows a statement, sent by psql.
            psql(pg, "-c", "CREATE TABLE upsert_bench (id INT PRIMARY KEY, name TEXT NOT NULL, amount DECIMAL(10,2), "
                           "note TEXT, updated_at TIMESTAMP NOT NULL)")
            lines = [ln.split("\t") for ln in open(tsv).read().splitlines()]

            def lit(v, quote):
                return "NULL" if v == "NULL" else ("'%s'" % v.replace("'", "''") if quote else v)
            stmts = []
            for s in range(0, len(lines), 3000):
                vals = ",".join("(%s,%s,%s,%s,%s)" % (r[0], lit(r[1], True), lit(r[2], False), lit(r[3], True),
                                                       lit(r[4], True)) for r in lines[s:s + 3000])
                stmts.append("INSERT INTO upsert_bench VALUES %s ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "
                             "amount = EXCLUDED.amount, note = EXCLUDED.note, updated_at = EXCLUDED.updated_at;" % vals)
            upsert_secs = psql(pg, "-1", stdin=("\n".join(stmts)).encode())
    finally:
        my.close()
        pg.close()
        subprocess.run(["rm", "-rf", work])

    print("bench-jdbc: %d rows (INT, VARCHAR, DECIMAL(10,2), TEXT, DATETIME(6); NULLs in two columns)" % N)
    print("jdbc source  MariaDB -> topic      %9.0f rows/s  (%.2f s, from the POST)" % (rate(N, src_secs), src_secs))
    print("  anchor     mariadb client read   %9.0f rows/s  (%.2f s)  source/anchor %.0f%%" % (
        rate(N, my_read), my_read, 100 * rate(N, src_secs) / rate(N, my_read)))
    print("jdbc sink    topic -> PostgreSQL   %9.0f upserts/s (%.2f s, from the POST)" % (rate(N, sink_secs), sink_secs))
    print("  anchor     COPY                  %9.0f rows/s  (%.2f s)  sink/COPY %.0f%% (goal >= 50%%)" % (
        rate(N, copy_secs), copy_secs, 100 * rate(N, sink_secs) / rate(N, copy_secs)))
    print("  anchor     INSERT..ON CONFLICT   %9.0f rows/s  (%.2f s, 3,000 rows a statement)  sink/that %.0f%%" % (
        rate(N, upsert_secs), upsert_secs, 100 * rate(N, sink_secs) / rate(N, upsert_secs)))
    print("worker CPU for the sink's rows %.2f s (%.1f us a row); peak RSS %.1f MiB" % (
        sink_cpu, 1e6 * sink_cpu / N, rss / 1024))


if __name__ == "__main__":
    main()
