//! The SQL each database gets, as Confluent's dialects write it: identifier quoting,
//! the column type `auto.create`/`auto.evolve` declare for a Connect type, multi-row
//! insert, upsert (`ON CONFLICT .. DO UPDATE` / `ON DUPLICATE KEY UPDATE`), update,
//! delete, and the source's incremental queries. Pure text: no connection here.

use super::jdbc_types::ColType;
use super::jdbc_url::Engine;

/// A column the sink writes: its name, type, and whether NULL is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ColDef {
    pub name: String,
    pub ty: ColType,
    pub optional: bool,
}

/// The positions in `cols` of the primary-key columns `pk`, in `cols` order.
pub fn key_indexes(cols: &[ColDef], pk: &[String]) -> Vec<usize> {
    cols.iter()
        .enumerate()
        .filter(|(_, c)| pk.contains(&c.name))
        .map(|(i, _)| i)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(pub Engine);

impl Dialect {
    /// Quote an identifier; `a.b` is a schema-qualified name, each part quoted.
    pub fn quote(&self, ident: &str) -> String {
        ident
            .split('.')
            .map(|p| match self.0 {
                Engine::Postgres => format!("\"{}\"", p.replace('"', "\"\"")),
                Engine::MySql => format!("`{}`", p.replace('`', "``")),
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The declared type of a column (key columns of MySQL need a bounded length).
    pub fn ddl_type(&self, t: ColType, key: bool) -> String {
        match self.0 {
            Engine::Postgres => match t {
                ColType::Int8 | ColType::Int16 => "SMALLINT".into(),
                ColType::Int32 => "INT".into(),
                ColType::Int64 => "BIGINT".into(),
                ColType::Float32 => "REAL".into(),
                ColType::Float64 => "DOUBLE PRECISION".into(),
                ColType::Bool => "BOOLEAN".into(),
                ColType::Text => "TEXT".into(),
                ColType::Bytes => "BYTEA".into(),
                ColType::Decimal { .. } => "DECIMAL".into(),
                ColType::Date => "DATE".into(),
                ColType::Time => "TIME".into(),
                ColType::Timestamp => "TIMESTAMP".into(),
            },
            Engine::MySql => match t {
                ColType::Int8 => "TINYINT".into(),
                ColType::Int16 => "SMALLINT".into(),
                ColType::Int32 => "INT".into(),
                ColType::Int64 => "BIGINT".into(),
                ColType::Float32 => "FLOAT".into(),
                ColType::Float64 => "DOUBLE".into(),
                ColType::Bool => "TINYINT".into(),
                ColType::Text if key => "VARCHAR(256)".into(),
                ColType::Text => "TEXT".into(),
                ColType::Bytes if key => "VARBINARY(1024)".into(),
                ColType::Bytes => "BLOB".into(),
                ColType::Decimal { scale } => format!("DECIMAL(65,{})", scale.clamp(0, 30)),
                ColType::Date => "DATE".into(),
                ColType::Time => "TIME(3)".into(),
                ColType::Timestamp => "DATETIME(3)".into(),
            },
        }
    }

    /// The n-th (1-based) parameter of type `t`. PostgreSQL parameters are sent as
    /// text and cast here, so one binding path serves every type.
    pub fn param(&self, n: usize, t: ColType) -> String {
        match self.0 {
            Engine::MySql => "?".into(),
            Engine::Postgres => {
                let cast = pg_type(t);
                format!("${n}::{cast}")
            }
        }
    }

    pub fn create_table(&self, table: &str, cols: &[ColDef], pk: &[String]) -> String {
        let mut parts: Vec<String> = cols
            .iter()
            .map(|c| {
                let key = pk.contains(&c.name);
                format!(
                    "{} {}{}",
                    self.quote(&c.name),
                    self.ddl_type(c.ty, key),
                    if c.optional && !key {
                        " NULL"
                    } else {
                        " NOT NULL"
                    }
                )
            })
            .collect();
        if !pk.is_empty() {
            parts.push(format!(
                "PRIMARY KEY({})",
                pk.iter()
                    .map(|k| self.quote(k))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        format!(
            "CREATE TABLE {} (\n{})",
            self.quote(table),
            parts.join(",\n")
        )
    }

    pub fn add_column(&self, table: &str, c: &ColDef) -> String {
        format!(
            "ALTER TABLE {} ADD {} {} NULL",
            self.quote(table),
            self.quote(&c.name),
            self.ddl_type(c.ty, false)
        )
    }

    fn values(&self, cols: &[ColDef], rows: usize) -> String {
        let mut n = 0;
        (0..rows)
            .map(|_| {
                let row: Vec<String> = cols
                    .iter()
                    .map(|c| {
                        n += 1;
                        self.param(n, c.ty)
                    })
                    .collect();
                format!("({})", row.join(","))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn col_list(&self, cols: &[ColDef]) -> String {
        cols.iter()
            .map(|c| self.quote(&c.name))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn insert(&self, table: &str, cols: &[ColDef], rows: usize) -> String {
        format!(
            "INSERT INTO {}({}) VALUES {}",
            self.quote(table),
            self.col_list(cols),
            self.values(cols, rows)
        )
    }

    /// Insert or, when the key exists, overwrite the other columns.
    pub fn upsert(&self, table: &str, cols: &[ColDef], pk: &[String], rows: usize) -> String {
        let rest: Vec<&ColDef> = cols.iter().filter(|c| !pk.contains(&c.name)).collect();
        let head = self.insert(table, cols, rows);
        match self.0 {
            Engine::Postgres => {
                let keys = pk
                    .iter()
                    .map(|k| self.quote(k))
                    .collect::<Vec<_>>()
                    .join(",");
                if rest.is_empty() {
                    format!("{head} ON CONFLICT ({keys}) DO NOTHING")
                } else {
                    let set = rest
                        .iter()
                        .map(|c| format!("{0}=EXCLUDED.{0}", self.quote(&c.name)))
                        .collect::<Vec<_>>()
                        .join(",");
                    format!("{head} ON CONFLICT ({keys}) DO UPDATE SET {set}")
                }
            }
            Engine::MySql => {
                // With only key columns, a no-op update keeps the statement valid.
                let set = if rest.is_empty() {
                    pk.iter()
                        .map(|k| format!("{0}={0}", self.quote(k)))
                        .collect::<Vec<_>>()
                        .join(",")
                } else {
                    rest.iter()
                        .map(|c| format!("{0}=VALUES({0})", self.quote(&c.name)))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                format!("{head} ON DUPLICATE KEY UPDATE {set}")
            }
        }
    }

    /// `UPDATE .. SET non-key columns WHERE key columns`; parameters: the non-key
    /// values, then the key values (in `cols` order).
    pub fn update(&self, table: &str, cols: &[ColDef], pk: &[String]) -> String {
        let mut n = 0;
        let set: Vec<String> = cols
            .iter()
            .filter(|c| !pk.contains(&c.name))
            .map(|c| {
                n += 1;
                format!("{}={}", self.quote(&c.name), self.param(n, c.ty))
            })
            .collect();
        let wh: Vec<String> = cols
            .iter()
            .filter(|c| pk.contains(&c.name))
            .map(|c| {
                n += 1;
                format!("{}={}", self.quote(&c.name), self.param(n, c.ty))
            })
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {}",
            self.quote(table),
            set.join(","),
            wh.join(" AND ")
        )
    }

    pub fn delete(&self, table: &str, keys: &[ColDef]) -> String {
        let wh: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}={}", self.quote(&c.name), self.param(i + 1, c.ty)))
            .collect();
        format!(
            "DELETE FROM {} WHERE {}",
            self.quote(table),
            wh.join(" AND ")
        )
    }

    /// The source's query over a table or a user query (wrapped, so its own WHERE
    /// stays its own). `criteria` is the incremental condition and order, if any.
    pub fn source_query(&self, from: &SourceFrom, criteria: &str) -> String {
        let base = match from {
            SourceFrom::Table(t) => format!("SELECT * FROM {}", self.quote(t)),
            SourceFrom::Query(q) => {
                format!("SELECT * FROM ({}) fjord_q", q.trim().trim_end_matches(';'))
            }
        };
        if criteria.is_empty() {
            base
        } else {
            format!("{base} {criteria}")
        }
    }
}

/// The PostgreSQL type a value of `t` is read as: the cast of its parameter, and the
/// column type of the COPY stage (so both paths convert a value alike).
pub fn pg_type(t: ColType) -> &'static str {
    match t {
        ColType::Int8 | ColType::Int16 => "int2",
        ColType::Int32 => "int4",
        ColType::Int64 => "int8",
        ColType::Float32 => "float4",
        ColType::Float64 => "float8",
        ColType::Bool => "bool",
        ColType::Text => "text",
        ColType::Bytes => "bytea",
        ColType::Decimal { .. } => "numeric",
        ColType::Date => "date",
        ColType::Time => "time",
        ColType::Timestamp => "timestamp",
    }
}

pub enum SourceFrom {
    Table(String),
    Query(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<ColDef> {
        vec![
            ColDef {
                name: "id".into(),
                ty: ColType::Int64,
                optional: false,
            },
            ColDef {
                name: "name".into(),
                ty: ColType::Text,
                optional: true,
            },
            ColDef {
                name: "amount".into(),
                ty: ColType::Decimal { scale: 2 },
                optional: true,
            },
        ]
    }

    #[test]
    fn postgres_statements() {
        let d = Dialect(Engine::Postgres);
        let pk = vec!["id".to_string()];
        assert_eq!(
            d.create_table("orders", &cols(), &pk),
            "CREATE TABLE \"orders\" (\n\"id\" BIGINT NOT NULL,\n\"name\" TEXT NULL,\n\"amount\" DECIMAL NULL,\nPRIMARY KEY(\"id\"))"
        );
        assert_eq!(
            d.upsert("orders", &cols(), &pk, 2),
            "INSERT INTO \"orders\"(\"id\",\"name\",\"amount\") VALUES ($1::int8,$2::text,$3::numeric),($4::int8,$5::text,$6::numeric) ON CONFLICT (\"id\") DO UPDATE SET \"name\"=EXCLUDED.\"name\",\"amount\"=EXCLUDED.\"amount\""
        );
        assert_eq!(
            d.update("orders", &cols(), &pk),
            "UPDATE \"orders\" SET \"name\"=$1::text,\"amount\"=$2::numeric WHERE \"id\"=$3::int8"
        );
        assert_eq!(d.quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(d.quote("public.t"), "\"public\".\"t\"");
    }

    #[test]
    fn mysql_statements() {
        let d = Dialect(Engine::MySql);
        let pk = vec!["name".to_string()];
        assert!(d
            .create_table("t", &cols(), &pk)
            .contains("`name` VARCHAR(256) NOT NULL"));
        assert!(d
            .create_table("t", &cols(), &pk)
            .contains("`amount` DECIMAL(65,2) NULL"));
        assert_eq!(
            d.upsert("t", &cols(), &pk, 1),
            "INSERT INTO `t`(`id`,`name`,`amount`) VALUES (?,?,?) ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`amount`=VALUES(`amount`)"
        );
        assert_eq!(
            d.delete("t", &cols()[1..2]),
            "DELETE FROM `t` WHERE `name`=?"
        );
        assert_eq!(
            d.source_query(&SourceFrom::Query("select a from b;".into()), "WHERE a > ?"),
            "SELECT * FROM (select a from b) fjord_q WHERE a > ?"
        );
    }
}
