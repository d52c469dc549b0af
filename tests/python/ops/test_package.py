"""The Debian package (scripts/package.sh): its contents and control data,
lintian, `systemd-analyze verify` on every unit, and a real install: `dpkg -i`
creates the fjord user and /var/lib/fjord, the units' ExecStart lines run as
their User= with the installed configs (copied onto free ports and temp dirs)
start a coordinator and a broker that tell a NOTIFY_SOCKET READY=1 (Type=notify)
and carry a kcat round trip, SIGTERM stops them cleanly, and `dpkg --purge`
removes the package; the test leaves the machine as it found it.

Runs as root on Debian (dpkg). When systemd is PID 1, `systemctl start/stop` in
order is exercised too; otherwise (containers) that one part is skipped.
"""
import os
import pwd
import grp
import re
import shutil
import socket
import stat
import subprocess
import time

import pytest

from fjordtest import cleanup
from fjordtest.binaries import bin_dir, require, require_binaries, skip_or_fail
from fjordtest.net import HOST, free_ports

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
UNITS = ["fjord-coord.service", "fjord-broker.service"]
EXPECTED = ["./usr/bin/fjord", "./usr/bin/fjord-coord", "./usr/bin/fjord-broker",
            "./etc/fjord/coord.properties", "./etc/fjord/broker.properties",
            "./lib/systemd/system/fjord-coord.service", "./lib/systemd/system/fjord-broker.service",
            "./usr/share/doc/fjord/copyright", "./usr/share/doc/fjord/changelog.gz"]


def need(tool, why):
    if shutil.which(tool) is None:
        if require_binaries():
            pytest.fail("%s not installed (%s)" % (tool, why))
        pytest.skip("%s not installed (%s)" % (tool, why))


@pytest.fixture(scope="module")
def deb():
    need("dpkg-deb", "Debian's package tools")
    need("dpkg-shlibdeps", "Debian package dpkg-dev")
    require(*(os.path.join(bin_dir(), b) for b in ("fjord", "fjord-coord", "fjord-broker")))
    out = cleanup.temp_dir("fjord-deb-")
    env = dict(os.environ, FJORD_BIN=bin_dir())
    p = subprocess.run([os.path.join(REPO, "scripts", "package.sh"), "--no-build", "--out", out],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    path = p.stdout.strip().splitlines()[-1]
    assert re.match(r".*/fjord_\d+\.\d+\.\d+_\w+\.deb$", path), path
    try:
        yield path
    finally:
        cleanup.remove_dir(out)


def unit_keys(text):
    """{key: [values]} of a unit file (all sections)."""
    keys = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    return keys


def test_contents_and_control(deb):
    listing = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True,
                             check=True).stdout
    paths = {l.split()[-1] for l in listing.splitlines()}
    missing = [p for p in EXPECTED if p not in paths]
    assert not missing, "missing from the .deb: %s\n%s" % (missing, listing)
    assert not [p for p in paths if p.startswith("./var/")], "data dirs come from postinst"
    modes = {l.split()[-1]: l.split()[0] for l in listing.splitlines()}
    for b in ("fjord", "fjord-coord", "fjord-broker"):
        assert modes["./usr/bin/" + b] == "-rwxr-xr-x", modes["./usr/bin/" + b]
    fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Version", "Architecture",
                             "Depends"], capture_output=True, text=True, check=True).stdout
    assert "Package: fjord" in fields and "adduser" in fields and "libc6" in fields, fields
    conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"], capture_output=True,
                               text=True, check=True).stdout.split()
    assert conffiles == ["/etc/fjord/coord.properties", "/etc/fjord/broker.properties"]
    tree = cleanup.temp_dir("fjord-deb-x-")
    try:
        subprocess.run(["dpkg-deb", "-x", deb, tree], check=True)
        coord_cfg = open(os.path.join(tree, "etc/fjord/coord.properties")).read()
        assert re.search(r"(?m)^dataDir=/var/lib/fjord/coord$", coord_cfg), coord_cfg
        broker_cfg = open(os.path.join(tree, "etc/fjord/broker.properties")).read()
        assert re.search(r"(?m)^log.dirs=/var/lib/fjord/broker-0$", broker_cfg), broker_cfg
        units = {u: unit_keys(open(os.path.join(tree, "lib/systemd/system", u)).read())
                 for u in UNITS}
    finally:
        cleanup.remove_dir(tree)
    for u, k in units.items():
        assert k["Type"] == ["notify"], u
        assert k["User"] == ["fjord"] and k["Group"] == ["fjord"], u
        assert k["Restart"] == ["on-failure"], u
        assert int(k["LimitNOFILE"][0]) >= 65536, u
        assert k["NoNewPrivileges"] == ["true"] and k["ProtectSystem"] == ["strict"], u
        assert k["ReadWritePaths"] == ["/var/lib/fjord"] and k["PrivateTmp"] == ["true"], u
        assert k["StandardOutput"] == ["journal"], u
        assert k["WantedBy"] == ["multi-user.target"], u
    broker = units["fjord-broker.service"]
    assert "fjord-coord.service" in broker["After"][0].split()
    assert broker["Requires"] == ["fjord-coord.service"]
    # Controlled shutdown: 3 retries x 5 s plus a 10 s drain must fit.
    assert int(broker["TimeoutStopSec"][0]) >= 60
    assert broker["ExecStart"] == ["/usr/bin/fjord-broker /etc/fjord/broker.properties"]
    assert units["fjord-coord.service"]["ExecStart"] == [
        "/usr/bin/fjord-coord /etc/fjord/coord.properties"]


