//! Changing a topic from its page: the configs set on it (shown, and edited
//! as `key=value` lines: a changed or new line is set, a removed line goes
//! back to the default, through IncrementalAlterConfigs) and its partition
//! count (raised through CreatePartitions). POSTs to `/topics/{t}/configs`
//! and `/topics/{t}/partitions`; refused in read-only mode like every POST.

use std::collections::BTreeMap;

use fjord_kafka::client::Client;
use fjord_kafka::topic_admin::{self, ConfigEntry};
use hyper::StatusCode;

use crate::app::{App, Reply, Req};
use crate::cluster;
use crate::html::{csrf_field, enc, esc, notice, table};

/// The configs set on the topic (name → value; sensitive ones have no value).
async fn on_topic(c: &mut Client, name: &str) -> anyhow::Result<Vec<ConfigEntry>> {
    let mut all = topic_admin::describe_topic_configs(c, &[name.to_string()]).await?;
    Ok(all
        .remove(name)
        .unwrap_or_default()
        .into_iter()
        .filter(ConfigEntry::on_topic)
        .collect())
}

/// The topic page's section: its configs, and the edit forms unless read-only.
pub async fn section(app: &App, c: &mut Client, name: &str, partitions: usize) -> String {
    let set = match on_topic(c, name).await {
        Ok(s) => s,
        Err(e) => {
            return notice(
                "error",
                &format!("The topic's configs could not be read: {e}"),
            )
        }
    };
    let rows: Vec<Vec<String>> = set
        .iter()
        .map(|e| vec![esc(&e.name), format!("<code>{}</code>", esc(&e.shown()))])
        .collect();
    let mut out = String::from("<h2>Configs</h2>");
    if rows.is_empty() {
        out += "<p id=\"no-topic-configs\">None set on the topic: the broker's defaults apply.</p>";
    } else {
        out += &table("topic-configs", &["config", "value"], &rows);
    }
    if app.cfg.read_only {
        return out;
    }
    let lines: String = set
        .iter()
        .filter(|e| !e.sensitive)
        .map(|e| format!("{}={}\n", e.name, e.shown()))
        .collect();
    out += &format!(
        "<form method=\"post\" action=\"/topics/{t}/configs\" id=\"edit-configs\">{csrf}\
<label>Configs set on the topic (key=value per line; a removed line goes back to the default)<br>\
<textarea name=\"configs\" id=\"topic-configs-text\" rows=\"4\" cols=\"50\">{}</textarea></label><br>\
<button id=\"edit-configs-submit\">Save configs</button></form>\
<h2>Partitions</h2><form method=\"post\" action=\"/topics/{t}/partitions\" id=\"add-partitions\">{csrf}\
<label>Partition count (now {partitions}; it can only grow) \
<input name=\"count\" id=\"partition-count\" size=\"5\" value=\"{partitions}\"></label> \
<button id=\"add-partitions-submit\">Add partitions</button></form>",
        esc(&lines),
        t = esc(&enc(name)),
        csrf = csrf_field(&app.csrf),
    );
    out
}

/// What to set and what to delete to go from `old` to the `new` lines
/// (sensitive configs, never shown in the form, are left alone).
pub fn changes(
    old: &[ConfigEntry],
    new: &[(String, String)],
) -> (Vec<(String, String)>, Vec<String>) {
    let was: BTreeMap<&str, &ConfigEntry> = old.iter().map(|e| (e.name.as_str(), e)).collect();
    let set = new
        .iter()
        .filter(|(k, v)| {
            was.get(k.as_str())
                .is_none_or(|e| e.sensitive || e.value.as_deref() != Some(v.as_str()))
        })
        .cloned()
        .collect();
    let delete = old
        .iter()
        .filter(|e| !e.sensitive && !new.iter().any(|(k, _)| *k == e.name))
        .map(|e| e.name.clone())
        .collect();
    (set, delete)
}

fn refused(app: &App, name: &str, msg: &str) -> Reply {
    let body = notice("error", msg)
        + &format!(
            "<p>{}</p>",
            crate::html::link(&format!("/topics/{}", enc(name)), "Back to the topic")
        );
    app.page(StatusCode::BAD_REQUEST, &format!("Topic {name}"), &body)
}

