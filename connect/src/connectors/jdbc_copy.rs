//! The JDBC sink's bulk path into PostgreSQL: a run of same-shape rows is `COPY`ed
//! (text format) into a temporary stage table of that shape, then moved into the
//! target by one statement — `INSERT .. SELECT .. ON CONFLICT DO UPDATE` (upsert, the
//! last row of a key winning, as applying the rows in order would), a plain
//! `INSERT .. SELECT` (insert), or `UPDATE .. FROM` (update). PostgreSQL parses COPY
//! text far faster than a statement of thousands of parameters, which it must also
//! plan; the stage's columns are typed as the parameters' casts (`$n::int8` ..), so a
//! value is converted exactly as the multi-row statements convert it.
//!
//! Stage tables are `ON COMMIT DELETE ROWS` temporary tables of the session, created
//! once per shape outside the put's transaction; they vanish with the connection.
//!
//! When every column of the target has exactly the stage column's type (what
//! `auto.create` declares), a run whose keys do not repeat is COPYed straight into
//! the target — the same conversions, and no stage, sort or conflict checks. For an
//! upsert that is optimistic: it runs under a savepoint, and a unique violation (a key
//! already in the table) rolls it back and takes the stage; the shape then goes
//! through the stage for the next `DIRECT_PAUSE` runs, so a stream of updates does
//! not pay for a failed COPY each time.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use super::jdbc_config::InsertMode;
use super::jdbc_db::{Db, DbError};
use super::jdbc_dialect::{key_indexes, pg_type, ColDef, Dialect};
use super::jdbc_types::{self as types, SqlValue};

/// The stage's column holding a row's place in the put (the last of a key wins).
const SEQ: &str = "fjord_seq";

/// Runs of a shape that go through the stage after a direct COPY met an existing key.
const DIRECT_PAUSE: u32 = 16;

/// One shape's stage table, and whether (and when) it may be skipped.
#[derive(Debug)]
struct Stage {
    name: String,
    /// The target's columns have exactly the stage's types.
    direct: bool,
    /// Runs left before a direct COPY is tried again.
    pause: u32,
}

/// The stage tables of one connection, by shape (table, column names and types).
#[derive(Debug, Default)]
pub struct Stages {
    by_shape: HashMap<String, Stage>,
    /// Stages written in the current transaction (a second run must empty them first).
    used: HashSet<String>,
}

impl Stages {
    /// A new transaction: `ON COMMIT DELETE ROWS` emptied every stage at the last end.
    pub fn begin(&mut self) {
        self.used.clear();
    }

