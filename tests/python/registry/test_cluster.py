"""The registry across brokers: 8 clients registering the same 50 schemas at
once through two brokers get exactly 50 ids, the same id for the same schema
everywhere, and the coordinator's znodes agree with GET /schemas; a schema
registered through one broker is served by the other; after every broker and
the coordinator restart, every schema, version, deletion flag, config and mode
is still there."""
import json
import threading

from kazoo.client import KazooClient

from registry.conftest import avro_record, call


def schema_n(i):
    return avro_record("Rec%d" % i, [("f%d" % j, "string") for j in range(1 + i % 5)])


def test_concurrent_registration_two_brokers(make_reg):
    c = make_reg(2)
    urls = [b.url for b in c.brokers]
    # Ten subjects of five versions each; the records differ in name, so
    # compatibility is off for them (ids and versions are what is tested).
    for s in range(10):
        assert call("PUT", "%s/config/conc-%d" % (urls[s % 2], s), {"compatibility": "NONE"})[0] == 200
    results = [dict() for _ in range(8)]
    errors = []
    start = threading.Barrier(8)

    def worker(k):
        try:
            start.wait()
            order = list(range(50))
            if k % 2:
                order.reverse()
            for i in order:
                st, body = call("POST", "%s/subjects/conc-%d/versions" % (urls[k % 2], i % 10),
                                {"schema": schema_n(i)})
                if st != 200:
                    errors.append((k, i, st, body))
                    continue
                results[k][i] = body["id"]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((k, repr(e)))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:5]
    for i in range(50):
        ids = {r[i] for r in results}
        assert len(ids) == 1, (i, ids)
    all_ids = {results[0][i] for i in range(50)}
    assert len(all_ids) == 50
    # Both brokers list the same schemas; the znodes agree.
    for u in urls:
        st, listed = call("GET", u + "/schemas")
        assert st == 200
        assert {x["id"] for x in listed} == all_ids
        assert len(listed) == 50
    zk = KazooClient(hosts=c.coord.hosts)
    zk.start(15)
    try:
        assert {int(x) for x in zk.get_children("/schema_registry/ids")} == all_ids
        assert len(zk.get_children("/schema_registry/hashes")) == 50
        versions = 0
        for s in zk.get_children("/schema_registry/subjects"):
            for v in zk.get_children("/schema_registry/subjects/" + s):
                data, _ = zk.get("/schema_registry/subjects/%s/%s" % (s, v))
                rec = json.loads(data)
                assert rec["id"] in all_ids and rec["deleted"] is False
                versions += 1
        assert versions == 50
        counter, _ = zk.get("/schema_registry/counter")
        assert int(counter) == max(all_ids)
    finally:
        zk.stop()
        zk.close()


def test_served_by_the_other_broker_and_survives_restart(make_reg):
    c = make_reg(2)
    a, b = c.brokers[0].url, c.brokers[1].url
    v1 = avro_record("P", [("x", "string")])
    v2 = avro_record("P", [("x", "string"), ("y", "int", 0)])
    st, r1 = call("POST", a + "/subjects/p-value/versions", {"schema": v1})
    assert st == 200
    # Served at once by the other broker.
    st, body = call("GET", "%s/schemas/ids/%d" % (b, r1["id"]))
    assert st == 200 and json.loads(body["schema"]) == json.loads(v1)
    st, body = call("GET", b + "/subjects/p-value/versions/latest")
    assert st == 200 and body["id"] == r1["id"]
    st, r2 = call("POST", b + "/subjects/p-value/versions", {"schema": v2})
    assert st == 200
    call("POST", a + "/subjects/q-value/versions", {"schema": v1})
    assert call("DELETE", a + "/subjects/p-value/versions/1")[0] == 200
    assert call("DELETE", b + "/subjects/q-value")[0] == 200
    assert call("PUT", a + "/config/p-value", {"compatibility": "FULL"})[0] == 200
    assert call("PUT", b + "/config", {"compatibility": "FORWARD"})[0] == 200
    assert call("PUT", a + "/mode/q-value", {"mode": "READONLY"})[0] == 200
    before = [call("GET", u + "/schemas?deleted=true")[1] for u in (a, b)]
    c.restart_all()
    for u in (a, b):
        st, body = call("GET", u + "/schemas?deleted=true")
        assert st == 200 and body == before[0]
        assert call("GET", u + "/subjects/p-value/versions")[1] == [2]
        assert call("GET", u + "/subjects/p-value/versions?deleted=true")[1] == [1, 2]
        assert call("GET", u + "/subjects")[1] == ["p-value"]
        assert sorted(call("GET", u + "/subjects?deleted=true")[1]) == ["p-value", "q-value"]
        assert call("GET", u + "/config/p-value")[1] == {"compatibilityLevel": "FULL"}
        assert call("GET", u + "/config")[1] == {"compatibilityLevel": "FORWARD"}
        assert call("GET", u + "/mode/q-value")[1] == {"mode": "READONLY"}
        st, body = call("GET", "%s/schemas/ids/%d" % (u, r2["id"]))
        assert st == 200 and json.loads(body["schema"]) == json.loads(v2)
    # New registrations after the restart get new ids.
    st, r3 = call("POST", a + "/subjects/new-value/versions", {"schema": avro_record("N", [("n", "long")])})
    assert st == 200 and r3["id"] > r2["id"]
