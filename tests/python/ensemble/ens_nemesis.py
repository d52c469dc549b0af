"""Fault-injection checker for a fjord-coord ensemble (issue 6).

A 3- (or 5-) member ensemble; kazoo clients doing, concurrently:
- creates of unique znodes (every acknowledged one must survive);
- compare-and-set on a few register znodes: sync + getData, then
  setData(version=what was read), each op's interval and outcome recorded
  (ok / BadVersion / unknown after a connection loss);
- plain getData (no sync) for the per-session guarantees.
Meanwhile a nemesis, every few seconds, heals what it broke last and then
kills -9, SIGSTOPs (SIGCONT next round) or restarts one member, the leader
included (at most a minority broken at once); with --eio, also fails a
member's disk writes and syncs with EIO until the next round (issue 19: it
leaves the ensemble, waits for its disk, rejoins).

Then: heal, wait for the members to agree, and check
- lost: acknowledged creates missing on any member (must be 0);
- stale reads: a session reading an older version of a register than it
  already read or wrote (ZooKeeper's per-session guarantee; must be 0);
- every register's history of sync'd reads and CASes linearizable
  (fjordtest/linearizability.py, Wing–Gong–Lowe);
- the longest window without any acknowledged write;
- client connection-thread errors (kazoo's `xids do not match`, a reply
  that reached the wrong connection): must be 0.

    PYTHONPATH=tests/python python3 tests/python/ensemble/ens_nemesis.py --duration 600
    (what scripts/ensemble-chaos.sh runs)
Prints a JSON report; exit 1 on any violation."""
import argparse
import itertools
import logging
import random
import sys
import threading
import time

from fjordtest import cleanup
from fjordtest.ensemble import Ensemble
from fjordtest.linearizability import Op, check
from fjordtest.nemesis import Nemesis, longest_gap, make_log, print_report
from fjordtest.workers import Workers

log = make_log("ens-nemesis")


def _lost_conn_errors():
    from kazoo.exceptions import ConnectionLoss, OperationTimeoutError, SessionExpiredError
    from kazoo.handlers.threading import KazooTimeoutError
    return (ConnectionLoss, OperationTimeoutError, SessionExpiredError, KazooTimeoutError)


