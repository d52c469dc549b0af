"""The one harness of the Python suites: everything a test or a checker needs to
run real Fjord (and Apache ZooKeeper) processes on 127.0.0.1.

Imported as a normal package: tests/python/pytest.ini puts tests/python on the
path for pytest; the checker programs (replication/checker.py,
ensemble/ens_nemesis.py) are run with PYTHONPATH=tests/python by the scripts.

  cleanup     the one registry of what was started (processes, temp dirs),
              emptied at the end of the pytest session and at interpreter exit
  proc        Proc: a child process with its log file, stopped by PID
  binaries    where the binaries are; skip or fail when one is missing
  net         HOST, free ports
  waits       wait_until
  coord       Server: one fjord-coord or Apache ZooKeeper; four-letter words
  ensemble    Ensemble: N fjord-coord members with server.N lines
  broker      Broker, Cluster (a coordinator plus brokers), clusters()
  kafka       topic helpers: create_topic, describe (fjord topic describe JSON)
  names       unique topic and group names
  proxy       TcpProxy: a forwarder that can cut a client off
  workers     Workers: kazoo clients driven by threads until stopped
  nemesis     the fault injector and report helpers the two checkers share
  zkcli       Debian's zkCli.sh: path, JVM flags, its stat output
  zkwire, kafka_wire, murmur2, linearizability   wire/algorithm helpers
"""
