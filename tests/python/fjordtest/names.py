"""Names no two tests of a run share (topics, groups): a prefix, a counter,
the test's name and the PID."""
import os

_counter = [0]


def unique(prefix, request, width=30):
    _counter[0] += 1
    return "%s%d-%s-%d" % (prefix, _counter[0], request.node.originalname[:width].replace("_", "-"),
                           os.getpid())
