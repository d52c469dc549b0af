//! InitProducerId: a fresh idempotent producer id (or a bumped epoch for an
//! existing one, KIP-360); transactional ids are refused.

use std::sync::Arc;

use kafka_protocol::messages::*;

use crate::broker::Broker;
use crate::wire::error as err;

pub(super) fn init_producer_id(
    b: &Arc<Broker>,
    r: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if r.transactional_id.is_some() {
        return InitProducerIdResponse::default()
            .with_error_code(err::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
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
