"""A bad group coordinator key in server.properties stops fjord-broker at
startup like any other bad key: exit code 2, naming the key and the file
(before, the group coordinator silently fell back to its default)."""
import subprocess

import pytest

from fjordtest.binaries import broker_binary, require

BAD = [
    ("group.initial.rebalance.delay.ms", "soon"),
    ("group.min.session.timeout.ms", "-1"),
    ("group.max.session.timeout.ms", "6s"),
    ("offset.metadata.max.bytes", "lots"),
]


@pytest.mark.parametrize("key,value", BAD)
def test_bad_group_key_exits_2(tmp_path, key, value):
    require(broker_binary())
    cfg = tmp_path / "server.properties"
    cfg.write_text("broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs=%s\n%s=%s\n"
                   % (tmp_path / "data", key, value))
    p = subprocess.run([broker_binary(), str(cfg)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=20)
    assert p.returncode == 2, "exit code %r (want 2); stderr: %s" % (p.returncode, p.stderr)
    assert key in p.stderr, "stderr does not name the key %s: %r" % (key, p.stderr)
    assert str(cfg) in p.stderr, "stderr does not name the file %s: %r" % (cfg, p.stderr)
