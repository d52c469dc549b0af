"""fjord-console (issue 15) in a real browser: Debian's headless Chromium driven
by chromium-driver through selenium (the driver's path is given, so selenium's
driver manager never runs and nothing is downloaded), against one fjord-coord
and three fjord-brokers from fjordtest.

The user's day (test_users_day): the overview shows 3 brokers up; a topic is
created in the form (3 partitions, RF 3); kcat produces 1,000 messages with a
header to partition 0 in two halves a moment apart; message 500 is found by
offset (through the browse form) and by the timestamp between the halves, and
its value and header are read off the page; a confluent-kafka group that stops
after 500 messages shows committed 500, end 1000, lag 500; it is reset to
earliest through preview then execute while empty, and a consumer in the group
then reads offset 0 first; it is shifted by +250 (preview, execute) and a
shift of -1000 previews clamped to 0; deleting the group is refused while a
member is in it, a wrong name deletes nothing, and the typed name deletes it;
the overview and /zk show the coordinator ensemble; the coordinator's /brokers/ids znodes are browsed
(children, data, Stat); the topic is deleted through the confirmation step
(a wrong name deletes nothing); a broker is killed -9 and the overview shows
it down and the under-replicated partitions within 30 s. A screenshot of each
page is saved in a directory whose path the test prints.

Safety (test_safety): a read-only console shows no create form and no delete
link and answers 403 to a POST; a POST without (or with a wrong) CSRF token
is refused with 403 and creates nothing; a value holding `<script>` shows as
text and no script runs in the browser. test_ensemble: a three-member
coordinator ensemble shows one leader and two followers with their zxids, and
a member killed -9 as down. test_unreachable_brokers: a console
whose bootstrap port is closed, and one whose broker accepts but never
answers, each give an error page within its timeout instead of hanging.
"""
import os
import re
import socket
import subprocess
import time
import urllib.parse

import pytest

ck = pytest.importorskip("confluent_kafka")
selenium = pytest.importorskip("selenium")
from confluent_kafka import Consumer  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from console.browser import (Browser, Console, chromium, http, require_console,  # noqa: E402
                             screenshot_dir)
from fjordtest.broker import Cluster, require_brokers  # noqa: E402
from fjordtest.kafka import create_topic  # noqa: E402
from fjordtest.net import HOST, free_port, hostport  # noqa: E402


@pytest.fixture(scope="module")
def env():
    require_brokers()
    require_console()
    cluster = Cluster(3)
    shots = screenshot_dir()
    consoles = []
    driver = None
    try:
        base = {"bootstrap.servers": cluster.bootstrap,
                "zookeeper.connect": cluster.coord.hosts,
                "console.request.timeout.ms": 5000}
        rw = Console(cluster.dir, "console", base).start()
        ro = Console(cluster.dir, "console-ro", dict(base, **{"console.read.only": "true"})).start()
        consoles += [rw, ro]
        driver = chromium()
        yield {"cluster": cluster, "rw": rw, "ro": ro, "driver": driver, "shots": shots}
    finally:
        if driver is not None:
            driver.quit()
        for c in consoles:
            c.stop()
        cluster.close()


