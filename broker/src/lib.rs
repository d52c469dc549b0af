//! fjord-broker: the Kafka half of Fjord (see DESIGN.md → Broker).
