"""The ensemble fault-injection checker (ens_nemesis.py) for 30 s: kill -9,
SIGSTOP/SIGCONT and restarts of members (the leader included) every 4 s under
creates, CASes and reads from 10 kazoo clients; nothing acknowledged lost, no
stale read within a session, every register's history linearizable, no
kazoo connection thread dying (a reply on the wrong connection). Longer
runs: scripts/ensemble-chaos.sh (10 minutes)."""
import os

from ensemble import ens_nemesis
from fjordtest.ensemble import require_ensemble


def test_nemesis_loses_nothing_and_every_register_is_linearizable():
    require_ensemble()
    secs = float(os.environ.get("FJORD_ENS_CHAOS_SECONDS", "30"))
    r = ens_nemesis.run(members=3, duration=secs, interval=4.0, extra={"tickTime": "2000"})
    nem = r.pop("nemesis")
    print("ensemble checker: %s" % r)
    print("nemesis: %s" % nem)
    assert len([n for n in nem if n[1] != "heal"]) >= secs / 4 - 2
    assert r["acknowledged_creates"] > 1000 and r["ops"]["cas_ok"] > 500, r["ops"]
    assert r["lost"] == 0, r["lost_per_member"]
    assert r["stale_reads"] == 0, r["stale_examples"]
    assert r["all_linearizable"], r["registers"]
    assert r["members_agree"], r["zxids"]
    assert r["client_thread_errors"] == 0, r["client_thread_error_examples"]
