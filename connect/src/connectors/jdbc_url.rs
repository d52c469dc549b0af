//! `connection.url` as users write it for Confluent's JDBC connector
//! (`jdbc:postgresql://host:port/db?user=..`, `jdbc:mysql://..`, `jdbc:mariadb://..`)
//! parsed into what the Rust clients need. `connection.user`/`connection.password`
//! win over `user=`/`password=` in the URL's query, as in the JDBC drivers.

use crate::config::{ConfigError, ConfigMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    /// MySQL and MariaDB speak the same protocol and SQL for what the connectors do.
    MySql,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JdbcUrl {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl JdbcUrl {
    pub fn parse(url: &str) -> Result<JdbcUrl, String> {
        let url = url.trim();
        let rest = url
            .strip_prefix("jdbc:")
            .ok_or_else(|| format!("'{url}' is not a JDBC URL (expected jdbc:postgresql://, jdbc:mysql:// or jdbc:mariadb://)"))?;
        let (scheme, rest) = rest
            .split_once("://")
            .ok_or_else(|| format!("'{url}' has no '://' after the subprotocol"))?;
        let (engine, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" => (Engine::Postgres, 5432),
            "mysql" | "mariadb" => (Engine::MySql, 3306),
            other => {
                return Err(format!(
                    "no built-in dialect for JDBC subprotocol '{other}' (built in: postgresql, mysql, mariadb)"
                ))
            }
        };
        let (hostpart, query) = match rest.split_once('?') {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        };
        let (authority, database) = match hostpart.split_once('/') {
            Some((a, d)) => (a, d.trim_end_matches('/').to_string()),
            None => (hostpart, String::new()),
        };
        // user:password@ is accepted by the MariaDB driver; keep it.
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        // Several hosts (failover lists) → the first one.
        let hostport = hostport.split(',').next().unwrap_or("");
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [ipv6]:port
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| format!("'{url}': unclosed '[' in host"))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        let port = if port.is_empty() {
            default_port
        } else {
            port.parse::<u16>()
                .map_err(|_| format!("'{url}': port '{port}' is not a number"))?
        };
        let host = if host.is_empty() {
            "localhost".to_string()
        } else {
            host
        };
        let mut user = None;
        let mut password = None;
        if let Some(u) = userinfo {
            match u.split_once(':') {
                Some((a, b)) => {
                    user = Some(a.to_string());
                    password = Some(b.to_string());
                }
                None => user = Some(u.to_string()),
            }
        }
        for kv in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "user" => user = Some(decode(v)),
                "password" => password = Some(decode(v)),
                _ => {}
            }
        }
        Ok(JdbcUrl {
            engine,
            host,
            port,
            database,
            user,
            password,
        })
    }

    /// The URL with `connection.user`/`connection.password` applied.
    pub fn from_config(m: &ConfigMap) -> Result<JdbcUrl, ConfigError> {
        let raw = crate::config::required(m, "connection.url")?;
        let mut u = JdbcUrl::parse(raw).map_err(|e| {
            ConfigError::new(
                "connection.url",
                format!("Invalid value {raw} for configuration connection.url: {e}"),
            )
        })?;
        if let Some(v) = m.get("connection.user").filter(|s| !s.is_empty()) {
            u.user = Some(v.clone());
        }
        if let Some(v) = m.get("connection.password").filter(|s| !s.is_empty()) {
            u.password = Some(v.clone());
        }
        Ok(u)
    }

    /// For logs and traces: never the password.
    pub fn redacted(&self) -> String {
        format!(
            "{}://{}:{}/{} as {}",
            match self.engine {
                Engine::Postgres => "postgresql",
                Engine::MySql => "mysql",
            },
            self.host,
            self.port,
            self.database,
            self.user.as_deref().unwrap_or("(no user)")
        )
    }
}

/// %-decoding for query values (`password=p%40ss`).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_users_write_them() {
        let u = JdbcUrl::parse("jdbc:postgresql://127.0.0.1:5433/shop?user=app&password=p%40ss")
            .unwrap();
        assert_eq!(u.engine, Engine::Postgres);
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 5433));
        assert_eq!(u.database, "shop");
        assert_eq!(u.user.as_deref(), Some("app"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        let m = JdbcUrl::parse("jdbc:mysql://db.example/inventory").unwrap();
        assert_eq!((m.engine, m.port), (Engine::MySql, 3306));
        let m = JdbcUrl::parse("jdbc:mariadb://u:pw@localhost:3307/x").unwrap();
        assert_eq!(
            (m.port, m.user.as_deref(), m.password.as_deref()),
            (3307, Some("u"), Some("pw"))
        );
        assert!(JdbcUrl::parse("postgresql://x/y").is_err());
        assert!(JdbcUrl::parse("jdbc:oracle:thin:@x:1521:db").is_err());
        assert!(JdbcUrl::parse("jdbc:mysql://h:port/db").is_err());
    }

    #[test]
    fn config_keys_win_over_the_url() {
        let m = crate::config::parse_properties(
            "connection.url=jdbc:postgresql://h/db?user=a\nconnection.user=b\nconnection.password=c\n",
        );
        let u = JdbcUrl::from_config(&m).unwrap();
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("b"), Some("c"))
        );
        assert_eq!(u.redacted(), "postgresql://h:5432/db as b");
        let bad = crate::config::parse_properties("connection.url=http://x\n");
        assert_eq!(
            JdbcUrl::from_config(&bad).unwrap_err().key,
            "connection.url"
        );
    }
}