def kcat_produce(bootstrap, topic, lines, partition=0):
    out = subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", str(partition),
                          "-K", ":", "-H", "trace=abc", "-H", "source=kcat"],
                         input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_users_day(env):
    b = Browser(env["driver"], env["rw"].url, env["shots"])
    c = env["cluster"]
    topic = "day"
    # Overview: 3 brokers up, none down.
    b.go("/")
    assert b.text("#brokers-up") == "3"
    assert b.text("#brokers-down") == "0"
    assert int(b.text("#controller")) in (1, 2, 3)
    assert sorted(r[0] for r in b.rows("broker-status")) == ["1", "2", "3"]
    # The coordinator ensemble (one standalone member here; test_ensemble has three).
    ens = b.rows("ensemble")
    assert len(ens) == 1 and ens[0][0] == c.coord.hosts and ens[0][1] == "standalone", ens
    assert re.fullmatch(r"0x[0-9a-f]+", ens[0][2]) and int(ens[0][3]) > 0, ens
    assert b.text("#ensemble-leader") == c.coord.hosts
    b.shot("overview")

    # Create a topic in the form.
    b.go("/topics")
    b.d.find_element(By.ID, "new-topic-name").send_keys(topic)
    for fid, v in (("new-topic-partitions", "3"), ("new-topic-rf", "3")):
        el = b.d.find_element(By.ID, fid)
        el.clear()
        el.send_keys(v)
    b.shot("topics-create")
    b.click("create-topic-submit")
    assert "Created topic day." in b.body()
    assert b.d.current_url.startswith(b.base + "/topics/day")
    parts = b.rows("partitions")
    assert [r[0] for r in parts] == ["0", "1", "2"]
    assert all(len(r[2].split(",")) == 3 for r in parts), parts
    b.shot("topic-created")

    # 1,000 messages with kcat to partition 0, in two halves a moment apart.
    kcat_produce(c.bootstrap, topic, ["k%d:value-%d" % (i, i) for i in range(500)])
    time.sleep(1.2)
    mid_ms = int(time.time() * 1000)
    time.sleep(0.3)
    kcat_produce(c.bootstrap, topic, ["k%d:value-%d" % (i, i) for i in range(500, 1000)])
    b.go("/topics/day")
    b.wait(lambda: b.rows("partitions")[0][5] == "1000", 15, "latest offset 1000 on partition 0")
    assert b.rows("partitions")[0][4] == "0"
    # Each partition's size (DescribeLogDirs): 1,000 messages on 0, none on 1.
    assert b.rows("partitions")[0][6].endswith("KiB"), b.rows("partitions")
    assert b.rows("partitions")[1][6] == "0 B", b.rows("partitions")
    b.shot("topic-offsets")

    # Brokers: each one's log directory and what it holds (a replica of "day" each),
    # and a broker's page with its replicas by size and its configs.
    b.go("/brokers")
    rows = {r[0]: r for r in b.rows("brokers")}
    assert sorted(rows) == ["1", "2", "3"], rows
    for i in ("1", "2", "3"):
        assert rows[i][6] == c.broker(int(i)).log_dir, rows[i]
        assert rows[i][7].endswith("KiB") and " of " in rows[i][8], rows[i]
    b.go("/brokers/2")
    reps = b.rows("replicas")
    assert reps[0][:2] == ["day", "0"] and reps[0][2].endswith("KiB"), reps
    configs = {r[0]: r for r in b.rows("broker-configs")}
    assert configs["broker.id"][1:] == ["2", "STATIC_BROKER_CONFIG"], configs.get("broker.id")
    b.shot("broker")

    # Message 500 by offset, through the browse form.
    b.go("/topics/day/messages")
    Select(b.d.find_element(By.ID, "partition")).select_by_value("0")
    b.d.find_element(By.ID, "offset").send_keys("500")
    lim = b.d.find_element(By.ID, "limit")
    lim.clear()
    lim.send_keys("3")
    b.click("browse-submit")
    rows = b.rows("messages")
    assert [r[1] for r in rows] == ["500", "501", "502"], rows
    assert rows[0][3] == "k500" and rows[0][4] == "value-500"
    assert "trace: abc" in rows[0][5] and "source: kcat" in rows[0][5]
    assert "partition=0" in b.d.current_url and "offset=500" in b.d.current_url
    b.shot("messages-by-offset")

    # ... and by the timestamp between the halves (a bookmarkable URL).
    b.go("/topics/day/messages?partition=0&timestamp=%d&limit=1" % mid_ms)
    rows = b.rows("messages")
    assert len(rows) == 1 and rows[0][1] == "500" and rows[0][4] == "value-500", rows
    b.shot("messages-by-timestamp")
    # Hex decoding and a filter with a scan bound.
    b.go("/topics/day/messages?partition=0&offset=500&limit=1&format=hex")
    assert b.rows("messages")[0][4] == "76 61 6c 75 65 2d 35 30 30"
    b.go("/topics/day/messages?partition=0&offset=0&filter=value-99&limit=50")
    assert sorted(r[1] for r in b.rows("messages")) == ["99"] + [str(x) for x in range(990, 1000)]
    b.go("/topics/day/messages?partition=0&offset=0&filter=value-999&scan=100")
    assert b.rows("messages") == []
    assert "Stopped after scanning 100 records" in b.body()
    # A regular expression (the same text without the box ticked is a literal).
    b.go("/topics/day/messages?partition=0&offset=0&filter=%s&regex=1&limit=50"
         % urllib.parse.quote("^value-(12|77)$"))
    assert sorted(r[1] for r in b.rows("messages")) == ["12", "77"]
    b.go("/topics/day/messages?partition=0&offset=0&filter=%s&limit=50"
         % urllib.parse.quote("^value-(12|77)$"))
    assert b.rows("messages") == []
    b.go("/topics/day/messages?partition=0&offset=0&filter=a(b&regex=1")
    assert "invalid regular expression" in b.body()

    # A group that stops halfway: 500 read and committed, then it leaves.
    group = "day-readers"
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    cons.subscribe([topic])
    got = 0
    deadline = time.time() + 60
    while got < 500 and time.time() < deadline:
        m = cons.poll(1.0)
        if m is None or m.error():
            continue
        got += 1
        if got == 500:
            cons.commit(message=m, asynchronous=False)
    cons.close()
    assert got == 500
    b.go("/groups")
    b.wait(lambda: any(r[0] == group and r[4] == "500" for r in b.rows("groups")), 20,
           "group with lag 500 in the list")
    b.shot("groups")
    b.go("/groups/" + group)
    b.wait(lambda: b.text("#group-state") == "Empty", 20, "group Empty")
    p0 = [r for r in b.rows("offsets") if r[1] == "0"][0]
    assert p0[2:] == ["500", "1000", "500"], p0
    b.shot("group-lag")

    # Reset to earliest: preview, then execute.
    Select(b.d.find_element(By.ID, "reset-strategy")).select_by_value("earliest")
    b.click("reset-preview")
    prev = b.rows("reset-preview")
    assert ["day", "0", "500", "0"] in prev, prev
    b.shot("reset-preview")
    b.click("reset-execute")
    assert "Offsets reset." in b.body()
    p0 = [r for r in b.rows("offsets") if r[1] == "0"][0]
    assert p0[2:] == ["0", "1000", "1000"], p0
    b.shot("reset-done")
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                     "auto.offset.reset": "latest", "enable.auto.commit": False})
    cons.subscribe([topic])
    first = None
    deadline = time.time() + 30
    while first is None and time.time() < deadline:
        m = cons.poll(1.0)
        if m is not None and not m.error():
            first = (m.partition(), m.offset(), m.value())
    cons.close()
    assert first == (0, 0, b"value-0"), first

    # Shift by N: +250 from the committed 0 (preview, execute); a shift past
    # the start is clamped to the earliest offset (preview only).
    b.go("/groups/" + group)
    b.wait(lambda: (b.go("/groups/" + group), b.text("#group-state") == "Empty")[1], 20,
           "group Empty again")
    for value, current, new in (("250", "0", "250"), ("-1000", "250", "0")):
        Select(b.d.find_element(By.ID, "reset-strategy")).select_by_value("shift")
        b.d.find_element(By.ID, "reset-value").send_keys(value)
        b.d.find_element(By.ID, "reset-topic").send_keys(topic)
        b.click("reset-preview")
        prev = b.rows("reset-preview")
        assert ["day", "0", current, new] in prev, (value, prev)
        if value == "250":
            b.shot("shift-preview")
            b.click("reset-execute")
            assert "Offsets reset." in b.body()
            p0 = [r for r in b.rows("offsets") if r[1] == "0"][0]
            assert p0[2:] == ["250", "1000", "750"], p0
        else:
            b.go("/groups/" + group)
    p0 = [r for r in b.rows("offsets") if r[1] == "0"][0]
    assert p0[2] == "250", p0  # the second shift was only previewed

    # Delete the group: refused while a member is in it, a wrong name deletes
    # nothing, then the typed name deletes it and its offsets.
    live = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    live.subscribe([topic])
    deadline = time.time() + 30
    while not live.assignment() and time.time() < deadline:
        live.poll(0.5)
    assert live.assignment()
    b.go("/groups/" + group)
    b.click("delete-group")
    b.d.find_element(By.ID, "confirm-group-name").send_keys(group)
    b.click("confirm-delete-group-submit")
    assert "Not deleted" in b.body() and "NON_EMPTY_GROUP" in b.body(), b.body()
    live.close()
    b.wait(lambda: (b.go("/groups/" + group), b.text("#group-state") == "Empty")[1], 20,
           "group Empty after its member left")
    b.click("delete-group")
    b.d.find_element(By.ID, "confirm-group-name").send_keys(group + "x")
    b.click("confirm-delete-group-submit")
    assert "nothing was deleted" in b.body()
    b.go("/groups/" + group)
    b.click("delete-group")
    b.shot("delete-group-confirm")
    b.d.find_element(By.ID, "confirm-group-name").send_keys(group)
    b.click("confirm-delete-group-submit")
    assert "Deleted group %s." % group in b.body()
    assert group not in [r[0] for r in b.rows("groups")]
    b.go("/groups/" + group)
    assert b.text("#group-state") == "Dead"
    assert all(r[2] == "-" for r in b.rows("offsets")), b.rows("offsets")
    b.shot("group-deleted")

    # The coordinator's znodes.
    b.go("/zk?path=%2Fbrokers%2Fids")
    kids = [li.text for li in b.d.find_elements(By.CSS_SELECTOR, "#children li")]
    assert kids == ["1", "2", "3"], kids
    href = b.d.find_element(By.LINK_TEXT, "2").get_attribute("href")
    assert href.endswith("/zk?path=%2Fbrokers%2Fids%2F2"), href
    b.go("/zk")
    assert [r[0] for r in b.rows("ensemble")] == [c.coord.hosts]
    # mntr's figures: the three brokers' sessions at least, and the znode count.
    assert int(b.text("#sessions")) >= 3
    figures = dict((r[0], r[1]) for r in b.rows("mntr"))
    assert int(figures["znode_count"]) > 0, figures
    b.d.get(href)
    assert '"port"' in b.text("#znode-data")
    stat = dict((r[0], r[1]) for r in b.rows("stat"))
    assert stat["ephemeralOwner"] != "0x0" and int(stat["dataLength"]) > 0, stat
    b.shot("znode")

    # Delete the topic through the confirmation step (a wrong name deletes nothing).
    b.go("/topics/day")
    b.click("delete-topic")
    b.d.find_element(By.ID, "confirm-name").send_keys("dya")
    b.click("confirm-delete-submit")
    assert "nothing was deleted" in b.body()
    b.go("/topics/day")
    b.click("delete-topic")
    b.shot("delete-confirm")
    b.d.find_element(By.ID, "confirm-name").send_keys("day")
    b.click("confirm-delete-submit")
    assert "Deleted topic day." in b.body()
    b.wait(lambda: (b.go("/topics"), "day" not in [r[0] for r in b.rows("topics")])[1], 20,
           "topic gone from the list")
    b.shot("topic-deleted")

    # kill -9 one broker: down and under-replicated on the overview within 30 s.
    create_topic(c.bootstrap, "rf3", 3, 3)
    b.go("/")
    b.wait(lambda: (b.go("/"), b.text("#under-replicated") == "0")[1], 20, "all in sync")
    victim = c.broker(3)
    victim.kill9()
    t0 = time.time()
    b.wait(lambda: (b.go("/"), b.text("#brokers-down") == "1"
                    and int(b.text("#under-replicated")) >= 3)[1], 30,
           "broker down and under-replicated partitions")
    print("under-replicated shown %.1f s after kill -9" % (time.time() - t0))
    assert b.text("#brokers-up") == "2"
    assert any(r[0] == "rf3" for r in b.rows("under-replicated-partitions"))
    b.shot("overview-broker-down")


