//! The Kafka wire, below everything else in the broker: request decoding and
//! response framing over the kafka-protocol crate (`codec`), response frames
//! as chunks that share the records they carry (`frame`), the one table of
//! Kafka error codes and how internal errors map onto them (`error`), and the
//! wall clock in Kafka's unit (`clock`). Record batches are `fjord_kafka::batch`.

pub mod clock;
pub mod codec;
pub mod error;
pub mod frame;
