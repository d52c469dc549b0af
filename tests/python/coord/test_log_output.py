"""Servers colour their log lines only on a terminal: started with stderr to a
file (as the tests, scripts and service managers do), fjord-coord and
fjord-broker write no ANSI escape codes into it."""
from fjordtest.binaries import coord_binary, require
from fjordtest.broker import Cluster, require_brokers


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_no_colour_codes_in_log_files():
    require(coord_binary())
    require_brokers()
    c = Cluster(1, coord="fjord")
    try:
        logs = {"fjord-coord": c.coord.log_path, "fjord-broker": c.brokers[0].log_path}
        for name, path in logs.items():
            text = read(path)
            assert b" INFO " in text or b"INFO" in text, "%s logged nothing at info: %r" % (name, text[:300])
            assert b"\x1b[" not in text, "%s wrote colour codes: %r" % (name, text[:300])
    finally:
        c.close()
