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
