"""`fjord group` (kafka-consumer-groups' powers) and `fjord consume --group`
against real groups of confluent-kafka consumers: describe's lag and columns,
reset-offsets (dry run, --execute, refused while members are active,
--to-earliest, --to-datetime), and the CLI as a group member that commits."""
import json
import signal
import subprocess
import time

import pytest

pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer  # noqa: E402

from fjordtest.binaries import fjord_cli, require  # noqa: E402
from fjordtest.kafka import create_topic  # noqa: E402
from fjordtest.waits import wait_until  # noqa: E402
from groups.gutil import Member, committed, consumer_conf, produce, wait_balanced  # noqa: E402

FJORD_CLI = fjord_cli()

COLUMNS = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
           "CONSUMER-ID", "HOST", "CLIENT-ID"]


@pytest.fixture(autouse=True)
def _need_cli():
    require(FJORD_CLI)


def fjord(*args, check=True, timeout=60):
    p = subprocess.run([FJORD_CLI] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, "fjord %s: rc=%d\n%s" % (" ".join(map(str, args)), p.returncode, p.stderr)
    return p


def table(text):
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return rows[0], rows[1:]


def describe(bs, group):
    p = fjord("--output", "json", "group", "describe", "--group", group, "--bootstrap-server", bs)
    return {(r["topic"], int(r["partition"])): r for r in json.loads(p.stdout)}


def consume_some(bs, group, topic, n):
    """A member that reads n messages, committing each synchronously; returned
    still subscribed (it stops polling: a consumer stopped midway)."""
    c = Consumer(consumer_conf(bs, group, **{"client.id": "lag-probe"}))
    c.subscribe([topic])
    got = 0
    deadline = time.time() + 60
    while got < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got += 1
        c.commit(message=m, asynchronous=False)
    assert got == n
    return c


def member_with_commits(bs, group, topic, partitions, produced, consumed):
    """A new topic of `partitions` holding `produced` records, and a live member
    of `group` that has consumed and committed `consumed` of them."""
    create_topic(bs, topic, partitions)
    produce(bs, topic, produced, partitions=partitions)
    return consume_some(bs, group, topic, consumed)


def test_describe_shows_lag_while_a_consumer_is_stopped_midway(gcluster, topic_name, group_name):
    bs = gcluster.bootstrap
    c = member_with_commits(bs, group_name, topic_name, 3, 300, 120)
    try:
        # Which partitions the 120 came from is the client's business; a partition
        # with nothing committed shows "-" for CURRENT-OFFSET and LAG, as Kafka's does.
        offs = {p: o for p, o in committed(bs, group_name, topic_name, 3).items() if o >= 0}
        assert sum(offs.values()) == 120
        # Text: kafka-consumer-groups' columns, the member's identity on each row.
        p = fjord("group", "describe", "--group", group_name, "--bootstrap-server", bs)
        head, rows = table(p.stdout)
        assert head == COLUMNS
        assert len(rows) == 3
        for r in rows:
            part = int(r[2])
            assert r[0] == group_name and r[1] == topic_name and r[4] == "100"
            if part in offs:
                assert int(r[3]) == offs[part] and int(r[5]) == 100 - offs[part]
            else:
                assert r[3] == "-" and r[5] == "-"
            assert r[6].startswith("lag-probe-") and r[7] == "/127.0.0.1" and r[8] == "lag-probe"
        st = json.loads(fjord("--output", "json", "group", "describe", "--group", group_name,
                              "--state", "--bootstrap-server", bs).stdout)
        assert st[0]["state"] == "Stable" and st[0]["#members"] == "1"
    finally:
        c.close()
    # Stopped for good: same lag, no owner ("-" where kafka-consumer-groups has none).
    d = describe(bs, group_name)
    assert {p for (_, p) in d} == set(offs)  # rows for committed partitions only, now
    assert sum(int(r["lag"]) for r in d.values()) == 100 * len(offs) - 120
    assert all(r["consumer-id"] == "-" and r["host"] == "-" and r["client-id"] == "-" for r in d.values())
    p = fjord("group", "describe", "--group", group_name, "--bootstrap-server", bs)
    assert "has no active members" in p.stderr


def test_reset_offsets_to_earliest_execute_makes_the_next_consumer_reread(gcluster, topic_name, group_name):
    bs = gcluster.bootstrap
    n = 240
    c = member_with_commits(bs, group_name, topic_name, 3, n, n)
    try:
        # Refused while the group has an active member, as Kafka refuses it.
        p = fjord("group", "reset-offsets", "--group", group_name, "--topic", topic_name,
                  "--to-earliest", "--execute", "--bootstrap-server", bs, check=False)
        assert p.returncode != 0 and "inactive" in p.stderr, p.stderr
    finally:
        c.close()
    assert committed(bs, group_name, topic_name, 3) == {0: 80, 1: 80, 2: 80}
    # Dry run (the default): prints the plan, changes nothing.
    p = fjord("group", "reset-offsets", "--group", group_name, "--topic", topic_name,
              "--to-earliest", "--bootstrap-server", bs)
    head, rows = table(p.stdout)
    assert head == ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]
    assert sorted((int(r[2]), int(r[3])) for r in rows) == [(0, 0), (1, 0), (2, 0)]
    assert committed(bs, group_name, topic_name, 3) == {0: 80, 1: 80, 2: 80}
    fjord("group", "reset-offsets", "--group", group_name, "--topic", topic_name,
          "--to-earliest", "--execute", "--bootstrap-server", bs)
    assert committed(bs, group_name, topic_name, 3) == {0: 0, 1: 0, 2: 0}
    again = Member(bs, group_name, topic_name, commit_sync=True)
    again.start()
    try:
        wait_until(lambda: len(again.values) >= n, 60, what="re-read of %d messages" % n)
        time.sleep(0.5)
        assert sorted(again.values) == sorted("m-%d" % i for i in range(n))
    finally:
        again.stop()
    # --shift-by and --to-offset on one partition, clamped to the log.
    fjord("group", "reset-offsets", "--group", group_name, "--topic", topic_name + ":1",
          "--to-offset", "500", "--execute", "--bootstrap-server", bs)
    fjord("group", "reset-offsets", "--group", group_name, "--topic", topic_name + ":2",
          "--shift-by", "-30", "--execute", "--bootstrap-server", bs)
    assert committed(bs, group_name, topic_name, 3) == {0: 80, 1: 80, 2: 50}


