"""fjord-console's live parts and topic edits (issue 15) in Debian's headless
Chromium, against one fjord-coord and one fjord-broker from fjordtest.

test_live_tail: the messages page's "Live tail" link opens a tail that starts
at the log end (older messages are not shown); messages produced with
confluent-kafka afterwards appear in the page without a reload (a marker set
in the page's window survives), markup in a value shows as text, Pause stops
new rows until Resume, and a tail with a filter shows only the matching
messages.
test_topic_edit: retention.ms set in the topic page's config form is what
confluent-kafka's AdminClient.describe_configs reads back; removing the line
returns it to the default; a malformed line is refused; the partition count
raised in the form is what Metadata reports, and lowering it is refused; a
read-only console shows neither form and answers 403 to their POSTs, and a
POST without the CSRF token changes nothing.
test_charts: with console.sample.interval.ms=300, the overview's produce and
consume charts are SVG polylines whose maximum is above 0 after a producer
and a committing consumer ran, the total lag card shows the group's lag, and
the group page's lag chart shows it too, and so does the topic list's group
lag column; the list shows the topic's size, and sorts by a column from its header."""
import re
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
pytest.importorskip("selenium")
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from console.browser import (Browser, Console, chromium, http, require_console,  # noqa: E402
                             screenshot_dir, set_text)
from fjordtest.broker import Cluster, require_brokers  # noqa: E402
from fjordtest.kafka import create_topic  # noqa: E402


@pytest.fixture(scope="module")
def live():
    require_brokers()
    require_console()
    cluster = Cluster(1)
    made = []
    driver = None
    try:
        base = {"bootstrap.servers": cluster.bootstrap,
                "console.request.timeout.ms": 5000,
                "console.sample.interval.ms": 300}
        rw = Console(cluster.dir, "console-live", base).start()
        ro = Console(cluster.dir, "console-live-ro", dict(base, **{"console.read.only": "true"})).start()
        made += [rw, ro]
        driver = chromium()
        yield {"cluster": cluster, "rw": rw, "ro": ro,
               "b": Browser(driver, rw.url, screenshot_dir())}
    finally:
        if driver is not None:
            driver.quit()
        for p in made:
            p.stop()
        cluster.close()


def produce(bootstrap, topic, values, partition=0):
    p = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        p.produce(topic, key=b"k", value=v.encode(), partition=partition)
    assert p.flush(30) == 0


def tail_values(b):
    return [r[4] for r in b.rows("tail")]


def test_live_tail(live):
    c, b = live["cluster"], live["b"]
    create_topic(c.bootstrap, "tail", 2, 1)
    produce(c.bootstrap, "tail", ["old-%d" % i for i in range(5)])
    b.go("/topics/tail/messages")
    assert len(b.rows("messages")) == 5
    b.click("live-tail")
    assert b.d.current_url.startswith(b.base + "/topics/tail/tail")
    assert b.rows("tail") == []
    b.d.execute_script("window.__notReloaded = 1")
    b.wait(lambda: b.text("#tail-status").startswith("Live: 0 new"), 15, "the first poll")
    evil = "<img src=x onerror=\"window.__xss=1\">"
    produce(c.bootstrap, "tail", ["live-0", "live-1", evil], partition=1)
    produce(c.bootstrap, "tail", ["live-2"], partition=0)
    b.wait(lambda: sorted(tail_values(b)) == sorted(["live-0", "live-1", evil, "live-2"]), 20,
           "the new messages in the tail")
    rows = b.rows("tail")
    assert [(r[0], r[1]) for r in rows if r[4] == "live-2"] == [("0", "5")], rows
    assert [(r[0], r[1]) for r in rows if r[4] == "live-1"] == [("1", "1")], rows
    assert not any(v.startswith("old-") for v in tail_values(b))
    assert b.d.execute_script("return window.__notReloaded") == 1
    assert b.d.execute_script("return window.__xss === undefined") is True
    assert b.d.find_elements(By.CSS_SELECTOR, "#tail img") == []
    assert b.text("#tail-status").startswith("Live: 4 new")
    b.shot("live-tail")

    # Pause: nothing new is added until Resume.
    b.d.find_element(By.ID, "tail-pause").click()
    assert b.text("#tail-pause") == "Resume"
    produce(c.bootstrap, "tail", ["while-paused"])
    time.sleep(2.5)  # several poll periods: a poll here would have added it
    assert "while-paused" not in tail_values(b)
    b.d.find_element(By.ID, "tail-pause").click()
    b.wait(lambda: "while-paused" in tail_values(b), 20, "the message produced while paused")
    assert b.d.execute_script("return window.__notReloaded") == 1

    # A filtered tail of one partition: only the matching messages.
    b.go("/topics/tail/tail?partition=0&filter=needle")
    b.wait(lambda: b.text("#tail-status").startswith("Live: 0 new"), 15, "the first poll")
    produce(c.bootstrap, "tail", ["hay-1", "needle-1", "hay-2"], partition=0)
    produce(c.bootstrap, "tail", ["needle-other-partition"], partition=1)
    produce(c.bootstrap, "tail", ["needle-2"], partition=0)
    b.wait(lambda: "needle-2" in tail_values(b), 20, "needle-2 in the filtered tail")
    assert tail_values(b) == ["needle-1", "needle-2"], tail_values(b)
    b.shot("live-tail-filtered")


