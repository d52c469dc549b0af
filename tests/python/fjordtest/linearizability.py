"""A Wing–Gong–Lowe linearizability checker for one ZooKeeper znode used as a
compare-and-set register.

The register's state is (value, version). Operations, each with the wall-clock
interval in which the client waited for it:

- ``read``: a sync'd getData that returned (value, version);
- ``cas``: setData(value, version=expected). ``ok=True`` succeeded (state had
  that version; it becomes (value, version + 1)), ``ok=False`` failed with
  BadVersion (state had another version; unchanged), ``ok=None`` unknown
  (connection lost): it may have taken effect at any point after its invocation,
  or never — its return time is taken as infinite and it may stay out.

The search (Lowe's variant of Wing & Gong, with memoisation of (linearized set,
state)) looks for an order of the operations consistent with their real-time
order and the register's sequential behaviour. Histories are checked per
register (linearizability is compositional)."""

INF = float("inf")


class Op:
    __slots__ = ("kind", "value", "version", "expected", "ok", "invoke", "complete", "client")

    def __init__(self, kind, invoke, complete, ok=True, value=None, version=None,
                 expected=None, client=None):
        self.kind = kind
        self.invoke = invoke
        self.complete = INF if complete is None or ok is None else complete
        self.ok = ok
        self.value = value
        self.version = version
        self.expected = expected
        self.client = client

    def __repr__(self):
        if self.kind == "read":
            body = "read->(%r,v%d)" % (self.value, self.version)
        else:
            body = "cas(v%d:=%r)->%s" % (self.expected, self.value, self.ok)
        return "%s[%.3f,%.3f]c%s" % (body, self.invoke, self.complete, self.client)


def step(state, op):
    """The register's sequential specification: (allowed, next state)."""
    value, version = state
    if op.kind == "read":
        return (op.value, op.version) == state, state
    if op.ok is False:
        return version != op.expected, state
    if version == op.expected:
        return True, (op.value, version + 1)
    return False, state


class _Entry:
    __slots__ = ("op", "idx", "is_call", "match", "prev", "next", "time")


def prune(ops):
    """Drop what cannot matter: unknown reads, and unknown CASes on a version
    that a known-successful CAS consumed (only one write per version succeeds)."""
    consumed = {o.expected for o in ops if o.kind == "cas" and o.ok is True}
    out = []
    for o in ops:
        if o.ok is None and (o.kind == "read" or o.expected in consumed):
            continue
        out.append(o)
    return out


def check(ops, init, max_states=2_000_000):
    """True if linearizable, False if not, None if the search gave up."""
    ops = prune(ops)
    entries = []
    for i, o in enumerate(ops):
        c, r = _Entry(), _Entry()
        c.op, c.idx, c.is_call, c.match, c.time = o, i, True, r, o.invoke
        r.op, r.idx, r.is_call, r.match, r.time = o, i, False, c, o.complete
        entries += [c, r]
    # Calls before returns at the same instant: the more permissive order.
    entries.sort(key=lambda e: (e.time, 0 if e.is_call else 1))
    head = _Entry()
    head.prev, head.next, head.is_call = None, None, False
    prev = head
    for e in entries:
        prev.next, e.prev = e, prev
        prev = e
    prev.next = None
    known_left = sum(1 for o in ops if o.ok is not None)

    def lift(e):
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        m = e.match
        m.prev.next = m.next
        if m.next:
            m.next.prev = m.prev

    def unlift(e):
        m = e.match
        m.prev.next = m
        if m.next:
            m.next.prev = m
        e.prev.next = e
        if e.next:
            e.next.prev = e

    state, linearized = init, 0
    cache = set()
    stack = []
    entry = head.next
    explored = 0
    while True:
        if known_left == 0:
            return True
        if entry is None:
            # Only unknown operations' infinite returns were ahead: backtrack.
            entry = _Entry()
            entry.is_call = False
        if entry.is_call:
            allowed, nxt = step(state, entry.op)
            if allowed:
                lin = linearized | (1 << entry.idx)
                key = (lin, nxt)
                if key not in cache:
                    explored += 1
                    if explored > max_states:
                        return None
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = nxt, lin
                    if entry.op.ok is not None:
                        known_left -= 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return False
            top, state = stack.pop()
            linearized &= ~(1 << top.idx)
            if top.op.ok is not None:
                known_left += 1
            unlift(top)
            entry = top.next
