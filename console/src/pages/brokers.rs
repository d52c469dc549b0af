//! `/brokers`: every broker with its address, rack, state, how many
//! partition replicas and leaders it holds, and its log directory's size
//! and free space; `/brokers/{id}`: one broker's log directories with each
//! replica's size, and its configs (DescribeLogDirs and DescribeConfigs sent
//! to that broker, as kafka-log-dirs and kafka-configs do).

use std::collections::BTreeMap;

use fjord_kafka::broker_admin::{describe_broker_configs, LogDir};
use hyper::StatusCode;

use crate::app::{App, Reply};
use crate::cluster;
use crate::disk;
use crate::html::{bytes, esc, link, notice, table};

/// A broker's directories in one cell each: paths, bytes held, volume free/total.
fn dir_cells(dirs: Option<&Result<Vec<LogDir>, String>>) -> [String; 3] {
    match dirs {
        Some(Ok(dirs)) => [
            esc(&dirs
                .iter()
                .map(|d| d.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")),
            bytes(dirs.iter().map(LogDir::size).sum()),
            dirs.iter()
                .map(|d| format!("{} of {}", bytes(d.usable_bytes), bytes(d.total_bytes)))
                .collect::<Vec<_>>()
                .join(", "),
        ],
        Some(Err(e)) => [
            format!("<span class=\"bad\">{}</span>", esc(e)),
            "-".into(),
            "-".into(),
        ],
        None => ["-".into(), "-".into(), "-".into()],
    }
}

pub async fn page(app: &App) -> anyhow::Result<Reply> {
    let mut c = super::shared::client(app).await?;
    let s = cluster::snapshot(&mut c, None, &app.seen).await?;
    let d = disk::read(&mut c, s.live.keys().copied(), None).await;
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
            let mut row = vec![
                link(&format!("/brokers/{}", b.id), &b.id.to_string()),
                esc(&b.addr()),
                esc(b.rack.as_deref().unwrap_or("")),
                if b.id == s.controller {
                    "<span class=\"up\">up</span> (controller)".to_string()
                } else {
                    "<span class=\"up\">up</span>".to_string()
                },
                count(&replicas, b.id),
                count(&leaders, b.id),
            ];
            row.extend(dir_cells(d.brokers.get(&b.id)));
            row
        })
        .collect();
    rows.extend(s.down.iter().map(|id| {
        let mut row = vec![
            id.to_string(),
            String::new(),
            String::new(),
            "<span class=\"down\">down</span>".into(),
            count(&replicas, *id),
            count(&leaders, *id),
        ];
        row.extend(dir_cells(None));
        row
    }));
    let body = table(
        "brokers",
        &[
            "id", "address", "rack", "status", "replicas", "leaders", "log dir", "size", "free",
        ],
        &rows,
    );
    Ok(app.page(StatusCode::OK, "Brokers", &body))
}

pub async fn broker(app: &App, id: &str) -> anyhow::Result<Reply> {
    let Ok(id) = id.parse::<i32>() else {
        return Ok(app.error(
            StatusCode::NOT_FOUND,
            "No such broker",
            "a broker id is a number",
        ));
    };
    let mut c = super::shared::client(app).await?;
    let s = cluster::snapshot(&mut c, None, &app.seen).await?;
    let Some(b) = s.live.get(&id) else {
        let why = if s.down.contains(&id) {
            format!("broker {id} is down")
        } else {
            format!("no broker {id} in this cluster")
        };
        return Ok(app.error(StatusCode::NOT_FOUND, "No such broker", &why));
    };
    let mut body = format!(
        "<p>{} · {}</p>",
        esc(&b.addr()),
        link("/brokers", "All brokers")
    );
    let d = disk::read(&mut c, [id], None).await;
    body += "<h2>Log directories</h2>";
    match d.brokers.get(&id) {
        Some(Ok(dirs)) => {
            for dir in dirs {
                body += &format!(
                    "<p><code>{}</code>: {} held, {} free of {}</p>",
                    esc(&dir.path),
                    bytes(dir.size()),
                    bytes(dir.usable_bytes),
                    bytes(dir.total_bytes)
                );
                let mut reps: Vec<_> = dir.replicas.iter().collect();
                reps.sort_by(|a, b| b.size.cmp(&a.size).then(a.topic.cmp(&b.topic)));
                let rows: Vec<Vec<String>> = reps
                    .iter()
                    .map(|r| {
                        vec![
                            link(&format!("/topics/{}", crate::html::enc(&r.topic)), &r.topic),
                            r.partition.to_string(),
                            format!("<span data-bytes=\"{}\">{}</span>", r.size, bytes(r.size)),
                            r.offset_lag.to_string(),
                        ]
                    })
                    .collect();
                body += &table(
                    "replicas",
                    &["topic", "partition", "size", "offset lag"],
                    &rows,
                );
            }
        }
        Some(Err(e)) => {
            body += &notice(
                "error",
                &format!("The log directories could not be read: {e}"),
            )
        }
        None => {}
    }
    body += "<h2>Configs</h2>";
    match describe_broker_configs(&mut c, id).await {
        Ok(entries) => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        esc(&e.name),
                        format!("<code>{}</code>", esc(&e.shown())),
                        e.source_name().to_string(),
                    ]
                })
                .collect();
            body += &table("broker-configs", &["config", "value", "source"], &rows);
        }
        Err(e) => {
            body += &notice(
                "error",
                &format!("The broker's configs could not be read: {e}"),
            )
        }
    }
    Ok(app.page(StatusCode::OK, &format!("Broker {id}"), &body))
}