def topic_configs(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([res])[res].result(timeout=30)


def partition_count(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return len(admin.list_topics(topic, timeout=30).topics[topic].partitions)


def test_topic_edit(live):
    c, b, ro, rw = live["cluster"], live["b"], live["ro"], live["rw"]
    create_topic(c.bootstrap, "edit", 1, 1)
    default = topic_configs(c.bootstrap, "edit")["retention.ms"].value
    assert default != "123456789"
    b.go("/topics/edit")
    assert b.d.find_elements(By.ID, "no-topic-configs")
    set_text(b, "topic-configs-text", "retention.ms=123456789")
    b.click("edit-configs-submit")
    assert "Saved the configs of edit." in b.body()
    assert b.rows("topic-configs") == [["retention.ms", "123456789"]]
    assert topic_configs(c.bootstrap, "edit")["retention.ms"].value == "123456789"
    b.shot("topic-configs-saved")
    # The form holds the current lines; a malformed one is refused.
    assert b.d.find_element(By.ID, "topic-configs-text").get_attribute("value") == "retention.ms=123456789\n"
    set_text(b, "topic-configs-text", "retention.ms")
    b.click("edit-configs-submit")
    assert "expected key=value" in b.body()
    assert topic_configs(c.bootstrap, "edit")["retention.ms"].value == "123456789"
    # Removing the line goes back to the default.
    b.go("/topics/edit")
    set_text(b, "topic-configs-text", "")
    b.click("edit-configs-submit")
    assert "Saved the configs of edit." in b.body()
    assert topic_configs(c.bootstrap, "edit")["retention.ms"].value == default
    assert b.d.find_elements(By.ID, "no-topic-configs")

    # Add partitions: 1 -> 3; 2 would not be an increase.
    set_text(b, "partition-count", "3")
    b.click("add-partitions-submit")
    assert "Topic edit now has 3 partitions." in b.body()
    assert [r[0] for r in b.rows("partitions")] == ["0", "1", "2"]
    assert partition_count(c.bootstrap, "edit") == 3
    b.shot("topic-partitions-added")
    set_text(b, "partition-count", "2")
    b.click("add-partitions-submit")
    assert "would not be an increase" in b.body()
    assert partition_count(c.bootstrap, "edit") == 3

    # Read-only: no forms, 403; without the CSRF token: 403 and no change.
    st, page = http(ro.url + "/topics/edit")
    assert st == 200 and 'id="edit-configs"' not in page and 'id="add-partitions"' not in page
    st, page = http(rw.url + "/topics/edit")
    assert st == 200 and 'id="edit-configs"' in page and 'id="add-partitions"' in page
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    for url, form in ((ro.url, {"configs": "retention.ms=1", "csrf": token}),
                      (ro.url, {"count": "9", "csrf": token}),
                      (rw.url, {"configs": "retention.ms=1"}),
                      (rw.url, {"count": "9"})):
        path = "/topics/edit/configs" if "configs" in form else "/topics/edit/partitions"
        st, page = http(url + path, form)
        assert st == 403, (url, path, st)
    assert topic_configs(c.bootstrap, "edit")["retention.ms"].value == default
    assert partition_count(c.bootstrap, "edit") == 3


def test_charts(live):
    c, b = live["cluster"], live["b"]
    create_topic(c.bootstrap, "chart", 1, 1)
    time.sleep(1)  # a few samples that know the topic, so what follows is a rate
    produce(c.bootstrap, "chart", ["m-%d" % i for i in range(200)])
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "chart-readers",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    cons.subscribe(["chart"])
    got = 0
    deadline = time.time() + 30
    while got < 100 and time.time() < deadline:
        m = cons.poll(1.0)
        if m is None or m.error():
            continue
        got += 1
        if got in (50, 100):
            cons.commit(message=m, asynchronous=False)
            if got == 50:
                time.sleep(1)  # the sampler sees 50, then 100: a consume rate
    cons.close()
    assert got == 100

    def overview_ready():
        b.go("/")
        return (b.text("#total-lag") == "100"
                and float(b.text("#produce-chart-max")) > 0
                and float(b.text("#consume-chart-max")) > 0)
    b.wait(overview_ready, 20, "charts with a produce and a consume rate, and lag 100")
    for chart in ("produce-chart", "consume-chart", "lag-chart"):
        pts = b.d.find_element(By.CSS_SELECTOR, "#%s polyline" % chart).get_attribute("points")
        assert len(pts.split()) >= 2, (chart, pts)
    assert b.text("#lag-chart-last") == "100"
    b.shot("overview-charts")

    # The topic list: the lag of the groups reading each topic, and its rate.
    b.go("/topics")
    row = [r for r in b.rows("topics") if r[0] == "chart"][0]
    assert row[6] == "100" and float(row[5]) >= 0, row
    assert [r[6] for r in b.rows("topics") if r[0] == "edit"] in ([], ["-"])
    # Its size on disk, as the sampler last read it (DescribeLogDirs).
    assert row[4].endswith("KiB"), row
    # Sorted from the header: "group lag" once ascending (no lag first), again descending.
    for _ in range(2):
        b.d.find_element(By.CSS_SELECTOR, "#topics thead").find_element(
            By.LINK_TEXT, "group lag").click()
    assert b.d.current_url.endswith("/topics?sort=group%20lag&desc=1&page=1"), b.d.current_url
    assert b.rows("topics")[0][0] == "chart", b.rows("topics")

    b.go("/groups/chart-readers")
    pts = b.d.find_element(By.CSS_SELECTOR, "#group-lag-chart polyline").get_attribute("points")
    assert len(pts.split()) >= 2, pts
    assert b.text("#group-lag-chart-last") == "100"
    b.shot("group-lag-chart")
