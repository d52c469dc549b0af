//! `/`: the cluster at a glance — brokers up and down, the controller,
//! topic and partition counts, and the under-replicated and offline
//! partitions (listed), the total consumer lag, the produce and consume
//! rates and the lag over the last 15 minutes (the sampler's, as SVG
//! charts), and the coordinator ensemble's members (mode, zxid).

use hyper::StatusCode;

use crate::app::{App, Reply};
use crate::chart;
use crate::cluster;
use crate::html::{esc, ids, link, table};

pub async fn page(app: &App) -> anyhow::Result<Reply> {
    let mut c = super::shared::client(app).await?;
    let s = cluster::snapshot(&mut c, None, &app.seen).await?;
    let parts = s.partitions().count();
    let under: Vec<_> = s
        .partitions()
        .filter(|(_, p)| p.under_replicated())
        .collect();
    let offline = s.partitions().filter(|(_, p)| p.offline()).count();
    let card = |id: &str, label: &str, v: String, bad: bool| {
        format!(
            "<span>{} <b id=\"{id}\" class=\"{}\">{}</b></span>",
            esc(label),
            if bad { "bad" } else { "" },
            esc(&v)
        )
    };
    let mut body = String::from("<div class=\"cards\">");
    body += &card("brokers-up", "Brokers up", s.live.len().to_string(), false);
    body += &card(
        "brokers-down",
        "Brokers down",
        s.down.len().to_string(),
        !s.down.is_empty(),
    );
    body += &card(
        "controller",
        "Controller",
        s.controller.to_string(),
        s.controller < 0,
    );
    body += &card("topic-count", "Topics", s.topics.len().to_string(), false);
    body += &card("partition-count", "Partitions", parts.to_string(), false);
    body += &card(
        "under-replicated",
        "Under-replicated",
        under.len().to_string(),
        !under.is_empty(),
    );
    body += &card("offline", "Offline", offline.to_string(), offline > 0);
    let lag = app.history.total_lag();
    body += &card(
        "total-lag",
        "Consumer lag",
        lag.last()
            .map_or("-".to_string(), |(_, l)| format!("{l:.0}")),
        false,
    );
    body += "</div>";
    let now = crate::sampler::now_ms();
    body += "<div class=\"charts\">";
    body += &chart::line(
        "produce-chart",
        "Produced",
        "msg/s",
        &app.history.produce(),
        now,
    );
    body += &chart::line(
        "consume-chart",
        "Consumed (committed)",
        "msg/s",
        &app.history.consume(),
        now,
    );
    body += &chart::line("lag-chart", "Consumer lag", "messages", &lag, now);
    body += "</div>";
    if let Some(id) = &s.cluster_id {
        body += &format!("<p>Cluster id <code>{}</code></p>", esc(id));
    }
    let mut rows: Vec<Vec<String>> = s
        .live
        .values()
        .map(|b| {
            vec![
                b.id.to_string(),
                esc(&b.addr()),
                "<span class=\"up\">up</span>".into(),
            ]
        })
        .collect();
    rows.extend(s.down.iter().map(|id| {
        vec![
            id.to_string(),
            String::new(),
            "<span class=\"down\">down</span>".into(),
        ]
    }));
    body += "<h2>Brokers</h2>";
    body += &table("broker-status", &["id", "address", "status"], &rows);
    if !under.is_empty() {
        body += "<h2>Under-replicated partitions</h2>";
        let rows: Vec<Vec<String>> = under
            .iter()
            .take(500)
            .map(|(t, p)| {
                vec![
                    link(&format!("/topics/{}", crate::html::enc(&t.name)), &t.name),
                    p.index.to_string(),
                    p.leader.to_string(),
                    ids(&p.replicas),
                    ids(&p.isr),
                ]
            })
            .collect();
        body += &table(
            "under-replicated-partitions",
            &["topic", "partition", "leader", "replicas", "ISR"],
            &rows,
        );
    }
    if let Some(zk) = app.cfg.zookeeper.as_deref() {
        body += "<h2>Coordinator ensemble</h2>";
        body += &super::znodes::ensemble_table(zk, app.cfg.timeout).await;
    }
    Ok(app.page(StatusCode::OK, "Overview", &body))
}
