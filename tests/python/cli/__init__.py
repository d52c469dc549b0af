"""The fjord CLI end to end: `fjord znode` against both coordinators, the Kafka commands against fjord-brokers."""