    /// The stage table for rows of `table` with `cols`, created when new (outside any
    /// transaction: a rolled-back put must not take it along). `None` when PostgreSQL
    /// refuses it: the rows then go as multi-row statements.
    pub async fn ensure(
        &mut self,
        db: &mut Db,
        table: &str,
        cols: &[ColDef],
    ) -> Result<(), DbError> {
        let key = shape_key(table, cols);
        if self.by_shape.contains_key(&key) {
            return Ok(());
        }
        let name = format!("pg_temp.fjord_stage_{}", self.by_shape.len() + 1);
        let mut sql = format!("CREATE TEMP TABLE {name} ({SEQ} int8");
        for (i, c) in cols.iter().enumerate() {
            let _ = write!(sql, ", c{} {}", i + 1, pg_type(c.ty));
        }
        sql.push_str(") ON COMMIT DELETE ROWS");
        match db.batch(&sql).await {
            Ok(()) => {}
            Err(DbError::Statement(m)) => {
                tracing::warn!(%table, error = %m, "cannot create a COPY stage table; writing with INSERT");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        // Types unknown (a refused catalog query): always through the stage.
        let types = match db.column_types(table).await {
            Ok(t) => t,
            Err(DbError::Statement(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let direct = cols.iter().all(|c| {
            types
                .iter()
                .any(|(n, t)| *n == c.name && t == pg_type(c.ty))
        });
        self.by_shape.insert(
            key,
            Stage {
                name,
                direct,
                pause: 0,
            },
        );
        Ok(())
    }

    /// Whether `ensure` made a stage for this shape (else the rows go as INSERTs).
    pub fn has(&self, table: &str, cols: &[ColDef]) -> bool {
        self.by_shape.contains_key(&shape_key(table, cols))
    }

    /// Write `rows` (each `cols`' values, in put order) to `table`: straight, or
    /// through the shape's stage (`has` must hold). `text`: the rows' COPY lines
    /// already made (`encode_row` without a sequence number), all of them and each.
    #[allow(clippy::too_many_arguments)]
    pub async fn write(
        &mut self,
        db: &mut Db,
        d: Dialect,
        table: &str,
        cols: &[ColDef],
        pk: &[String],
        mode: InsertMode,
        rows: &[&[SqlValue]],
        text: Option<(&[u8], Vec<&[u8]>)>,
    ) -> Result<(), DbError> {
        let text = text.filter(|(_, lines)| lines.len() == rows.len());
        let Some(st) = self.by_shape.get_mut(&shape_key(table, cols)) else {
            return Err(DbError::Statement(format!(
                "no COPY stage for table \"{table}\""
            )));
        };
        let stage = st.name.clone();
        let try_direct = st.direct
            && mode != InsertMode::Update
            && if st.pause > 0 {
                st.pause -= 1;
                false
            } else {
                true
            }
            && (mode == InsertMode::Insert || keys_unique(cols, pk, rows));
        if try_direct {
            let data = match &text {
                Some((all, _)) => all.to_vec(),
                None => {
                    let mut data = Vec::with_capacity(rows.len() * (16 + 24 * cols.len()));
                    for row in rows {
                        encode_row(&mut data, None, row);
                    }
                    data
                }
            };
            let copy = format!("COPY {}({}) FROM STDIN", d.quote(table), col_list(d, cols));
            if mode == InsertMode::Insert {
                // A refusal is the batch's, as a multi-row INSERT's would be.
                db.copy_in(&copy, data).await?;
                return Ok(());
            }
            // The savepoint goes out with the COPY, its release with what comes next
            // (`Db::defer`): one round trip for the three.
            db.defer("SAVEPOINT fjord_copy").await?;
            match db.copy_in(&copy, data).await {
                Ok(_) => {
                    db.defer("RELEASE SAVEPOINT fjord_copy").await?;
                    return Ok(());
                }
                Err(e) if e.is_unique_violation() => {
                    db.batch("ROLLBACK TO SAVEPOINT fjord_copy").await?;
                    if let Some(st) = self.by_shape.get_mut(&shape_key(table, cols)) {
                        st.pause = DIRECT_PAUSE;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let stage = stage.as_str();
        if !self.used.insert(stage.to_string()) {
            db.batch(&format!("TRUNCATE {stage}")).await?;
        }
        let mut data = Vec::with_capacity(rows.len() * (16 + 24 * cols.len()));
        match &text {
            Some((all, lines)) => {
                data.reserve(all.len() + 8 * lines.len());
                for (seq, line) in lines.iter().enumerate() {
                    data.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
                    data.push(b'\t');
                    data.extend_from_slice(line);
                }
            }
            None => {
                for (seq, row) in rows.iter().enumerate() {
                    encode_row(&mut data, Some(seq), row);
                }
            }
        }
        db.copy_in(&format!("COPY {stage} FROM STDIN"), data)
            .await?;
        let sql = match mode {
            InsertMode::Insert => insert_sql(d, stage, table, cols),
            InsertMode::Upsert => upsert_sql(d, stage, table, cols, pk),
            InsertMode::Update => match update_sql(d, stage, table, cols, pk) {
                Some(s) => s,
                None => return Ok(()),
            },
        };
        db.execute(&sql, &[]).await?;
        Ok(())
    }
}

fn shape_key(table: &str, cols: &[ColDef]) -> String {
    let mut k = table.to_string();
    for c in cols {
        let _ = write!(k, "\u{0}{}\u{0}{:?}", c.name, c.ty);
    }
    k
}

fn col_list(d: Dialect, cols: &[ColDef]) -> String {
    cols.iter()
        .map(|c| d.quote(&c.name))
        .collect::<Vec<_>>()
        .join(",")
}

fn stage_cols(n: usize) -> String {
    (1..=n)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The stage's key columns (`c<i>` of the pk columns).
fn stage_keys(cols: &[ColDef], pk: &[String]) -> Vec<String> {
    key_indexes(cols, pk)
        .into_iter()
        .map(|i| format!("c{}", i + 1))
        .collect()
}

/// The stage's rows, one per key (the last written), for statements that may touch a
/// target row only once.
fn last_per_key(stage: &str, keys: &[String]) -> String {
    let k = keys.join(",");
    format!("(SELECT DISTINCT ON ({k}) * FROM {stage} ORDER BY {k}, {SEQ} DESC) s")
}

fn insert_sql(d: Dialect, stage: &str, table: &str, cols: &[ColDef]) -> String {
    format!(
        "INSERT INTO {}({}) SELECT {} FROM {stage} ORDER BY {SEQ}",
        d.quote(table),
        col_list(d, cols),
        stage_cols(cols.len())
    )
}

fn upsert_sql(d: Dialect, stage: &str, table: &str, cols: &[ColDef], pk: &[String]) -> String {
    let keys = stage_keys(cols, pk);
    let conflict = pk.iter().map(|k| d.quote(k)).collect::<Vec<_>>().join(",");
    let rest: Vec<String> = cols
        .iter()
        .filter(|c| !pk.contains(&c.name))
        .map(|c| format!("{0}=EXCLUDED.{0}", d.quote(&c.name)))
        .collect();
    let action = if rest.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", rest.join(","))
    };
    format!(
        "INSERT INTO {}({}) SELECT {} FROM {} ON CONFLICT ({conflict}) {action}",
        d.quote(table),
        col_list(d, cols),
        stage_cols(cols.len()),
        last_per_key(stage, &keys)
    )
}

/// `None` when every column is a key column (nothing to update).
fn update_sql(
    d: Dialect,
    stage: &str,
    table: &str,
    cols: &[ColDef],
    pk: &[String],
) -> Option<String> {
    let keys = stage_keys(cols, pk);
    let mut set = Vec::new();
    let mut wh = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        if pk.contains(&c.name) {
            wh.push(format!("t.{}=s.c{}", d.quote(&c.name), i + 1));
        } else {
            set.push(format!("{}=s.c{}", d.quote(&c.name), i + 1));
        }
    }
    if set.is_empty() {
        return None;
    }
    Some(format!(
        "UPDATE {} AS t SET {} FROM {} WHERE {}",
        d.quote(table),
        set.join(","),
        last_per_key(stage, &keys),
        wh.join(" AND ")
    ))
}

/// Whether no two rows share a key (a direct COPY would fail on the second). Hashes
/// compared: a collision only sends the run through the stage.
fn keys_unique(cols: &[ColDef], pk: &[String], rows: &[&[SqlValue]]) -> bool {
    let idx = key_indexes(cols, pk);
    let mut seen = HashSet::with_capacity(rows.len());
    rows.iter().all(|row| {
        let mut h = DefaultHasher::new();
        for i in &idx {
            hash_value(row.get(*i).unwrap_or(&SqlValue::Null), &mut h);
        }
        seen.insert(h.finish())
    })
}

fn hash_value(v: &SqlValue, h: &mut DefaultHasher) {
    std::mem::discriminant(v).hash(h);
    match v {
        SqlValue::Null => {}
        SqlValue::Int(i) | SqlValue::Timestamp(i) | SqlValue::Time(i) => i.hash(h),
        SqlValue::Float(f) => f.to_bits().hash(h),
        SqlValue::Bool(b) => b.hash(h),
        SqlValue::Text(s) | SqlValue::Decimal(s) => s.hash(h),
        SqlValue::Bytes(b) => b.hash(h),
        SqlValue::Date(d) => d.hash(h),
    }
}

/// One COPY text line: the sequence number (stage rows), then each value (`\N` for
/// NULL), tab-separated.
pub(super) fn encode_row(out: &mut Vec<u8>, seq: Option<usize>, row: &[SqlValue]) {
    let mut first = true;
    if let Some(seq) = seq {
        out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        first = false;
    }
    for v in row {
        if !first {
            out.push(b'\t');
        }
        first = false;
        encode_value(out, v);
    }
    out.push(b'\n');
}

/// A value as COPY text: PostgreSQL's text input of the value, with backslash, tab,
/// newline and carriage return escaped.
fn encode_value(out: &mut Vec<u8>, v: &SqlValue) {
    let mut num = String::new();
    let text: &str = match v {
        SqlValue::Null => {
            out.extend_from_slice(b"\\N");
            return;
        }
        SqlValue::Int(i) => {
            out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            return;
        }
        SqlValue::Float(f) => {
            if f.is_nan() {
                "NaN"
            } else if f.is_infinite() {
                if *f > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
            } else {
                let _ = write!(num, "{f:?}");
                &num
            }
        }
        SqlValue::Bool(b) => {
            if *b {
                "true"
            } else {
                "false"
            }
        }
        SqlValue::Text(s) => s,
        SqlValue::Decimal(s) => s,
        SqlValue::Bytes(b) => {
            // bytea's hex input `\x..`, its backslash escaped for COPY.
            out.extend_from_slice(b"\\\\x");
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for x in b {
                out.push(HEX[(x >> 4) as usize]);
                out.push(HEX[(x & 15) as usize]);
            }
            return;
        }
        SqlValue::Timestamp(us) => {
            num = types::timestamp_text(*us);
            &num
        }
        SqlValue::Date(d) => {
            num = types::date_text(*d);
            &num
        }
        SqlValue::Time(us) => {
            num = types::time_text(*us);
            &num
        }
    };
    escape(out, text);
}

fn escape(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if !b.iter().any(|c| matches!(c, b'\\' | b'\t' | b'\n' | b'\r')) {
        out.extend_from_slice(b);
        return;
    }
    for &c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::jdbc_types::ColType;
    use crate::connectors::jdbc_url::Engine;

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
        ]
    }

    #[test]
    fn copy_text_escapes() {
        let mut out = Vec::new();
        encode_row(
            &mut out,
            Some(3),
            &[
                SqlValue::Int(-5),
                SqlValue::Text("a\tb\nc\rd\\e \\N".into()),
                SqlValue::Null,
                SqlValue::Bytes(vec![0, 0xff]),
                SqlValue::Float(f64::NEG_INFINITY),
                SqlValue::Bool(true),
                SqlValue::Decimal("-1.50".into()),
                SqlValue::Timestamp(1_700_000_000_123_456),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "3\t-5\ta\\tb\\nc\\rd\\\\e \\\\N\t\\N\t\\\\x00ff\t-Infinity\ttrue\t-1.50\t2023-11-14 22:13:20.123456\n"
        );
    }

    #[test]
    fn repeated_keys() {
        let pk = vec!["id".to_string()];
        let a = [SqlValue::Int(1), SqlValue::Text("a".into())];
        let b = [SqlValue::Int(2), SqlValue::Text("a".into())];
        let c = [SqlValue::Int(1), SqlValue::Text("b".into())];
        assert!(keys_unique(&cols(), &pk, &[&a, &b]));
        assert!(!keys_unique(&cols(), &pk, &[&a, &b, &c]));
        let mut out = Vec::new();
        encode_row(&mut out, None, &b);
        assert_eq!(out, b"2\ta\n");
    }

    #[test]
    fn statements() {
        let d = Dialect(Engine::Postgres);
        let pk = vec!["id".to_string()];
        let st = "pg_temp.fjord_stage_1";
        assert_eq!(
            upsert_sql(d, st, "t", &cols(), &pk),
            "INSERT INTO \"t\"(\"id\",\"name\") SELECT c1,c2 FROM (SELECT DISTINCT ON (c1) * FROM pg_temp.fjord_stage_1 ORDER BY c1, fjord_seq DESC) s ON CONFLICT (\"id\") DO UPDATE SET \"name\"=EXCLUDED.\"name\""
        );
        assert_eq!(
            insert_sql(d, st, "t", &cols()),
            "INSERT INTO \"t\"(\"id\",\"name\") SELECT c1,c2 FROM pg_temp.fjord_stage_1 ORDER BY fjord_seq"
        );
        assert_eq!(
            update_sql(d, st, "t", &cols(), &pk).unwrap(),
            "UPDATE \"t\" AS t SET \"name\"=s.c2 FROM (SELECT DISTINCT ON (c1) * FROM pg_temp.fjord_stage_1 ORDER BY c1, fjord_seq DESC) s WHERE t.\"id\"=s.c1"
        );
        assert!(update_sql(d, st, "t", &cols()[..1], &pk).is_none());
        assert!(upsert_sql(d, st, "t", &cols()[..1], &pk).ends_with("DO NOTHING"));
    }
}
