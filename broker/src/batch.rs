//! Record batch (magic v2) headers: moved to `fjord_kafka::batch`; re-exported here until the broker's modules import it from there.
pub use fjord_kafka::batch::*;

/// The log tests' batch builder, now `fjord_kafka::testing`.
#[cfg(test)]
pub(crate) mod tests {
    pub use fjord_kafka::testing::make_batch;
}
