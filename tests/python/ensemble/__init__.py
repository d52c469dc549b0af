"""A fjord-coord ensemble: elections, membership changes, read-only mode, and the fault-injection checker (ens_nemesis.py)."""
