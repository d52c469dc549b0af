//! payment-enrich: each payment (the payment-alerts example's `payments`, keyed by customer
//! id) joined with the customer's row in the `customers` table as it stood at the payment's
//! time. The join is only right if the task takes table updates and payments in event-time
//! order (fjord-streams' timestamp order across topics), whatever order they arrive in.

use fjord_streams::{Consumed, JsonSerde, Produced, Result, StreamsBuilder, StringSerde, Topology};
pub use payment_alerts::Payment;
use serde::{Deserialize, Serialize};

/// A `customers` value: `{"tier"}` (key: the customer id; a null value deletes the row).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Customer {
    pub tier: String,
}

/// An output record: the payment with the customer's tier at its time (null if unknown).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Enriched {
    pub customer_id: String,
    pub amount: f64,
    pub ts: i64,
    pub tier: Option<String>,
}

pub fn topology(payments: &str, customers: &str, output: &str) -> Result<Topology> {
    let b = StreamsBuilder::new();
    let table = b.table(
        customers,
        Consumed::with(StringSerde, JsonSerde::<Customer>::new()),
        "customers-store",
    );
    b.stream(
        payments,
        Consumed::with(StringSerde, JsonSerde::<Payment>::new())
            .with_timestamp_extractor(|_, p: &Payment, _| p.ts),
    )
    .left_join(&table, |id, p, c| Enriched {
        customer_id: id.clone(),
        amount: p.amount,
        ts: p.ts,
        tier: c.map(|c| c.tier.clone()),
    })
    .to(
        output,
        Produced::with(StringSerde, JsonSerde::<Enriched>::new()),
    );
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_streams::TopologyTestDriver;

    #[test]
    fn a_payment_sees_the_tier_current_at_its_arrival_in_the_driver() {
        let mut d = TopologyTestDriver::new(topology("p", "c", "o").unwrap(), "pe").unwrap();
        let tier = |t: &str| serde_json::to_vec(&Customer { tier: t.into() }).unwrap();
        let pay = |ts| {
            serde_json::to_vec(&Payment {
                customer_id: "c1".into(),
                amount: 2.0,
                ts,
            })
            .unwrap()
        };
        d.pipe_raw("p", Some(b"c1"), Some(&pay(1)), 1).unwrap();
        d.pipe_raw("c", Some(b"c1"), Some(&tier("gold")), 2)
            .unwrap();
        d.pipe_raw("p", Some(b"c1"), Some(&pay(3)), 3).unwrap();
        let out: Vec<Option<String>> = d
            .read("o", &StringSerde, &JsonSerde::<Enriched>::new())
            .unwrap()
            .into_iter()
            .map(|(_, e, _)| e.tier)
            .collect();
        assert_eq!(out, vec![None, Some("gold".to_string())]);
    }
}
