"""A standalone broker keeps transactions in `<log.dirs>/transactions.json`.
An unreadable file stops it at start with the file named: starting empty would
forget prepared transactions (their markers never written) and fence nobody."""
import os
import subprocess

from fjordtest.broker import Broker, require_brokers


def test_an_unreadable_transactions_file_stops_the_broker(tmp_path):
    require_brokers()
    b = Broker(str(tmp_path), 1, "")
    os.makedirs(b.log_dir)
    with open(os.path.join(b.log_dir, "transactions.json"), "w") as f:
        f.write('{"transactions": {"tx-1": {"meta": {"producer_id"')  # torn
    b.start(wait=False)
    try:
        code = b.proc.wait(30)
    except subprocess.TimeoutExpired:
        b.kill9()
        raise AssertionError("the broker kept running:\n" + b.log_tail())
    assert code == 1, (code, b.log_tail())  # an exit, not an abort
    assert "transactions.json" in b.log_tail(), b.log_tail()
