//! `/brokers`: every broker with its address, rack, state, and how many
//! partition replicas and leaders it holds.

use std::collections::BTreeMap;

use hyper::StatusCode;

use crate::cluster;
use crate::html::{esc, table};
use crate::server::{App, Reply};

pub async fn page(app: &App) -> anyhow::Result<Reply> {
    let mut c = super::client(app).await?;
    let s = cluster::snapshot(&mut c, None, &app.seen).await?;
    let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for (_, p) in s.partitions() {
        for r in &p.replicas {
            *replicas.entry(*r).or_default() += 1;
        }
        *leaders.entry(p.leader).or_default() += 1;
    }
    let count = |m: &BTreeMap<i32, usize>, id: i32| m.get(&id).copied().unwrap_or(0).to_string();
    let mut rows: Vec<Vec<String>> = s
        .live
        .values()
        .map(|b| {
            vec![
                b.id.to_string(),
                esc(&b.addr()),
                esc(b.rack.as_deref().unwrap_or("")),
                if b.id == s.controller {
                    "<span class=\"up\">up</span> (controller)".to_string()
                } else {
                    "<span class=\"up\">up</span>".to_string()
                },
                count(&replicas, b.id),
                count(&leaders, b.id),
            ]
        })
        .collect();
    rows.extend(s.down.iter().map(|id| {
        vec![
            id.to_string(),
            String::new(),
            String::new(),
            "<span class=\"down\">down</span>".into(),
            count(&replicas, *id),
            count(&leaders, *id),
        ]
    }));
    let body = table(
        "brokers",
        &["id", "address", "rack", "status", "replicas", "leaders"],
        &rows,
    );
    Ok(app.page(StatusCode::OK, "Brokers", &body))
}
