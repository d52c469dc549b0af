//! The schema-aware converters' view of the Schema Registry: what a converter's config says
//! (`schema.registry.url`, `auto.register.schemas`, the subject name strategy, Confluent's
//! keys) on top of fjord-http's registry client.

use std::sync::Mutex;

use fjord_http::registry::SchemaRegistry;
pub use fjord_http::registry::{RegistryError, Strategy};

use crate::config::{boolean, ConfigError, ConfigMap};

/// What a schema-aware converter's config says about the registry: where it
/// is, whether to register, and how subjects are named (keys Confluent's).
#[derive(Debug)]
pub struct Subjects {
    pub registry: SchemaRegistry,
    pub is_key: bool,
    pub strategy: Strategy,
}

impl PartialEq for Subjects {
    fn eq(&self, o: &Subjects) -> bool {
        (self.registry.url(), self.is_key, self.strategy)
            == (o.registry.url(), o.is_key, o.strategy)
    }
}

impl Subjects {
    /// `what` is the converter's key (`value.converter`), named in errors.
    pub fn from_config(what: &str, c: &ConfigMap) -> Result<Subjects, ConfigError> {
        let key = |k: &str| format!("{what}.{k}");
        let url = c
            .get("schema.registry.url")
            .map(|u| u.split(',').next().unwrap_or("").trim())
            .ok_or_else(|| {
                ConfigError::new(
                    &key("schema.registry.url"),
                    "Missing required configuration with no default value",
                )
            })?;
        let auto_register = boolean(c, "auto.register.schemas", true)
            .map_err(|e| ConfigError::new(&key("auto.register.schemas"), e.message))?;
        let is_key = what.starts_with("key");
        let strategy_key = if is_key {
            "key.subject.name.strategy"
        } else {
            "value.subject.name.strategy"
        };
        let strategy = match c.get(strategy_key) {
            None => Strategy::Topic,
            Some(class) => Strategy::from_class(class.trim()).ok_or_else(|| {
                ConfigError::new(&key(strategy_key), format!("Class {class} could not be found (TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy)"))
            })?,
        };
        let registry = SchemaRegistry::new(url, auto_register)
            .map_err(|e| ConfigError::new(&key("schema.registry.url"), e))?;
        Ok(Subjects {
            registry,
            is_key,
            strategy,
        })
    }

    /// The id of a schema written to `topic` (`record` names it for the record strategies).
    pub async fn id(
        &self,
        topic: &str,
        record: &str,
        kind: &str,
        text: &str,
    ) -> Result<i32, RegistryError> {
        let subject = self.strategy.subject(topic, self.is_key, record);
        self.registry.id(&subject, kind, text).await
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
