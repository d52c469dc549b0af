"""What the two fault-injection checkers (replication/checker.py for brokers,
ensemble/ens_nemesis.py for a coordinator ensemble) share: a log line on
stderr, the nemesis that breaks one process at a time, the longest gap
between acknowledgements, and how the report is printed."""
import json
import sys
import threading
import time


def make_log(tag):
    def log(msg):
        sys.stderr.write("[%s %s] %s\n" % (tag, time.strftime("%H:%M:%S"), msg))
        sys.stderr.flush()
    return log


class Nemesis:
    """Every round: heal what the last round broke, wait interval/2, then break
    one process. pick(rng) -> (victim, action, label) chooses: action "kill"
    (kill -9; started again at the next heal), "pause" (SIGSTOP; SIGCONT at the
    next heal), "restart" (stopped and started at once) or "eio" (the victim's
    fjordtest.faults `injector` fails its disk writes and syncs with EIO until
    the next heal); label is what the history says. Victims are fjordtest Procs
    with an id given by ident().
    A round starts after first_wait s (default: interval)."""

    def __init__(self, interval, rng, pick, ident, log, noun, first_wait=None):
        self.interval = interval
        self.first_wait = interval if first_wait is None else first_wait
        self.rng = rng
        self.pick = pick
        self.ident = ident
        self.log = log
        self.noun = noun
        self.stop = threading.Event()
        self.history = []            # (time, label | "heal", id, healed label | "")
        self.broken = None
        self.t = threading.Thread(target=self._run, daemon=True)

    def heal(self):
        if self.broken is None:
            return
        victim, action, label = self.broken
        self.broken = None
        if action == "pause":
            victim.resume()
        elif action == "eio":
            victim.injector.disarm()
        else:
            victim.start()
        self.history.append((time.time(), "heal", self.ident(victim), label))

    def _run(self):
        while not self.stop.wait(self.first_wait):
            try:
                self.heal()
                if self.stop.wait(self.interval / 2):
                    return
                victim, action, label = self.pick(self.rng)
                if action == "kill":
                    victim.kill9()
                elif action == "pause":
                    victim.pause()
                elif action == "eio":
                    victim.injector.arm("eio")
                else:
                    victim.stop()
                    victim.start()
                self.broken = (victim, action, label) if action != "restart" else None
                self.history.append((time.time(), label, self.ident(victim), ""))
                self.log("nemesis: %s %s %d" % (label, self.noun, self.ident(victim)))
            except Exception as e:  # noqa: BLE001 - a nemesis must keep going
                self.log("nemesis error: %r" % (e,))

    def run_for(self, duration):
        """Run for `duration` s, then stop and heal; returns (start, end) times."""
        t0 = time.time()
        self.t.start()
        time.sleep(duration)
        self.stop.set()
        self.t.join(60)
        self.heal()
        return t0, time.time()


def longest_gap(times, start, end):
    """(length, start) of the longest interval in [start, end] without a time in `times`."""
    pts = [start] + sorted(t for t in times if start <= t <= end) + [end]
    best = (0.0, start)
    for x, y in zip(pts, pts[1:]):
        if y - x > best[0]:
            best = (y - x, x)
    return best


def print_report(report, id_prefix=""):
    """The report as JSON, then its nemesis history on one line (popped from it)."""
    nem = report.pop("nemesis")
    print(json.dumps(report, indent=1))
    print("nemesis: " + "; ".join("%.1fs %s %s%d%s" % (t, a, id_prefix, i, (" (" + x + ")") if x else "")
                                  for t, a, i, x in nem))