def test_reset_offsets_to_datetime_lands_on_first_offset_at_or_after(gcluster, topic_name, group_name):
    bs = gcluster.bootstrap
    create_topic(bs, topic_name, 3)
    produce(bs, topic_name, 90, partitions=3, prefix="early")
    time.sleep(1.2)
    t = int(time.time() * 1000)
    time.sleep(1.2)
    produce(bs, topic_name, 60, partitions=3, prefix="late")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1000)) + ".%03d" % (t % 1000)
    fjord("group", "reset-offsets", "--group", group_name, "--topic", topic_name,
          "--to-datetime", stamp, "--execute", "--bootstrap-server", bs)
    # 30 early messages per partition: the first at or after t is offset 30 everywhere.
    assert committed(bs, group_name, topic_name, 3) == {0: 30, 1: 30, 2: 30}
    m = Member(bs, group_name, topic_name)
    m.start()
    try:
        wait_until(lambda: len(m.values) >= 60, 60, what="the 60 late messages")
        time.sleep(0.5)
        assert sorted(m.values) == sorted("late-%d" % i for i in range(60))
    finally:
        m.stop()


def test_fjord_consume_group_with_max_messages_commits_what_it_printed(gcluster, topic_name, group_name):
    bs = gcluster.bootstrap
    create_topic(bs, topic_name, 1)
    produce(bs, topic_name, 100, partitions=1)
    for start in (0, 30):
        p = fjord("consume", topic_name, "--group", group_name, "--from-beginning",
                  "--max-messages", 30, "--bootstrap-server", bs)
        assert p.stdout.split() == ["m-%d" % i for i in range(start, start + 30)]
        assert "Processed a total of 30 messages" in p.stderr
        assert committed(bs, group_name, topic_name, 1) == {0: start + 30}
    # The member left: the group is empty, its offset in the coordinator.
    st = json.loads(fjord("--output", "json", "group", "describe", "--group", group_name,
                          "--state", "--bootstrap-server", bs).stdout)
    assert st[0]["state"] == "Empty"


