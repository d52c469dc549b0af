"""Proc: one child process started from a work dir, its stdout and stderr
appended to a log file there, registered in fjordtest.cleanup while it may be
alive, and always stopped by its PID."""
import os
import signal
import socket
import subprocess
import time

from fjordtest import cleanup
from fjordtest.net import HOST


class Proc:
    stop_timeout = 10.0             # SIGTERM grace before SIGKILL
    env_defaults = {"RUST_BACKTRACE": "1"}

    def __init__(self, name, workdir):
        self.name = name
        self.dir = workdir
        self.proc = None
        self.log_path = os.path.join(workdir, name + ".log")
        self.starts = 0
        # Extra environment for the child (e.g. fjordtest.faults' LD_PRELOAD).
        self.env = {}

    def launch(self, cmd):
        os.makedirs(self.dir, exist_ok=True)
        self.starts += 1
        env = dict(os.environ)
        for k, v in self.env_defaults.items():
            env.setdefault(k, v)
        env.update(self.env)
        with open(self.log_path, "ab") as log:
            log.write(("\n==== start %d: %s\n" % (self.starts, " ".join(cmd))).encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir, env=env)
        cleanup.track(self)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL: always leaves the process dead."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        cleanup.untrack(self)

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)
        cleanup.untrack(self)

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def wait_listening(self, port, timeout=30.0):
        """Until a TCP connect to port succeeds; an exit meanwhile is an error."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s; log:\n%s" % (
                    self.name, self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("%s did not listen on %d; log:\n%s" % (self.name, port, self.log_tail()))
