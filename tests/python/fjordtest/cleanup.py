"""The one registry of what a test run or a checker program started: child
processes and temporary directories. Whatever is still registered is killed
(SIGKILL) or removed by clean_up(), which the root conftest.py calls when the
pytest session finishes and which also runs at interpreter exit.

FJORD_KEEP_TMP=1 keeps every temp dir (logs and data) for a post-mortem.

made_by() is the scoped counterpart for fixtures: a factory whose products are
all closed when the fixture ends."""
import atexit
import contextlib
import os
import shutil
import tempfile

_PROCS = set()
_DIRS = set()


def track(proc):
    """Register a running Proc (anything with kill9())."""
    _PROCS.add(proc)


def untrack(proc):
    _PROCS.discard(proc)


def keep_tmp():
    return os.environ.get("FJORD_KEEP_TMP") == "1"


def temp_dir(prefix):
    """A new temp dir, removed by remove_dir() or at the end of the run."""
    d = tempfile.mkdtemp(prefix=prefix)
    _DIRS.add(d)
    return d


def remove_dir(d):
    _DIRS.discard(d)
    if not keep_tmp():
        shutil.rmtree(d, ignore_errors=True)


def clean_up():
    """Nothing started survives: kill -9 every live process, remove the temp dirs."""
    for p in list(_PROCS):
        try:
            p.kill9()
        except Exception:  # noqa: BLE001 - keep cleaning
            pass
    for d in list(_DIRS):
        remove_dir(d)


atexit.register(clean_up)


@contextlib.contextmanager
def made_by(make, close):
    """Yields f(*a, **kw) = make(*a, **kw), remembering each product; on exit
    close(product) for every one, errors ignored (teardown goes on)."""
    made = []

    def f(*a, **kw):
        x = make(*a, **kw)
        made.append(x)
        return x

    try:
        yield f
    finally:
        for x in made:
            try:
                close(x)
            except Exception:  # noqa: BLE001 - teardown goes on
                pass
