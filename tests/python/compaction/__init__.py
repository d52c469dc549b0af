"""Log compaction acceptance tests: confluent-kafka against a fjord-broker whose cleaner compacts."""