def test_safety(env):
    c = env["cluster"]
    rw, ro = env["rw"], env["ro"]
    d = env["driver"]
    create_topic(c.bootstrap, "safe", 1, 1)
    # Read-only: no forms or delete links, and every POST is 403.
    st, page = http(ro.url + "/topics")
    assert st == 200 and 'id="read-only"' in page
    assert "create-topic" not in page and "<form method=\"post\"" not in page
    st, page = http(ro.url + "/topics/safe")
    assert st == 200 and "delete-topic" not in page
    st, page = http(ro.url + "/topics/safe/delete")
    assert st == 403
    st, page = http(ro.url + "/groups/g/delete")
    assert st == 403
    st, page = http(rw.url + "/groups/g")
    assert st == 200 and 'id="delete-group"' in page and 'id="reset-form"' in page
    st, page = http(ro.url + "/groups/g")
    assert st == 200 and "delete-group" not in page and "reset-form" not in page
    for path, form in (("/topics", {"name": "ro-made", "partitions": "1", "replication": "1"}),
                       ("/topics/safe/delete", {"confirm": "safe"}),
                       ("/groups/g/reset", {"strategy": "earliest", "step": "execute"}),
                       ("/groups/g/delete", {"confirm": "g"})):
        st, page = http(ro.url + path, form)
        assert st == 403 and "read-only" in page, (path, st)
    # CSRF: without the token, or with a wrong one, nothing is created.
    st, page = http(rw.url + "/topics", {"name": "csrf-made", "partitions": "1", "replication": "1"})
    assert st == 403 and "CSRF" in page
    st, page = http(rw.url + "/topics", {"name": "csrf-made", "partitions": "1",
                                          "replication": "1", "csrf": "0" * 64})
    assert st == 403
    st, page = http(rw.url + "/topics/safe/delete", {"confirm": "safe"})
    assert st == 403
    st, page = http(rw.url + "/topics")
    assert "csrf-made" not in page and "ro-made" not in page and ">safe<" in page
    # With the page's token the same POST works (so the refusals above were the token's).
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    st, _ = http(rw.url + "/topics", {"name": "csrf-ok", "partitions": "1",
                                       "replication": "1", "csrf": token})
    assert st == 200  # urllib follows the 303 to the topic page
    # A value and key with markup render as text; no script runs.
    evil = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"
    subprocess.run(["kcat", "-P", "-b", c.bootstrap, "-t", "safe", "-K", "|",
                    "-H", "h=<script>window.__xss=3</script>"],
                   input="<b>k</b>|%s\n" % evil, text=True, check=True, timeout=30)
    d.get(rw.url + "/topics/safe/messages?partition=0&offset=0")
    time.sleep(0.5)
    cells = d.find_elements(By.CSS_SELECTOR, "#messages tbody tr td")
    assert cells[4].text == evil and cells[3].text == "<b>k</b>", [x.text for x in cells]
    assert "h: <script>window.__xss=3</script>" in cells[5].text
    assert d.execute_script("return window.__xss === undefined") is True
    assert d.find_elements(By.CSS_SELECTOR, "#messages script, #messages img, #messages b") == []
    d.save_screenshot(os.path.join(env["shots"], "xss-as-text.png"))


