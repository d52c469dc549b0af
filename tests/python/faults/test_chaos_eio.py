"""The replication checker (replication/checker.py) with an EIO nemesis
(issue 19): 3 brokers each started under the fjordfault shim, an idempotent
acks=all producer on an RF 3 / min.insync.replicas 2 topic, and every 5 s a
random broker is killed -9, paused, restarted or, every other round, has
every disk write and sync fail with EIO until the next round (its store
latches, it withdraws from leadership, reopens its store and comes back).
Nothing acknowledged may be lost, changed, duplicated, reordered or divergent.
Longer: scripts/chaos.sh --eio."""
import os

import pytest

pytest.importorskip("confluent_kafka")

from fjordtest.binaries import fjord_cli, require  # noqa: E402
from fjordtest.faults import shim_path  # noqa: E402
from replication import checker  # noqa: E402
from replication.replharness import start_cluster  # noqa: E402


def test_checker_with_eio_nemesis():
    require(fjord_cli())
    shim_path()
    secs = float(os.environ.get("FJORD_CHAOS_SECONDS", "40"))
    c = start_cluster(3, {"min.insync.replicas": 2}, eio=True)
    try:
        r = checker.run(c, duration=secs, interval=5.0, partitions=3, rate=300, seed=19,
                        verify_kills=1, eio=True)
        # The nemesis did reach a store: an EIO victim latched and withdrew
        # (one that was still starting up when armed may have written nothing).
        logs = [c.broker(v).log_tail(1 << 22) for v in {b for _, a, b, _ in r["nemesis"] if a == "eio"}]
        assert any("log store write failed" in log and "withdrawing from leadership" in log
                   for log in logs), [log[-2000:] for log in logs]
    finally:
        c.close()
    print("checker with eio: %s" % {k: v for k, v in r.items() if k != "nemesis"})
    print("nemesis: %s" % r["nemesis"])
    assert r["acknowledged"] > 0
    assert any(a == "eio" for _, a, _, _ in r["nemesis"]), r["nemesis"]
    for k in ("lost", "changed", "duplicates", "reordered", "divergent"):
        assert r[k] == 0, (k, r)