def test_fjord_consume_group_shares_a_group_with_librdkafka(gcluster, topic_name, group_name):
    bs = gcluster.bootstrap
    n = 600
    create_topic(bs, topic_name, 6)
    rd = Member(bs, group_name, topic_name, commit_sync=True)
    rd.start()
    wait_balanced([rd], 6, sizes=[6])
    cli = subprocess.Popen([FJORD_CLI, "consume", topic_name, "--group", group_name,
                            "--bootstrap-server", bs], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        # The range assignor splits 6 partitions 3/3 between the two members.
        wait_balanced([rd], 3, sizes=[3], timeout=30)

        def members():
            p = fjord("--output", "json", "group", "describe", "--group", group_name, "--members",
                      "--bootstrap-server", bs, check=False)
            return p.returncode == 0 and sorted(int(m["#partitions"]) for m in json.loads(p.stdout)) == [3, 3]
        wait_until(members, 30, what="two members with 3 partitions each")
        produce(bs, topic_name, n)
        wait_until(lambda: sum(committed(bs, group_name, topic_name).values()) == n, 60,
                   what="all %d messages committed" % n)
    finally:
        cli.send_signal(signal.SIGTERM)  # commits, then leaves the group
        out, err = cli.communicate(timeout=30)
        rd.stop()
    assert cli.returncode == 0, err
    mine = out.split()
    assert len(mine) > 0 and len(rd.values) > 0
    everything = mine + rd.values
    assert sorted(everything) == sorted("m-%d" % i for i in range(n))  # each exactly once
    assert "Processed a total of %d messages" % len(mine) in err


def test_group_list_delete_offsets_and_delete(gcluster, topic_name, group_name):
    bs = gcluster.bootstrap
    c = member_with_commits(bs, group_name, topic_name, 2, 40, 40)
    try:
        assert group_name in fjord("group", "list", "--bootstrap-server", bs).stdout.split()
        p = fjord("group", "delete", "--group", group_name, "--bootstrap-server", bs, check=False)
        assert p.returncode != 0 and "NON_EMPTY_GROUP" in p.stderr, p.stderr
        # Offsets of a topic the active group subscribes to stay (GROUP_SUBSCRIBED_TO_TOPIC).
        p = fjord("group", "delete-offsets", "--group", group_name, "--topic", topic_name,
                  "--bootstrap-server", bs)
        assert "GROUP_SUBSCRIBED_TO_TOPIC" in p.stdout
    finally:
        c.close()
    p = fjord("group", "delete-offsets", "--group", group_name, "--topic", topic_name + ":1",
              "--bootstrap-server", bs)
    assert "Successful" in p.stdout
    assert committed(bs, group_name, topic_name, 2) == {0: 20, 1: -1001}
    fjord("group", "delete", "--group", group_name, "--bootstrap-server", bs)
    p = fjord("group", "describe", "--group", group_name, "--bootstrap-server", bs, check=False)
    assert p.returncode != 0 and "does not exist" in p.stderr
    assert group_name not in fjord("group", "list", "--bootstrap-server", bs).stdout.split()
    z = fjord("znode", "--coord", gcluster.coord.hosts, "ls", "/consumers")
    assert group_name not in z.stdout
