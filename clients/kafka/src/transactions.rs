//! Transaction administration, the calls kafka-transactions.sh makes: list
//! every transaction the cluster's coordinators hold (ListTransactions on
//! each broker) and describe one (FindCoordinator with key type TRANSACTION,
//! then DescribeTransactions on its coordinator).

use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    DescribeTransactionsRequest, FindCoordinatorRequest, ListTransactionsRequest, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{Client, ClientError, Conn, KafkaError, Node};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// FindCoordinator's key type for transactional ids.
const TRANSACTION: i8 = 1;

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn refused(op: &'static str, id: &str, code: i16, message: Option<String>) -> ClientError {
    ClientError::Group {
        op,
        group: id.to_string(),
        error: KafkaError::new(code, message),
    }
}

/// One transaction as ListTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
    /// The broker coordinating it.
    pub coordinator: i32,
}

/// One transaction as DescribeTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub coordinator: i32,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the running transaction began (ms since the epoch), -1 if none.
    pub start_ms: i64,
    /// Its partitions as (topic, partition).
    pub partitions: Vec<(String, i32)>,
}

/// Every transaction of every live broker (ListTransactions v0, no filters).
pub async fn list_transactions(client: &mut Client) -> Result<Vec<TransactionListing>> {
    client.metadata(Some(&[]), false).await?;
    let ids: Vec<i32> = client.brokers.keys().copied().collect();
    let mut out = Vec::new();
    for id in ids {
        let resp = client
            .call(Node::Id(id), &ListTransactionsRequest::default(), 0)
            .await?;
        if resp.error_code != 0 {
            return Err(refused("ListTransactions", "*", resp.error_code, None));
        }
        out.extend(resp.transaction_states.iter().map(|t| TransactionListing {
            transactional_id: t.transactional_id.to_string(),
            producer_id: t.producer_id.0,
            state: t.transaction_state.to_string(),
            coordinator: id,
        }));
    }
    out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    Ok(out)
}

/// The coordinator (id, `host:port`) of transactional id `id`, retried
/// while none is available, for up to `patience`.
pub async fn find_transaction_coordinator(
    client: &mut Client,
    id: &str,
    patience: Duration,
) -> Result<(i32, String)> {
    let deadline = Instant::now() + patience;
    loop {
        let req = FindCoordinatorRequest::default()
            .with_key(sb(id))
            .with_key_type(TRANSACTION);
        let r = client.call(Node::Any, &req, 3).await?;
        if r.error_code == 0 {
            return Ok((r.node_id.0, format!("{}:{}", r.host, r.port)));
        }
        if Instant::now() >= deadline {
            let msg = r.error_message.map(|m| m.to_string());
            return Err(refused("FindCoordinator", id, r.error_code, msg));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// DescribeTransactions for `id`, asked of its coordinator.
pub async fn describe_transaction(
    client: &mut Client,
    id: &str,
    patience: Duration,
) -> Result<TransactionDescription> {
    let (node, addr) = find_transaction_coordinator(client, id, patience).await?;
    let mut conn = Conn::open(&addr, client.config()).await?;
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(sb(id))]);
    let resp = conn.call(&req, 0).await?;
    let Some(t) = resp.transaction_states.into_iter().next() else {
        return Err(ClientError::Malformed {
            addr,
            msg: "empty DescribeTransactions answer".into(),
        });
    };
    if t.error_code != 0 {
        return Err(refused("DescribeTransactions", id, t.error_code, None));
    }
    Ok(TransactionDescription {
        transactional_id: id.to_string(),
        coordinator: node,
        state: t.transaction_state.to_string(),
        producer_id: t.producer_id.0,
        producer_epoch: t.producer_epoch,
        timeout_ms: t.transaction_timeout_ms,
        start_ms: t.transaction_start_time_ms,
        partitions: t
            .topics
            .iter()
            .flat_map(|td| td.partitions.iter().map(|p| (td.topic.to_string(), *p)))
            .collect(),
    })
}