class ThreadErrors(logging.Handler):
    """What kazoo's connection threads log at error level (they die after it)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen = []

    def emit(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        self.seen.append("%s%s" % (record.getMessage(), " | %r" % (exc,) if exc else ""))


class Workload(Workers):
    def __init__(self, ens, registers, cas_clients, writers, rng):
        super().__init__()
        self.ens = ens
        self.rng = rng
        self.regs = ["/reg/r%d" % i for i in range(registers)]
        self.history = {r: [] for r in self.regs}
        self.acked = []
        self.write_times = []
        self.stale = []
        self.counts = {"read": 0, "cas_ok": 0, "cas_failed": 0, "cas_unknown": 0,
                       "create_ok": 0, "create_unknown": 0, "plain_read": 0}
        zk = ens.kazoo()
        for r in self.regs:
            zk.ensure_path(r)
            zk.set(r, b"0")
        # Registers start at (b"0", version 1) after the set above.
        zk.ensure_path("/load")
        zk.stop()
        zk.close()
        members = ens.live()
        n = cas_clients + writers
        self.clients = [ens.kazoo(member=members[i % len(members)], timeout=10.0) for i in range(n)]
        self.threads = [threading.Thread(target=self._cas, args=(i,), daemon=True)
                        for i in range(cas_clients)]
        self.threads += [threading.Thread(target=self._create, args=(cas_clients + i,), daemon=True)
                         for i in range(writers)]

    def _note(self, seen, zk, reg, version, what):
        """Per-session monotonic versions per register."""
        sid = zk.client_id[0] if zk.client_id else None
        key = (sid, reg)
        prev = seen.get(key, -1)
        if version < prev:
            with self.lock:
                self.stale.append((what, reg, prev, version, sid))
        seen[key] = max(prev, version)

    def _cas(self, i):
        from kazoo.exceptions import BadVersionError
        lost = _lost_conn_errors()
        zk = self.clients[i]
        rng = random.Random(self.rng.random())
        seen = {}
        k = 0
        while not self.stop.is_set():
            reg = rng.choice(self.regs)
            try:
                if rng.random() < 0.2:
                    v, st = zk.get(reg)
                    self._note(seen, zk, reg, st.version, "plain read")
                    with self.lock:
                        self.counts["plain_read"] += 1
                    continue
                t0 = time.monotonic()
                zk.sync(reg)
                v, st = zk.get(reg)
                t1 = time.monotonic()
            except lost:
                time.sleep(0.05)
                continue
            self._note(seen, zk, reg, st.version, "sync read")
            with self.lock:
                self.history[reg].append(Op("read", t0, t1, value=v, version=st.version, client=i))
                self.counts["read"] += 1
            k += 1
            new = b"c%d-%d" % (i, k)
            t0 = time.monotonic()
            try:
                zk.set(reg, new, version=st.version)
                ok, what = True, "cas_ok"
            except BadVersionError:
                ok, what = False, "cas_failed"
            except lost:
                ok, what = None, "cas_unknown"
            t1 = time.monotonic()
            with self.lock:
                self.history[reg].append(Op("cas", t0, t1, ok=ok, value=new,
                                            expected=st.version, client=i))
                self.counts[what] += 1
                if ok:
                    self.write_times.append(time.time())
            if ok:
                self._note(seen, zk, reg, st.version + 1, "own write")
            time.sleep(rng.random() * 0.01)

    def _create(self, i):
        from kazoo.exceptions import NodeExistsError
        lost = _lost_conn_errors()
        zk = self.clients[i]
        k = 0
        retry = False
        while not self.stop.is_set():
            path = "/load/w%02d-%07d" % (i, k)
            try:
                zk.create(path, b"x")
            except NodeExistsError:
                if not retry:
                    raise
                # An attempt whose reply was lost did commit: acknowledged now.
            except lost:
                retry = True
                with self.lock:
                    self.counts["create_unknown"] += 1
                time.sleep(0.05)
                continue
            retry = False
            k += 1
            with self.lock:
                self.acked.append(path)
                self.write_times.append(time.time())
                self.counts["create_ok"] += 1


def nemesis(ens, interval, rng, eio=False):
    """Every `interval` s: heal the last fault, then kill -9, SIGSTOP or restart
    one member, the leader or any live one; with eio, also fail a member's
    disk writes and syncs with EIO (the fjordfault shim) until the next heal."""
    rounds = itertools.count()

    def pick(rng):
        what = rng.choice(["kill", "kill-leader", "pause", "pause-leader", "restart"])
        if eio and next(rounds) % 2 == 1:       # every other round
            what = rng.choice(["eio", "eio-leader"])
        m = None
        if what.endswith("leader"):
            m = ens.leader()
        m = m or rng.choice(ens.live())
        return m, what.split("-")[0], what

    return Nemesis(interval, rng, pick, lambda m: m.sid, log, "member", first_wait=interval / 2)


def run(members=3, duration=60.0, interval=4.0, registers=4, cas_clients=6, writers=4,
        seed=None, extra=None, eio=False):
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    ens = Ensemble(members, extra or {})
    if eio:
        from fjordtest.faults import Injector
        for m in ens.members:
            m.injector = Injector(m.data_dir, ctl_dir=m.dir)
            m.env.update(m.injector.env)
    log("seed %d, %d members, %.0fs, nemesis every %.1fs, dir %s" % (
        seed, members, duration, interval, ens.dir))
    w = None
    thread_errors = ThreadErrors()
    kazoo_log = logging.getLogger("kazoo.client")
    kazoo_log.addHandler(thread_errors)
    try:
        ens.start()
        w = Workload(ens, registers, cas_clients, writers, rng)
        w.start()
        time.sleep(1)
        nem = nemesis(ens, interval, rng, eio)
        t0, t1 = nem.run_for(duration)
        log("nemesis done; healing")
        ens.wait_leader(30)
        time.sleep(2)
        w.finish()
        gap, gap_at = longest_gap(w.write_times, t0, t1)
        # Members agree, and each has every acknowledged write.
        deadline = time.time() + 60
        while time.time() < deadline and len({m.zxid() for m in ens.members}) != 1:
            time.sleep(0.2)
        zxids = [m.zxid() for m in ens.members]
        lost = {}
        finals = {}
        acked = set(p.rsplit("/", 1)[1] for p in w.acked)
        for m in ens.members:
            zk = ens.kazoo(member=m, timeout=10.0)
            try:
                zk.sync("/load")
                have = set(zk.get_children("/load"))
                lost[m.sid] = len(acked - have)
                finals[m.sid] = {}
                for r in w.regs:
                    t_0 = time.monotonic()
                    zk.sync(r)
                    v, st = zk.get(r)
                    finals[m.sid][r] = (v.decode(), st.version)
                    w.history[r].append(Op("read", t_0, time.monotonic(), value=v,
                                           version=st.version, client="final-%d" % m.sid))
            finally:
                zk.stop()
                zk.close()
        lin = {}
        for r, ops in w.history.items():
            started = time.time()
            res = check(ops, (b"0", 1))
            lin[r] = {"ops": len(ops), "linearizable": res,
                      "check_s": round(time.time() - started, 2)}
        agree = all(finals[s] == finals[ens.members[0].sid] for s in finals)
        report = {
            "seed": seed,
            "members": members,
            "duration_s": round(t1 - t0, 1),
            "ops": dict(w.counts),
            "acknowledged_creates": len(w.acked),
            "lost": sum(lost.values()),
            "lost_per_member": lost,
            "stale_reads": len(w.stale),
            "stale_examples": [repr(s) for s in w.stale[:5]],
            "registers": lin,
            "all_linearizable": all(x["linearizable"] is True for x in lin.values()),
            "members_agree": agree and len(set(zxids)) == 1,
            "zxids": [hex(z) if z else None for z in zxids],
            "client_thread_errors": len(thread_errors.seen),
            "client_thread_error_examples": thread_errors.seen[:5],
            "longest_write_unavailability_s": round(gap, 2),
            "longest_write_unavailability_at_s": round(gap_at - t0, 1),
            "nemesis": [(round(t - t0, 1), a, s, x) for t, a, s, x in nem.history],
        }
        return report
    finally:
        kazoo_log.removeHandler(thread_errors)
        if w is not None:
            w.close()
        if cleanup.keep_tmp():
            log("kept %s" % ens.dir)
        ens.cleanup()


def violations(r):
    return r["lost"] + r["stale_reads"] + (0 if r["all_linearizable"] else 1) + \
        (0 if r["members_agree"] else 1) + r["client_thread_errors"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--interval", type=float, default=4)
    ap.add_argument("--registers", type=int, default=4)
    ap.add_argument("--cas-clients", type=int, default=6)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--tick-time", type=int, default=2000,
                    help="zoo.cfg tickTime (ZooKeeper's default 2000)")
    ap.add_argument("--eio", action="store_true",
                    help="every other round, fail a member's (or the leader's) disk writes and syncs with EIO "
                         "(the fjordfault LD_PRELOAD shim) until the next round")
    args = ap.parse_args()
    r = run(args.members, args.duration, args.interval, args.registers, args.cas_clients,
            args.writers, args.seed, {"tickTime": str(args.tick_time)}, eio=args.eio)
    print_report(r, "m")
    return 1 if violations(r) else 0


if __name__ == "__main__":
    sys.exit(main())
