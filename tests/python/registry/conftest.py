"""Schema Registry fixtures: a coordinator plus brokers, each broker serving
the registry's REST API on its own free port (`schema.registry.listeners`),
and small HTTP helpers that return (status, parsed JSON body)."""
import json

import pytest
import requests

from fjordtest.broker import require_brokers
from fjordtest.registry import RegistryCluster

CT = "application/vnd.schemaregistry.v1+json"


@pytest.fixture(scope="module")
def reg():
    """One coordinator + one registry broker for a whole module."""
    require_brokers()
    c = RegistryCluster(1)
    yield c
    c.close()


@pytest.fixture
def make_reg():
    require_brokers()
    made = []

    def make(n=1, overrides=None, coord=None):
        c = RegistryCluster(n, overrides, coord)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def call(method, url, body=None, raw=None, headers=None):
    """One request; returns (status, JSON body or text)."""
    h = {"Content-Type": CT, "Accept": CT}
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    r = requests.request(method, url, data=data, headers=h, timeout=30)
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, r.text


def avro_record(name, fields):
    """An Avro record schema as text; fields: list of (name, type[, default])."""
    fs = []
    for f in fields:
        d = {"name": f[0], "type": f[1]}
        if len(f) > 2:
            d["default"] = f[2]
        fs.append(d)
    return json.dumps({"type": "record", "name": name, "fields": fs})