def test_lintian(deb):
    need("lintian", "Debian package lintian")
    p = subprocess.run(["lintian", "--tag-display-limit", "0", deb], capture_output=True,
                       text=True, timeout=300)
    tags = [l for l in p.stdout.splitlines() if re.match(r"^[EWIPX]: ", l)]
    errors = [t for t in tags if t.startswith("E: ")]
    assert not errors, "\n".join(tags)
    # The only warning left: no man pages (the binaries' --help is the manual).
    warnings = [t for t in tags if t.startswith("W: ") and "no-manual-page" not in t]
    assert not warnings, "\n".join(tags)


# ---------------------------------------------------------------- installing it

def dpkg(*args):
    """dpkg with a wait for the dpkg lock (other apt runs on this machine)."""
    deadline = time.time() + 120
    while True:
        p = subprocess.run(["dpkg"] + list(args), capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if p.returncode == 0 or "lock" not in p.stderr or time.time() > deadline:
            return p
        time.sleep(2)


def installed():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "fjord"], capture_output=True,
                       text=True)
    return p.returncode == 0 and "installed" in p.stdout and "not-installed" not in p.stdout


class Notify:
    """A NOTIFY_SOCKET as systemd offers it to Type=notify services."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify-%d" % len(os.listdir(directory)))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)  # the service runs as fjord

    def wait_for(self, state, proc, timeout=30):
        deadline = time.time() + timeout
        got = []
        while time.time() < deadline:
            assert proc.poll() is None, "exited %s before %s; sent %s" % (proc.returncode, state, got)
            self.sock.settimeout(0.2)
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            got.append(msg)
            if state in msg.split("\n"):
                return got
        raise AssertionError("no %s within %ss; got %s" % (state, timeout, got))

    def close(self):
        self.sock.close()


def run_as_unit(unit_path, config_path, notify, workdir):
    """The unit's ExecStart with its config argument pointed at config_path, as
    the unit's User/Group, with NOTIFY_SOCKET set."""
    keys = unit_keys(open(unit_path).read())
    argv = keys["ExecStart"][0].split()
    assert argv[-1].startswith("/etc/fjord/"), argv
    argv[-1] = config_path
    env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notify.path, "RUST_LOG": "info",
           "HOME": "/var/lib/fjord"}
    log = open(os.path.join(workdir, os.path.basename(argv[0]) + ".log"), "wb")
    return subprocess.Popen(argv, env=env, user=keys["User"][0], group=keys["Group"][0],
                            extra_groups=[], stdout=log, stderr=subprocess.STDOUT, cwd="/")


def rewrite(src, dst, changes):
    text = open(src).read()
    for k, v in changes.items():
        line = "%s=%s" % (k, v)
        text, n = re.subn(r"(?m)^#?\s*%s=.*$" % re.escape(k), line, text)
        if n == 0:
            text += line + "\n"
    with open(dst, "w") as f:
        f.write(text)


