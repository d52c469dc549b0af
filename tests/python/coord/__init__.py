"""Coordinator acceptance tests, on fjord-coord and Apache ZooKeeper 3.8 (fixtures in ../conftest.py)."""
