//! The light checks after a run: what the server holds must agree with what the
//! workers were told succeeded.

use crate::args::{Args, Mode};
use crate::payload::payload;
use std::time::Duration;
use zookeeper_client::Client;

/// Problems found, as sentences; empty when the run checks out.
/// `bad_reads` counts reads that returned wrong bytes or no node; `created` is how many
/// sequential creates succeeded.
pub async fn check(
    args: &Args,
    admin: &Client,
    root: &str,
    first_key: Option<&str>,
    bad_reads: u64,
    created: usize,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    if bad_reads > 0 {
        problems.push(format!("{bad_reads} reads returned wrong bytes or no node"));
    }
    match args.mode {
        Mode::Create => {
            let st = admin
                .check_stat(&format!("{root}/c"))
                .await
                .map_err(|e| e.to_string())?;
            let n = st.map(|s| s.num_children).unwrap_or(-1);
            if n as usize != created {
                problems.push(format!("{n} children but {created} successful creates"));
            }
        }
        Mode::Set | Mode::Mixed => {
            let key = first_key.ok_or("no key to check")?;
            let want = payload(0, u64::MAX >> 24, args.size);
            admin
                .set_data(key, &want, None)
                .await
                .map_err(|e| e.to_string())?;
            let (got, _) = admin.get_data(key).await.map_err(|e| e.to_string())?;
            if got != want {
                problems.push("get after set returned different bytes".into());
            }
        }
        Mode::SessionChurn => {
            // The server may still be expiring the last sessions: give it five seconds.
            let mut n = -1;
            for _ in 0..50 {
                let st = admin
                    .check_stat(&format!("{root}/e"))
                    .await
                    .map_err(|e| e.to_string())?;
                n = st.map_or(-1, |s| s.num_children);
                if n == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if n != 0 {
                problems.push(format!("{n} ephemerals left after their sessions closed"));
            }
        }
        Mode::Get | Mode::Exists => {}
    }
    Ok(problems)
}
