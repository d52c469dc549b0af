"""The ensemble checker (ensemble/ens_nemesis.py) with the EIO nemesis
(issue 19) for 30 s: besides kill -9, SIGSTOP and restarts, a member or the
leader has its disk writes and syncs fail with EIO until the next round (it
leaves the ensemble, waits for its disk, rejoins). Nothing acknowledged
lost, no stale read, every register linearizable, the members agree.
Longer: scripts/ensemble-chaos.sh --eio."""
import os

from ensemble import ens_nemesis
from fjordtest.ensemble import require_ensemble
from fjordtest.faults import shim_path


def test_ensemble_checker_with_eio_nemesis():
    require_ensemble()
    shim_path()
    secs = float(os.environ.get("FJORD_ENS_CHAOS_SECONDS", "30"))
    r = ens_nemesis.run(members=3, duration=secs, interval=4.0, seed=1919,
                        extra={"tickTime": "2000"}, eio=True)
    nem = r.pop("nemesis")
    print("ensemble checker with eio: %s" % r)
    print("nemesis: %s" % nem)
    assert any(n[1].startswith("eio") for n in nem), nem
    assert r["acknowledged_creates"] > 500, r["ops"]
    assert r["lost"] == 0, r["lost_per_member"]
    assert r["stale_reads"] == 0, r["stale_examples"]
    assert r["all_linearizable"], r["registers"]
    assert r["members_agree"], r["zxids"]
    assert r["client_thread_errors"] == 0, r["client_thread_error_examples"]
