//! Sessions with the server: connect, close (waiting until the server has closed it),
//! and pipelined bulk creates and deletes for the setup and the cleanup.

use crate::args::Args;
use std::time::Duration;
use zookeeper_client::{Acls, Client, CreateMode};

/// Opens a session to `--connect`.
pub async fn connect(args: &Args) -> Result<Client, String> {
    Client::connector()
        .with_session_timeout(Duration::from_millis(args.session_timeout_ms))
        .connect(&args.connect)
        .await
        .map_err(|e| format!("connect {}: {e}", args.connect))
}

/// Drops the client (which sends CloseSession) and waits until the session is closed.
pub async fn close(client: Client) {
    let mut watcher = client.state_watcher();
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while !watcher.changed().await.is_terminated() {}
    })
    .await;
}

/// Creates every (path, data) as a persistent znode: requests go out back to back
/// (pipelined), 1,000 at a time, and are awaited in order.
pub async fn create_all(c: &Client, items: &[(String, Vec<u8>)]) -> Result<(), String> {
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for chunk in items.chunks(1000) {
        let futs: Vec<_> = chunk.iter().map(|(p, d)| c.create(p, d, &opts)).collect();
        for f in futs {
            f.await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Deletes every path, pipelined like `create_all`; returns how many deletes failed.
pub async fn delete_all(c: &Client, paths: &[String]) -> usize {
    let mut failed = 0;
    for chunk in paths.chunks(1000) {
        let futs: Vec<_> = chunk.iter().map(|p| c.delete(p, None)).collect();
        for f in futs {
            failed += f.await.is_err() as usize;
        }
    }
    failed
}