/// Wait 100 ms before asking again, unless `deadline` (the console's
/// timeout after the change) has passed: then the page shows what the
/// broker says, stale or not.
async fn again(deadline: tokio::time::Instant) -> bool {
    if tokio::time::Instant::now() >= deadline {
        return false;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    true
}

/// POST `/topics/{t}/configs`.
pub async fn configs(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let new = match cluster::parse_configs(r.f("configs")) {
        Ok(c) => c,
        Err(e) => return Ok(refused(app, name, &e)),
    };
    let mut c = super::shared::client(app).await?;
    let old = on_topic(&mut c, name).await?;
    let (set, delete) = changes(&old, &new);
    if set.is_empty() && delete.is_empty() {
        return Ok(Reply::Redirect(format!(
            "/topics/{}?configs=unchanged",
            enc(name)
        )));
    }
    if let Err(e) = topic_admin::alter_topic_configs(&mut c, name, &set, &delete).await {
        return Ok(refused(app, name, &format!("the brokers refused: {e}")));
    }
    // The broker answers once the change is stored; its own view follows a
    // moment later. Wait for it (bounded) so the page after shows the change.
    let shown = |now: &[ConfigEntry]| {
        set.iter().all(|(k, v)| {
            now.iter()
                .any(|e| e.name == *k && (e.sensitive || e.value.as_deref() == Some(v)))
        }) && delete.iter().all(|k| now.iter().all(|e| e.name != *k))
    };
    let deadline = tokio::time::Instant::now() + app.cfg.timeout;
    while !on_topic(&mut c, name).await.is_ok_and(|now| shown(&now)) && again(deadline).await {}
    Ok(Reply::Redirect(format!(
        "/topics/{}?configs=saved",
        enc(name)
    )))
}

/// POST `/topics/{t}/partitions`.
pub async fn partitions(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let Ok(count) = r.f("count").trim().parse::<i32>() else {
        return Ok(refused(app, name, "the partition count must be a number"));
    };
    let Some(super::shared::Found { mut c, t, .. }) = super::shared::find_topic(app, name).await?
    else {
        return Ok(refused(app, name, &super::shared::missing(name)));
    };
    let t = &t;
    let now = t.partitions.len();
    if count as i64 <= now as i64 {
        return Ok(refused(
            app,
            name,
            &format!("The topic has {now} partition(s); {count} would not be an increase (partitions can only be added)."),
        ));
    }
    if let Err(e) = topic_admin::create_partitions(&mut c, name, count).await {
        return Ok(refused(app, name, &format!("the brokers refused: {e}")));
    }
    let names = [name.to_string()];
    let grown = |s: cluster::Snapshot| {
        s.topic(name)
            .is_some_and(|t| t.partitions.len() >= count as usize)
    };
    let deadline = tokio::time::Instant::now() + app.cfg.timeout;
    while !cluster::snapshot(&mut c, Some(&names), &app.seen)
        .await
        .is_ok_and(grown)
        && again(deadline).await
    {}
    Ok(Reply::Redirect(format!(
        "/topics/{}?partitions={count}",
        enc(name)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str, sensitive: bool) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: (!sensitive).then(|| value.to_string()),
            source: topic_admin::SOURCE_TOPIC,
            sensitive,
            read_only: false,
        }
    }

    #[test]
    fn form_lines_become_sets_and_deletes() {
        let old = vec![
            entry("retention.ms", "1000", false),
            entry("cleanup.policy", "compact", false),
            entry("secret", "", true),
        ];
        let new = vec![
            ("retention.ms".to_string(), "5000".to_string()),
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.ms".to_string(), "60000".to_string()),
        ];
        let (set, delete) = changes(&old, &new);
        assert_eq!(
            set,
            vec![
                ("retention.ms".to_string(), "5000".to_string()),
                ("segment.ms".to_string(), "60000".to_string())
            ]
        );
        assert!(delete.is_empty());
        let (set, delete) = changes(&old, &new[1..2]);
        assert!(set.is_empty());
        assert_eq!(delete, vec!["retention.ms".to_string()]);
    }
}
