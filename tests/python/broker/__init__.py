"""Broker acceptance tests: kcat, confluent-kafka, kafka-python and raw frames against fjord-brokers."""
