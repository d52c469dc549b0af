"""Real databases for the JDBC connector tests: a private PostgreSQL 15 (initdb +
postgres, run as the `postgres` user because postgres refuses root) and a private
MariaDB (mariadb-install-db + mariadbd), each on a free 127.0.0.1 port in its own temp
dir, with password logins (so a wrong password is refused), stopped by PID.
Queried with the databases' own command-line clients (psql, mariadb).

Session-scoped: each test uses its own tables/topics. Missing binaries skip, or fail
with FJORD_REQUIRE_BINARIES=1 (scripts/env.sh installs postgresql and mariadb-server).
"""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from fjordtest import cleanup
from fjordtest.net import HOST, free_port
from fjordtest.proc import Proc

PG_BIN = "/usr/lib/postgresql/15/bin"
PASSWORD = "s3cret"


def _missing(what):
    if os.environ.get("FJORD_REQUIRE_BINARIES") == "1":
        pytest.fail("%s is not installed (scripts/env.sh APT_PACKAGES)" % what)
    pytest.skip("%s is not installed" % what)


class Postgres(Proc):
    stop_timeout = 20.0

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="fjord-pg-")
        super().__init__("postgres", self.root)
        self.port = free_port()
        self.user = "postgres"
        self.database = "postgres"
        self.url = "jdbc:postgresql://%s:%d/%s" % (HOST, self.port, self.database)

    def start(self):
        pw = pwd.getpwnam("postgres")
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o755)
        data = os.path.join(self.root, "data")
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        subprocess.run([PG_BIN + "/initdb", "-D", data, "-U", "postgres", "--pwfile", pwfile,
                        "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, user="postgres", timeout=120)
        self.launch_as([PG_BIN + "/postgres", "-D", data, "-p", str(self.port), "-h", HOST,
                        "-k", self.root, "-c", "fsync=off", "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off", "-c", "max_connections=50"], "postgres")
        self.wait_listening(self.port, timeout=60)
        deadline = time.time() + 30
        while True:
            try:
                self.sql("SELECT 1")
                return self
            except subprocess.CalledProcessError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def launch_as(self, cmd, user):
        self.starts += 1
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.root, user=user)
        log.close()
        cleanup.track(self)

    def stop(self, timeout=None):
        # SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for clients to leave).
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        cleanup.untrack(self)

    def sql(self, statement):
        """Rows as lists of strings (NULL as None)."""
        out = subprocess.run(["psql", "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d",
                              self.database, "-v", "ON_ERROR_STOP=1", "-At", "-F", "\x1f",
                              "-P", "null=<<NULL>>", "-c", statement],
                             check=True, capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PGPASSWORD=PASSWORD))
        return [[None if c == "<<NULL>>" else c for c in line.split("\x1f")]
                for line in out.stdout.splitlines() if line != ""]

    def column_types(self, table):
        return dict(self.sql("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = '%s'" % table))

    def close(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class MariaDB(Proc):
    stop_timeout = 20.0

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="fjord-mariadb-")
        super().__init__("mariadb", self.root)
        self.port = free_port()
        self.sock = os.path.join(self.root, "mysqld.sock")
        self.user = "fjord"
        self.database = "shop"
        self.url = "jdbc:mariadb://%s:%d/%s" % (HOST, self.port, self.database)

    def start(self):
        data = os.path.join(self.root, "data")
        subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + data, "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        self.launch(["mariadbd", "--no-defaults", "--datadir=" + data, "--socket=" + self.sock,
                     "--port=%d" % self.port, "--bind-address=" + HOST, "--user=root",
                     "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
                     "--innodb-flush-log-at-trx-commit=0", "--innodb-log-file-size=32M",
                     "--pid-file=" + os.path.join(self.root, "mariadb.pid"),
                     "--log-error=" + os.path.join(self.root, "error.log")])
        self.wait_listening(self.port, timeout=60)
        self.root_sql("CREATE DATABASE shop; CREATE USER 'fjord'@'%%' IDENTIFIED BY '%s'; "
                      "GRANT ALL ON *.* TO 'fjord'@'%%'; FLUSH PRIVILEGES;" % PASSWORD)
        return self

    def root_sql(self, statement):
        subprocess.run(["mariadb", "--no-defaults", "-S", self.sock, "-u", "root", "-e", statement],
                       check=True, capture_output=True, text=True, timeout=60)

    def sql(self, statement):
        """Rows as lists of strings (NULL as None), over TCP as the connector's user."""
        out = subprocess.run(["mariadb", "--no-defaults", "-h", HOST, "-P", str(self.port), "-u", "fjord",
                              "-p" + PASSWORD, "-D", self.database, "-N", "-B", "-e", statement],
                             check=True, capture_output=True, text=True, timeout=60)
        return [[None if c == "NULL" else c for c in line.split("\t")]
                for line in out.stdout.splitlines() if line != ""]

    def column_types(self, table):
        return dict(self.sql("SELECT column_name, column_type FROM information_schema.columns "
                             "WHERE table_schema = 'shop' AND table_name = '%s'" % table))

    def close(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    if not os.path.exists(PG_BIN + "/postgres") or shutil.which("psql") is None:
        _missing("PostgreSQL 15 (postgresql)")
    db = Postgres().start()
    try:
        yield db
    finally:
        db.close()


@pytest.fixture(scope="session")
def mariadb():
    if shutil.which("mariadbd") is None and not os.path.exists("/usr/sbin/mariadbd"):
        _missing("MariaDB (mariadb-server)")
    db = MariaDB().start()
    try:
        yield db
    finally:
        db.close()


@pytest.fixture(params=["postgres", "mariadb"])
def database(request):
    """Each of the two databases in turn."""
    return request.getfixturevalue(request.param)
