//! What only another broker knows, asked over the Kafka protocol as
//! kafka_exporter asks it: the earliest and latest offsets of the partitions
//! it leads (ListOffsets), and the groups it coordinates with their member
//! counts (ListGroups, DescribeGroups). One short-lived connection per broker
//! per scrape, with a short deadline; a broker that does not answer leaves
//! its series out of that scrape instead of failing it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use fjord_kafka::client::{list_offsets_request, ClientError, Conn};
use kafka_protocol::messages::{DescribeGroupsRequest, GroupId, ListGroupsRequest};

/// A deadline per request: a scrape must not hang on a dead broker.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// (topic, partition) → (earliest, latest) offsets.
pub type OffsetMap = HashMap<(String, i32), (i64, i64)>;

async fn open(addr: &str, me: i32) -> Result<Conn, ClientError> {
    let mut cfg = crate::config::inter_broker_client(format!("fjord-metrics-{me}"));
    cfg.request_timeout = REQUEST_TIMEOUT;
    Conn::open(addr, &cfg).await
}

/// Earliest and latest (high watermark) offsets of `parts`, asked of the
/// broker at `addr` that leads them.
pub async fn offsets(
    addr: &str,
    me: i32,
    parts: &[(String, i32)],
) -> Result<OffsetMap, ClientError> {
    let mut conn = open(addr, me).await?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let mut out: OffsetMap = HashMap::with_capacity(parts.len());
    for (slot, ts) in [(0, -2i64), (1, -1i64)] {
        let req = list_offsets_request(&by_topic, ts);
        let resp = conn.call(&req, 7).await?;
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code != 0 || p.offset < 0 {
                    continue;
                }
                let e = out
                    .entry((t.name.0.to_string(), p.partition_index))
                    .or_insert((-1, -1));
                if slot == 0 {
                    e.0 = p.offset;
                } else {
                    e.1 = p.offset;
                }
            }
        }
    }
    out.retain(|_, (a, b)| *a >= 0 && *b >= 0);
    Ok(out)
}

/// The groups the broker at `addr` coordinates, with their member counts.
pub async fn group_members(addr: &str, me: i32) -> Result<Vec<(String, usize)>, ClientError> {
    let mut conn = open(addr, me).await?;
    let listed = conn.call(&ListGroupsRequest::default(), 3).await?;
    let ids: Vec<GroupId> = listed.groups.into_iter().map(|g| g.group_id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let described = conn
        .call(&DescribeGroupsRequest::default().with_groups(ids), 5)
        .await?;
    Ok(described
        .groups
        .into_iter()
        .filter(|g| g.error_code == 0)
        .map(|g| (g.group_id.0.to_string(), g.members.len()))
        .collect())
}
