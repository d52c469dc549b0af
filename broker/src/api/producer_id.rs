//! InitProducerId: a fresh idempotent producer id (or a bumped epoch for an
//! existing one, KIP-360); with a transactional id, the transaction
//! coordinator's answer (`api::transactions`).

use std::sync::Arc;

use kafka_protocol::messages::*;

use crate::broker::Broker;

pub(super) async fn init_producer_id(
    b: &Arc<Broker>,
    r: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    if let Some(id) = &r.transactional_id {
        return super::transactions::init_transactional(b, &r, id.as_str(), version).await;
    }
    // KIP-360: an existing producer may ask to bump its epoch.
    if r.producer_id.0 >= 0 && r.producer_epoch >= 0 && r.producer_epoch < i16::MAX - 1 {
        return InitProducerIdResponse::default()
            .with_producer_id(r.producer_id)
            .with_producer_epoch(r.producer_epoch + 1);
    }
    InitProducerIdResponse::default()
        .with_producer_id(b.producer_ids.allocate().into())
        .with_producer_epoch(0)
}
