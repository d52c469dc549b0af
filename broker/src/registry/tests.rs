//! The registry's semantics on the in-memory twin of the coordinator tree:
//! ids by content, versions, Confluent's delete rules, config and mode, and
//! concurrent registrations deciding one id per schema.

use std::sync::Arc;

use serde_json::json;

use super::service::{Registry, SchemaRequest, VersionSel};
use super::store::Store;

fn reg() -> Arc<Registry> {
    Arc::new(Registry::new(Store::start_memory(None)))
}

fn avro(name: &str, fields: &[(&str, &str)]) -> SchemaRequest {
    let fs: Vec<_> = fields
        .iter()
        .map(|(n, t)| json!({"name": n, "type": t}))
        .collect();
    SchemaRequest {
        schema: Some(json!({"type": "record", "name": name, "fields": fs}).to_string()),
        ..Default::default()
    }
}

#[tokio::test]
async fn same_content_same_id_new_content_new_version() {
    let r = reg();
    let a = r
        .register("s", &avro("A", &[("x", "string")]))
        .await
        .expect("a");
    let again = r
        .register("s", &avro("A", &[("x", "string")]))
        .await
        .expect("again");
    assert_eq!(a, again);
    assert_eq!(a["id"], 1);
    let other = r
        .register("t", &avro("A", &[("x", "string")]))
        .await
        .expect("t");
    assert_eq!(other["id"], 1);
    assert_eq!(other["version"], 1);
    let e = r
        .register("s", &avro("A", &[("x", "string"), ("y", "int")]))
        .await
        .expect_err("no default: not backward compatible");
    assert_eq!((e.status, e.code), (409, 409));
    let v = r.versions("s", false).await.expect("versions");
    assert_eq!(v, json!([1]));
}

/// A broker's watch-fed state can hold a subject's version and the schema's
/// hash before the schema itself: registering the same schema again then
/// answers the existing version instead of adding a duplicate one.
#[tokio::test]
async fn same_schema_again_while_its_id_node_is_not_seen_yet() {
    let store = Store::start_memory(None);
    let r = Arc::new(Registry::new(store.clone()));
    let a = r
        .register("s", &avro("A", &[("x", "string")]))
        .await
        .expect("a");
    store.forget_schema(1);
    let again = r
        .register("s", &avro("A", &[("x", "string")]))
        .await
        .expect("again");
    assert_eq!(again, a);
    assert_eq!(store.state().subjects.get("s").map(|v| v.len()), Some(1));
}

#[tokio::test]
async fn delete_rules() {
    let r = reg();
    r.register("d", &avro("A", &[("x", "string")]))
        .await
        .expect("1");
    let e = r
        .delete_version("d", VersionSel::Num(1), true)
        .await
        .expect_err("hard first");
    assert_eq!(e.code, 40407);
    assert_eq!(
        r.delete_version("d", VersionSel::Num(1), false)
            .await
            .expect("soft"),
        json!(1)
    );
    assert_eq!(
        r.delete_version("d", VersionSel::Num(1), false)
            .await
            .expect_err("twice")
            .code,
        40406
    );
    assert_eq!(
        r.delete_subject("d", false)
            .await
            .expect_err("nothing live")
            .code,
        40404
    );
    assert_eq!(r.delete_subject("d", true).await.expect("hard"), json!([1]));
    assert_eq!(r.versions("d", true).await.expect_err("gone").code, 40401);
}

#[tokio::test]
async fn config_and_mode() {
    let r = reg();
    assert_eq!(
        r.get_config(None, false).expect("global"),
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_eq!(
        r.get_config(Some("s"), false).expect_err("none").code,
        40408
    );
    r.put_config(Some("s"), &json!({"compatibility": "none"}))
        .await
        .expect("set");
    assert_eq!(
        r.get_config(Some("s"), false).expect("s"),
        json!({"compatibilityLevel": "NONE"})
    );
    assert_eq!(
        r.put_config(None, &json!({"compatibility": "bogus"}))
            .await
            .expect_err("bad")
            .code,
        42203
    );
    r.put_mode(Some("s"), &json!({"mode": "READONLY"}), false)
        .await
        .expect("ro");
    let e = r
        .register("s", &avro("A", &[("x", "string")]))
        .await
        .expect_err("read-only");
    assert_eq!(e.code, 42205);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_agree() {
    let r = reg();
    let mut tasks = Vec::new();
    for k in 0..8 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let req = avro(&format!("R{i}"), &[("f", "string")]);
                let v = r
                    .register(&format!("c{i}-{}", k % 2), &req)
                    .await
                    .expect("register");
                ids.push(v["id"].as_i64().expect("id"));
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("task"));
    }
    for k in 1..all.len() {
        assert_eq!(all[k], all[0]);
    }
    let mut distinct = all[0].clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 20);
}

#[tokio::test]
async fn bad_input_never_writes() {
    let r = reg();
    let bad = SchemaRequest {
        schema: Some("{not json".into()),
        ..Default::default()
    };
    assert_eq!(r.register("b", &bad).await.expect_err("bad").code, 42201);
    assert_eq!(r.list_subjects("", true, false), json!([]));
    assert_eq!(r.store.state().counter, 0);
}
