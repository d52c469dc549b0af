"""Debian's zkCli.sh (Apache ZooKeeper 3.8): where it is, the JVM flags that
start it fast, and the shape of the Stat it prints (which `fjord znode` copies)."""
import os
import re

ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
ZKCLI_ENV = dict(os.environ, CLIENT_JVMFLAGS="-XX:TieredStopAtLevel=1 -Xshare:auto "
                 "-XX:+UseSerialGC -Xmx128m")

STAT_KEYS = ["cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion",
             "aclVersion", "ephemeralOwner", "dataLength", "numChildren"]


def parse_stat(lines):
    """{key: value} of the `key = value` lines of a printed Stat, in order."""
    st = {}
    for l in lines:
        m = re.match(r"^(\w+) = (.*)$", l)
        if m:
            st[m.group(1)] = m.group(2)
    return st


def check_stat(st, stat, versions, tail):
    """A printed Stat `st` (from parse_stat) against the server's `stat`: every
    key in order, the zxids in hex, (cversion, dataVersion, aclVersion) equal to
    `versions` and (ephemeralOwner, dataLength, numChildren) equal to `tail`."""
    assert list(st) == STAT_KEYS, st
    assert st["cZxid"] == "0x%x" % stat.czxid
    assert st["mZxid"] == "0x%x" % stat.mzxid
    assert st["pZxid"] == "0x%x" % stat.pzxid
    assert (st["cversion"], st["dataVersion"], st["aclVersion"]) == versions
    assert (st["ephemeralOwner"], st["dataLength"], st["numChildren"]) == tail