def test_unreachable_brokers(env):
    c = env["cluster"]
    closed = free_port()
    silent = socket.socket()
    silent.bind((HOST, 0))
    silent.listen(16)  # accepts into the backlog, never answers
    made = []
    try:
        for name, bs in (("console-closed", "%s:%d" % (HOST, closed)),
                         ("console-silent", "%s:%d" % (HOST, silent.getsockname()[1]))):
            con = Console(c.dir, name, {"bootstrap.servers": bs,
                                        "console.request.timeout.ms": 1500})
            made.append(con)
            con.start()
            t0 = time.time()
            st, page = http(con.url + "/", timeout=20)
            took = time.time() - t0
            assert st in (502, 504), (name, st)
            assert "cannot reach the brokers" in page or "did not answer" in page, page
            assert took < 10, (name, took)
            # Other pages say so too; the coordinator page says it is off.
            st, page = http(con.url + "/zk", timeout=20)
            assert st == 200 and "zookeeper.connect is not set" in page
    finally:
        silent.close()
        for con in made:
            con.stop()


def test_ensemble(env):
    """A three-member coordinator ensemble on /zk and the overview: one leader,
    two followers, each with its zxid; a member killed -9 shows as down while
    the page still renders."""
    from fjordtest.ensemble import running
    d = env["driver"]
    with running(3) as ens:
        con = Console(ens.dir, "console-ensemble",
                      {"bootstrap.servers": env["cluster"].bootstrap,
                       "zookeeper.connect": ens.hosts(),
                       "console.request.timeout.ms": 3000}).start()
        try:
            def rows(path):
                d.get(con.url + path)
                return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                        for tr in d.find_elements(By.CSS_SELECTOR, "#ensemble tbody tr")]
            leader = ens.wait_leader()
            for path in ("/zk", "/"):
                got = rows(path)
                assert [r[0] for r in got] == [hostport(m.port) for m in ens.members], got
                assert sorted(r[1] for r in got) == ["follower", "follower", "leader"], got
                assert all(re.fullmatch(r"0x[0-9a-f]+", r[2]) for r in got), got
                assert d.find_element(By.ID, "ensemble-leader").text == hostport(leader.port)
            d.save_screenshot(os.path.join(env["shots"], "ensemble.png"))
            victim = [m for m in ens.members if m is not leader][0]
            victim.kill9()
            got = {r[0]: r for r in rows("/")}
            assert got[hostport(victim.port)][1].startswith("down"), got
            assert sorted(r[1] for r in got.values() if not r[1].startswith("down")) == \
                ["follower", "leader"], got
            d.save_screenshot(os.path.join(env["shots"], "ensemble-member-down.png"))
        finally:
            con.stop()
