"""Where the binaries under test are, and what a test does when one is missing.

Env:
  FJORD_BIN               directory of fjord-coord, fjord-broker and fjord
                          (default ${CARGO_TARGET_DIR:-~/.cache/fjord-target}/release)
  FJORD_CLI               the fjord CLI (default $FJORD_BIN/fjord)
  FJORD_REQUIRE_BINARIES  1: a missing binary fails the test instead of skipping it
  ZK_JAR                  Apache ZooKeeper jar (default /usr/share/java/zookeeper.jar)
"""
import os
import shutil

ZK_JAR = os.environ.get("ZK_JAR", "/usr/share/java/zookeeper.jar")
ZK_CP_EXTRA = ["/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar",
               "/usr/share/java/slf4j-api.jar"]


def bin_dir():
    if os.environ.get("FJORD_BIN"):
        return os.environ["FJORD_BIN"]
    tgt = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/fjord-target")
    return os.path.join(tgt, "release")


def coord_binary():
    return os.path.join(bin_dir(), "fjord-coord")


def broker_binary():
    return os.path.join(bin_dir(), "fjord-broker")


def fjord_cli():
    return os.environ.get("FJORD_CLI") or os.path.join(bin_dir(), "fjord")


def require_binaries():
    return os.environ.get("FJORD_REQUIRE_BINARIES") == "1"


def skip_or_fail(why):
    """Skip the test, or fail it under FJORD_REQUIRE_BINARIES=1."""
    import pytest
    if require_binaries():
        pytest.fail("FJORD_REQUIRE_BINARIES=1: " + why, pytrace=False)
    pytest.skip(why)


def require(*paths):
    """Every path must be an executable file (skip_or_fail otherwise)."""
    for path in paths:
        if not os.access(path, os.X_OK):
            skip_or_fail("%s not built/installed at %s" % (os.path.basename(path), path))


def zookeeper_available():
    ok = os.path.exists(ZK_JAR) and shutil.which("java") is not None
    return ok, "Apache ZooKeeper (%s) or java not found" % ZK_JAR


def zookeeper_classpath(*first):
    return ":".join(list(first) + [ZK_JAR] + [p for p in ZK_CP_EXTRA if os.path.exists(p)])
