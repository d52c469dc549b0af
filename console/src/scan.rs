//! Reading messages for the browser: Fetch one partition from an offset
//! (each partition asked of its leader, no waiting at the log end) and keep
//! the records a filter matches, with a bound on how many are scanned so a
//! search in a large topic stops and says where.

use bytes::Bytes;
use fjord_kafka::client::{decode_records, Client, ConsumedRecord, Node};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Result, Topic};

/// Bytes per Fetch: enough for many small records, small enough for a page.
const FETCH_BYTES: i32 = 4 << 20;

/// What a record must contain, in its key, its value or a header (name or
/// value), to be kept: anything, a case-sensitive substring, or a match of a
/// regular expression (over the raw bytes, as a topic may hold any).
#[derive(Debug, Clone, Default)]
pub enum Filter {
    #[default]
    All,
    Substring(String),
    Regex(regex::bytes::Regex),
}

/// Bytes a compiled pattern may take: a hostile one is refused, not built.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Filter {
    /// The page's `filter` field, as a regular expression when `regex` is
    /// set. An invalid pattern is an error saying why.
    pub fn parse(text: Option<&str>, regex: bool) -> std::result::Result<Filter, String> {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Ok(Filter::All);
        };
        if !regex {
            return Ok(Filter::Substring(text.to_string()));
        }
        regex::bytes::RegexBuilder::new(text)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(Filter::Regex)
            .map_err(|e| format!("invalid regular expression: {e}"))
    }

    pub fn matches(&self, r: &ConsumedRecord) -> bool {
        let found: &dyn Fn(&[u8]) -> bool = match self {
            Filter::All => return true,
            Filter::Substring(n) => &|hay| contains(hay, n.as_bytes()),
            Filter::Regex(re) => &|hay| re.is_match(hay),
        };
        let has = |b: &Option<Bytes>| b.as_ref().is_some_and(|b| found(b));
        has(&r.key) || has(&r.value) || r.headers.iter().any(|(k, v)| found(k.as_bytes()) || has(v))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// How much to return and to read at most, and what to keep.
#[derive(Debug, Clone)]
pub struct Want {
    pub limit: usize,
    pub bound: u64,
    pub filter: Filter,
}

/// What a scan found and why it stopped.
#[derive(Debug, Default)]
pub struct Found {
    pub records: Vec<(i32, ConsumedRecord)>,
    pub scanned: u64,
    /// The scan bound was reached before `limit` matches or the log end.
    pub bound_hit: bool,
    /// Where the next scan of each partition would start.
    pub next: Vec<(i32, i64)>,
}

/// Scan `partition` of `topic` from `from` until `limit` matches, the high
/// watermark, or the bound of scanned records (counted across calls in `found`).
pub async fn scan_partition(
    client: &mut Client,
    topic: &Topic,
    partition: i32,
    from: i64,
    want: &Want,
    found: &mut Found,
) -> Result<()> {
    let Some(info) = topic.partitions.iter().find(|p| p.index == partition) else {
        anyhow::bail!("topic {} has no partition {partition}", topic.name);
    };
    if info.leader < 0 {
        anyhow::bail!("partition {}-{partition} has no leader", topic.name);
    }
    let mut pos = from.max(0);
    loop {
        if found.records.len() >= want.limit {
            break;
        }
        if found.scanned >= want.bound {
            found.bound_hit = true;
            break;
        }
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(FETCH_BYTES)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.name.clone())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(pos)
                    .with_partition_max_bytes(FETCH_BYTES)])]);
        let resp = client.call(Node::Id(info.leader), &req, 12).await?;
        fjord_kafka::client::check(resp.error_code, None)?;
        let Some(pr) = resp.responses.first().and_then(|t| t.partitions.first()) else {
            anyhow::bail!("empty Fetch answer for {}-{partition}", topic.name);
        };
        if pr.error_code != 0 {
            // An offset before the log start: begin at the log start instead.
            if pr.error_code == 1 && pos < pr.log_start_offset {
                pos = pr.log_start_offset;
                continue;
            }
            fjord_kafka::client::check(pr.error_code, None)?;
        }
        let hw = pr.high_watermark;
        let recs = match &pr.records {
            Some(data) => decode_records(data, pos)?,
            None => Vec::new(),
        };
        let Some(last) = recs.last().map(|r| r.offset) else {
            break; // log end (or only control batches up to it)
        };
        for r in recs {
            if found.records.len() >= want.limit {
                break;
            }
            if found.scanned >= want.bound {
                found.bound_hit = true;
                break;
            }
            found.scanned += 1;
            pos = r.offset + 1;
            if want.filter.matches(&r) {
                found.records.push((partition, r));
            }
        }
        if pos <= last || pos >= hw {
            break; // stopped inside this answer, or at the log end
        }
    }
    found.next.push((partition, pos));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: Option<&str>, value: Option<&str>, headers: &[(&str, &str)]) -> ConsumedRecord {
        ConsumedRecord {
            offset: 0,
            timestamp: 0,
            log_append_time: false,
            key: key.map(|k| Bytes::from(k.to_string())),
            value: value.map(|v| Bytes::from(v.to_string())),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), Some(Bytes::from(v.to_string()))))
                .collect(),
        }
    }

    #[test]
    fn filter_looks_in_key_value_and_headers() {
        let f = Filter::parse(Some("needle"), false).unwrap();
        assert!(f.matches(&rec(Some("a-needle"), None, &[])));
        assert!(f.matches(&rec(None, Some("xneedlex"), &[])));
        assert!(f.matches(&rec(None, None, &[("h", "needle")])));
        assert!(f.matches(&rec(None, None, &[("needle", "v")])));
        assert!(!f.matches(&rec(Some("need"), Some("le"), &[("ne", "edle")])));
        assert!(Filter::parse(None, false)
            .unwrap()
            .matches(&rec(None, None, &[])));
        assert!(Filter::parse(Some(""), true)
            .unwrap()
            .matches(&rec(None, None, &[])));
        // Not a pattern unless asked: "." is a literal dot.
        assert!(!Filter::parse(Some("."), false)
            .unwrap()
            .matches(&rec(Some("x"), None, &[])));
    }

    #[test]
    fn regex_filter_matches_anywhere_and_bad_patterns_are_refused() {
        let f = Filter::parse(Some("^value-(12|77)$"), true).unwrap();
        assert!(f.matches(&rec(None, Some("value-12"), &[])));
        assert!(f.matches(&rec(None, None, &[("h", "value-77")])));
        assert!(!f.matches(&rec(None, Some("value-123"), &[])));
        let e = Filter::parse(Some("a(b"), true).unwrap_err();
        assert!(e.starts_with("invalid regular expression"), "{e}");
        assert!(Filter::parse(Some("(a{1000}){1000}"), true).is_err());
    }
}
