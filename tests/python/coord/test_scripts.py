"""scripts/coord-start.sh and scripts/coord-stop.sh behave like zookeeper-server-start.sh /
zookeeper-server-stop.sh, with the sample config/coord.properties (fjord-coord only).

coord-stop.sh falls back to stopping every fjord-coord of this user when its pid file is
missing; this test only calls it when the pid file names the server it started.
"""
import os
import re
import signal
import subprocess
import time

import pytest

from fjordtest.binaries import bin_dir
from fjordtest.coord import four_letter, skip_or_fail_unavailable
from fjordtest.net import free_port

TARGETS = ["fjord"]
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def sample_config(tmp_path):
    text = open(os.path.join(REPO, "config", "coord.properties")).read()
    port = free_port()
    text = re.sub(r"(?m)^clientPort=.*$", "clientPort=%d" % port, text)
    text = re.sub(r"(?m)^dataDir=.*$", "dataDir=%s" % (tmp_path / "data"), text)
    assert "clientPort=%d" % port in text and str(tmp_path / "data") in text
    cfg = tmp_path / "coord.properties"
    cfg.write_text(text)
    return cfg, port


def wait_imok(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if four_letter(port, "ruok", timeout=1) == "imok":
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def env_for(tmp_path):
    return dict(os.environ, FJORD_BIN=bin_dir(), PID_DIR=str(tmp_path), LOG_DIR=str(tmp_path / "logs"))


def test_start_daemon_then_stop(tmp_path, target):
    skip_or_fail_unavailable("fjord")
    cfg, port = sample_config(tmp_path)
    env = env_for(tmp_path)
    r = subprocess.run([os.path.join(REPO, "scripts", "coord-start.sh"), "-daemon", str(cfg)],
                       env=env, capture_output=True, text=True, timeout=30)
    pidfile = tmp_path / "fjord-coord.pid"
    pid = int(pidfile.read_text().strip()) if pidfile.exists() else None
    try:
        assert r.returncode == 0, r.stderr
        assert pid, "coord-start.sh -daemon wrote no pid file in $PID_DIR"
        assert wait_imok(port), "daemon did not answer ruok; log: %s" % (
            (tmp_path / "logs" / "fjord-coord.out").read_text()[-2000:]
            if (tmp_path / "logs" / "fjord-coord.out").exists() else "(none)")
        os.kill(pid, 0)
        # only now is it safe to call coord-stop.sh: its pid file names our server
        s = subprocess.run([os.path.join(REPO, "scripts", "coord-stop.sh")], env=env,
                           capture_output=True, text=True, timeout=30)
        assert s.returncode == 0, s.stdout + s.stderr
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("fjord-coord pid %d still running after coord-stop.sh" % pid)
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_start_foreground_stops_on_sigterm(tmp_path, target):
    skip_or_fail_unavailable("fjord")
    cfg, port = sample_config(tmp_path)
    p = subprocess.Popen([os.path.join(REPO, "scripts", "coord-start.sh"), str(cfg)],
                         env=env_for(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_imok(port), "foreground server did not answer ruok"
        p.send_signal(signal.SIGTERM)   # coord-start.sh execs the server: this is its pid
        p.wait(15)
        assert p.returncode in (0, 143, -15), p.returncode
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_usage_without_config(tmp_path, target):
    skip_or_fail_unavailable("fjord")
    r = subprocess.run([os.path.join(REPO, "scripts", "coord-start.sh")], env=env_for(tmp_path),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "USAGE" in (r.stdout + r.stderr).upper()
