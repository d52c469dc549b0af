"""The linearizability checker itself, on hand-made histories: it must accept
the linearizable ones and reject the ones that are not (a checker that cannot
say no proves nothing)."""
from fjordtest.linearizability import Op, check

INIT = (b"0", 0)


def cas(t0, t1, expected, value, ok=True, client=0):
    return Op("cas", t0, t1, ok=ok, value=value, expected=expected, client=client)


def read(t0, t1, value, version, client=0):
    return Op("read", t0, t1, value=value, version=version, client=client)


def test_sequential_history_is_linearizable():
    h = [cas(0, 1, 0, b"a"), read(2, 3, b"a", 1), cas(4, 5, 1, b"b"), read(6, 7, b"b", 2)]
    assert check(h, INIT) is True


def test_concurrent_ops_may_take_effect_in_either_order():
    # Two overlapping CASes on version 0: one wins, the other fails; the read
    # overlapping both may see either state.
    h = [cas(0, 10, 0, b"a", ok=True, client=1), cas(1, 9, 0, b"b", ok=False, client=2),
         read(2, 8, b"0", 0, client=3)]
    assert check(h, INIT) is True


def test_stale_read_after_completed_write_is_not_linearizable():
    h = [cas(0, 1, 0, b"a"), read(2, 3, b"0", 0, client=1)]
    assert check(h, INIT) is False


def test_two_successful_cas_on_one_version_is_not_linearizable():
    h = [cas(0, 1, 0, b"a", client=1), cas(2, 3, 0, b"b", client=2)]
    assert check(h, INIT) is False


def test_failed_cas_needs_a_different_version():
    # BadVersion on version 0 while nothing could have changed it.
    h = [cas(0, 1, 0, b"a", ok=False), read(2, 3, b"0", 0)]
    assert check(h, INIT) is False


def test_read_going_back_in_time_is_not_linearizable():
    h = [cas(0, 1, 0, b"a"), cas(2, 3, 1, b"b"), read(4, 5, b"b", 2, client=1),
         read(6, 7, b"a", 1, client=2)]
    assert check(h, INIT) is False


def test_unknown_cas_may_or_may_not_have_happened():
    took = [cas(0, None, 0, b"x", ok=None, client=1), read(5, 6, b"x", 1, client=2)]
    assert check(took, INIT) is True
    lost = [cas(0, None, 0, b"x", ok=None, client=1), read(5, 6, b"0", 0, client=2)]
    assert check(lost, INIT) is True
    # ...but not before it was invoked.
    early = [read(0, 1, b"x", 1, client=2), cas(2, None, 0, b"x", ok=None, client=1)]
    assert check(early, INIT) is False


def test_longer_random_sequential_history():
    h, state, t = [], INIT, 0.0
    for i in range(300):
        v = b"v%d" % i
        h.append(cas(t, t + 0.5, state[1], v))
        state = (v, state[1] + 1)
        h.append(read(t + 0.6, t + 0.9, state[0], state[1], client=i % 3))
        t += 1
    assert check(h, INIT) is True
    # Corrupt one read in the middle: must be caught.
    h[301] = read(h[301].invoke, h[301].complete, b"v1", 2, client=9)
    assert check(h, INIT) is False
