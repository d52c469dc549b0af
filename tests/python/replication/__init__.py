"""Replication and failover of fjord-brokers, and the fault-injection checker (checker.py)."""
