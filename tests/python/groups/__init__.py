"""Consumer groups: real clients in groups on fjord-brokers, and `fjord group`."""
