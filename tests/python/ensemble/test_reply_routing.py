"""A reply reaches only the connection that sent its request (issue 18).

A kazoo client pipelines creates through one member of a 3-member ensemble;
that member is killed with kill -9 while they are in flight and restarted at
once; the client, whose only host it is, resumes its session there. The
restarted member replays and catches up entries its previous incarnation
proposed for the client's old connection: their replies must go nowhere
(before the fix they reached the client's new connection, whose id the
restarted member had reused: kazoo's `xids do not match`, and its connection
thread died). Over many rounds: no kazoo connection-thread error ever, the
client stays usable, every acknowledged create holds its own data, once."""
import logging
import os
import time

from kazoo.exceptions import ConnectionLoss, OperationTimeoutError, SessionExpiredError
from kazoo.protocol.states import KazooState

ROUNDS = int(os.environ.get("FJORD_REPLY_ROUTING_ROUNDS", "75"))
IN_FLIGHT = int(os.environ.get("FJORD_REPLY_ROUTING_INFLIGHT", "60"))


class Captured(logging.Handler):
    """Every warning and error kazoo logs (its connection thread's deaths)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.bad = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += " | %r" % (record.exc_info[1],)
        if record.levelno >= logging.ERROR or "xids do not match" in text:
            self.bad.append(text)


def _wait(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


def test_replies_never_reach_a_later_connection(ensemble3):
    e = ensemble3
    lead = e.wait_leader()
    member = next(m for m in e.members if m is not lead)
    log = logging.getLogger("reply-routing-kazoo")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    captured = Captured()
    log.addHandler(captured)
    from kazoo.client import KazooClient
    zk = KazooClient(hosts="127.0.0.1:%d" % member.port, timeout=10.0, logger=log,
                     connection_retry=dict(max_tries=-1, delay=0.02, backoff=1,
                                           max_jitter=0.01, max_delay=0.05))
    zk.start(timeout=10)
    zk.ensure_path("/rr")
    acked = {}          # path -> data the create that returned it wrote
    lost = 0
    try:
        for r in range(ROUNDS):
            pending = []
            for i in range(IN_FLIGHT):
                data = b"%d-%d" % (r, i)
                pending.append((data, zk.create_async("/rr/n-", data, sequence=True)))
            # Some replies are back, most are in flight: the member dies.
            pending[0][1].wait(5)
            member.kill9()
            member.start()
            for data, a in pending:
                a.wait(30)
                assert a.ready(), "round %d: a create never completed" % r
                if a.successful():
                    path = a.get()
                    assert path not in acked, "round %d: %s returned twice" % (r, path)
                    acked[path] = data
                else:
                    assert isinstance(a.exception, (ConnectionLoss, OperationTimeoutError)), \
                        "round %d: %r" % (r, a.exception)
                    assert not isinstance(a.exception, SessionExpiredError)
                    lost += 1
            assert not captured.bad, "round %d: kazoo connection thread: %s" % (r, captured.bad[:3])
            _wait(lambda: zk.state == KazooState.CONNECTED, 20, "round %d: reconnect" % r)
            assert zk._connection._connection_routine.is_alive(), "round %d: connection thread died" % r
        # The client is still usable (retried as kazoo users do: the last
        # round's connection may still be dropped after the reconnect was
        # seen), and every acknowledged create holds its own data exactly once.
        zk.retry(zk.sync, "/rr")
        children = zk.retry(zk.get_children, "/rr")
        gets = {p: zk.get_async(p) for p in acked}
        for p, a in gets.items():
            assert a.get(timeout=30)[0] == acked[p], "%s holds another create's data" % p
        datas = [zk.get_async("/rr/" + c) for c in children]
        seen = [a.get(timeout=30)[0] for a in datas]
        for d in acked.values():
            assert seen.count(d) == 1, "%r present %d times" % (d, seen.count(d))
        assert not captured.bad, captured.bad[:3]
        print("reply routing: %d rounds, %d creates acknowledged, %d lost with the connection"
              % (ROUNDS, len(acked), lost))
    finally:
        zk.stop()
        zk.close()