def stop(proc, timeout=60):
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_install_run_remove(deb):
    if os.geteuid() != 0:
        skip_or_fail("dpkg -i needs root")
    need("systemd-analyze", "systemd")
    need("kcat", "Debian package kcat")
    had_user = _exists(pwd.getpwnam, "fjord")
    had_group = _exists(grp.getgrnam, "fjord")
    had_data = os.path.exists("/var/lib/fjord")
    if installed():
        assert dpkg("--purge", "fjord").returncode == 0
    work = cleanup.temp_dir("fjord-pkg-run-")
    os.chmod(work, 0o755)
    procs = []
    try:
        p = dpkg("-i", deb)
        assert p.returncode == 0, p.stdout + p.stderr
        assert installed()
        # postinst: a system user without a login, the data dirs, private configs.
        user = pwd.getpwnam("fjord")
        assert user.pw_uid < 1000 and user.pw_shell in ("/usr/sbin/nologin", "/bin/false"), user
        for d in ("/var/lib/fjord", "/var/lib/fjord/coord", "/var/lib/fjord/broker-0"):
            st = os.stat(d)
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, 0o750), d
        for c in ("/etc/fjord/coord.properties", "/etc/fjord/broker.properties"):
            st = os.stat(c)
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, user.pw_gid, 0o640), c
        units = ["/lib/systemd/system/" + u for u in UNITS]
        for u in units:
            v = subprocess.run(["systemd-analyze", "verify", u], capture_output=True, text=True,
                               timeout=60)
            assert v.returncode == 0 and "fjord" not in v.stderr, (u, v.stderr)
        # The check can fail: a unit with a bad Type and a missing binary is refused.
        bad = os.path.join(work, "fjord-bad.service")
        text = open(units[0]).read().replace("Type=notify", "Type=bogus")
        open(bad, "w").write(text.replace("/usr/bin/fjord-coord", "/usr/bin/fjord-nonexistent"))
        assert subprocess.run(["systemd-analyze", "verify", bad], capture_output=True,
                              timeout=60).returncode != 0

        # The ExecStart lines, as User=fjord, on the installed configs (own ports, dirs).
        cport, aport, bport = free_ports(3)
        for d in ("coord", "broker"):
            os.makedirs(os.path.join(work, d))
            os.chown(os.path.join(work, d), user.pw_uid, user.pw_gid)
        coord_cfg = os.path.join(work, "coord.properties")
        rewrite("/etc/fjord/coord.properties", coord_cfg, {
            "clientPort": cport, "clientPortAddress": HOST, "dataDir": os.path.join(work, "coord"),
            "admin.serverAddress": HOST, "admin.serverPort": aport})
        broker_cfg = os.path.join(work, "broker.properties")
        rewrite("/etc/fjord/broker.properties", broker_cfg, {
            "listeners": "PLAINTEXT://%s:%d" % (HOST, bport),
            "advertised.listeners": "PLAINTEXT://%s:%d" % (HOST, bport),
            "log.dirs": os.path.join(work, "broker"),
            "zookeeper.connect": "%s:%d" % (HOST, cport)})
        coord_notify, broker_notify = Notify(work), Notify(work)
        coord = run_as_unit(units[0], coord_cfg, coord_notify, work)
        procs.append(coord)
        coord_notify.wait_for("READY=1", coord)
        # READY means serving: the client port answers at once.
        s = socket.create_connection((HOST, cport), timeout=5)
        s.sendall(b"ruok")
        assert s.recv(16) == b"imok"
        s.close()
        # It runs as fjord: what it writes is fjord's.
        made = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(work, "coord")) for f in fs]
        assert made and all(_owner(f) == user.pw_uid for f in made), made
        broker = run_as_unit(units[1], broker_cfg, broker_notify, work)
        procs.append(broker)
        broker_notify.wait_for("READY=1", broker, timeout=60)
        # kcat round trip through the broker the unit started.
        msgs = ["k%d:v%d" % (i, i) for i in range(5)]
        produced = None
        for _ in range(20):
            produced = subprocess.run(["kcat", "-b", "%s:%d" % (HOST, bport), "-P", "-t", "pkgtest",
                                       "-K:"], input="\n".join(msgs) + "\n", capture_output=True,
                                      text=True, timeout=30)
            if produced.returncode == 0:
                break
            time.sleep(0.5)
        assert produced.returncode == 0, produced.stderr
        consumed = subprocess.run(["kcat", "-b", "%s:%d" % (HOST, bport), "-C", "-t", "pkgtest",
                                   "-o", "beginning", "-e", "-q", "-f", "%k:%s\n"],
                                  capture_output=True, text=True, timeout=60)
        assert consumed.stdout.split() == msgs, consumed
        # SIGTERM, broker first: both say STOPPING=1 and exit 0.
        broker.terminate()
        broker_notify.wait_for("STOPPING=1", broker, timeout=60)
        assert broker.wait(120) == 0, open(os.path.join(work, "fjord-broker.log")).read()[-3000:]
        coord.terminate()
        assert coord.wait(30) == 0
        if _systemd_running():
            for cmd in (["start", "fjord-coord"], ["start", "fjord-broker"],
                        ["is-active", "fjord-coord", "fjord-broker"],
                        ["stop", "fjord-broker"], ["stop", "fjord-coord"]):
                r = subprocess.run(["systemctl"] + cmd, capture_output=True, text=True, timeout=180)
                assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        else:
            print("systemd is not PID 1 here: systemctl start/stop not exercised")
        coord_notify.close()
        broker_notify.close()
    finally:
        for p in reversed(procs):
            stop(p)
        if installed() or subprocess.run(["dpkg-query", "-W", "fjord"],
                                         capture_output=True).returncode == 0:
            r = dpkg("--purge", "fjord")
            assert r.returncode == 0, r.stdout + r.stderr
        # postrm keeps the data and the user (they hold a cluster's state):
        # this test made them, so it removes them.
        if not had_user and _exists(pwd.getpwnam, "fjord"):
            subprocess.run(["userdel", "fjord"], check=False)
        if not had_group and _exists(grp.getgrnam, "fjord"):
            subprocess.run(["groupdel", "fjord"], check=False)
        if not had_data:
            shutil.rmtree("/var/lib/fjord", ignore_errors=True)
        cleanup.remove_dir(work)
    assert not os.path.exists("/usr/bin/fjord-coord") and not os.path.exists("/etc/fjord")
    assert not os.path.exists("/lib/systemd/system/fjord-broker.service")


def _exists(lookup, name):
    try:
        lookup(name)
        return True
    except KeyError:
        return False


def _owner(path):
    return os.stat(path).st_uid


def _systemd_running():
    return os.path.isdir("/run/systemd/system")
