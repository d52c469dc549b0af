//! The compatibility table: (type, old schema, new schema, level, expected
//! verdict), run through `fjord_schema::check` exactly as the registry runs
//! it. Avro cases follow the Avro specification's resolution rules; Protobuf
//! and JSON Schema cases Confluent's documented rules for those types.

use fjord_schema::{check, parse, Level, SchemaType};

use Level::*;
use SchemaType::*;

/// (type, old, new, level, compatible?)
type Case = (SchemaType, &'static str, &'static str, Level, bool);

const REC_A: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
const REC_AB_DEF: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}"#;
const REC_AB: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int"}]}"#;
const REC_A_DEF: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string","default":"x"}]}"#;
const REC_EMPTY: &str = r#"{"type":"record","name":"R","fields":[]}"#;
const REC_RENAMED: &str = r#"{"type":"record","name":"S","fields":[{"name":"a","type":"string"}]}"#;
const REC_ALIAS: &str =
    r#"{"type":"record","name":"S","aliases":["R"],"fields":[{"name":"a","type":"string"}]}"#;

fn f(t: &str) -> String {
    format!(r#"{{"type":"record","name":"R","fields":[{{"name":"v","type":{t}}}]}}"#)
}

const E_AB: &str = r#"{"type":"enum","name":"E","symbols":["A","B"]}"#;
const E_ABC: &str = r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#;
const E_AB_DEF: &str = r#"{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}"#;
const E_A: &str = r#"{"type":"enum","name":"E","symbols":["A"]}"#;

const P_AB: &str = r#"syntax = "proto3"; package p; message M { string a = 1; int32 b = 2; }"#;
const P_ABC: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; int32 b = 2; string c = 3; }"#;
const P_A: &str = r#"syntax = "proto3"; package p; message M { string a = 1; }"#;
const P_B64: &str = r#"syntax = "proto3"; package p; message M { string a = 1; int64 b = 2; }"#;
const P_BSTR: &str = r#"syntax = "proto3"; package p; message M { string a = 1; string b = 2; }"#;
const P_BYTES: &str = r#"syntax = "proto3"; package p; message M { bytes a = 1; int32 b = 2; }"#;
const P_SINT: &str = r#"syntax = "proto3"; package p; message M { string a = 1; sint32 b = 2; }"#;
const P_FIX: &str = r#"syntax = "proto3"; package p; message M { fixed32 a = 1; }"#;
const P_SFIX: &str = r#"syntax = "proto3"; package p; message M { sfixed32 a = 1; }"#;
const P_TWO: &str = r#"syntax = "proto3"; package p; message M { string a = 1; int32 b = 2; } message N { string x = 1; }"#;
const P_PKG: &str = r#"syntax = "proto3"; package q; message M { string a = 1; int32 b = 2; }"#;
const P_RENAMED_FIELD: &str =
    r#"syntax = "proto3"; package p; message M { string alpha = 1; int32 beta = 2; }"#;
const P_ONEOF_ONE: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; oneof o { int32 b = 2; } }"#;
const P_ONEOF_TWO: &str =
    r#"syntax = "proto3"; package p; message M { oneof o { string a = 1; int32 b = 2; } }"#;
const P_ONEOF_EXIST: &str = r#"syntax = "proto3"; package p; message M { string a = 1; oneof o { int32 b = 2; string c = 3; } }"#;
const P_ONEOF_EXIST2: &str = r#"syntax = "proto3"; package p; message M { oneof o { string a = 1; int32 b = 2; string c = 3; } }"#;
const P_MSG_X: &str = r#"syntax = "proto3"; package p; message X { string s = 1; } message Y { string s = 1; } message M { X a = 1; }"#;
const P_MSG_Y: &str = r#"syntax = "proto3"; package p; message X { string s = 1; } message Y { string s = 1; } message M { Y a = 1; }"#;
const P_ENUM: &str = r#"syntax = "proto3"; package p; enum K { K0 = 0; K1 = 1; } message M { string a = 1; K b = 2; }"#;
const P_REP: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; repeated int32 b = 2; }"#;
const P2_OPT: &str = r#"syntax = "proto2"; package p; message M { optional string a = 1; }"#;
const P2_REQ: &str =
    r#"syntax = "proto2"; package p; message M { optional string a = 1; required int32 b = 2; }"#;

const J_CLOSED_A: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;
const J_CLOSED_AB: &str = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}"#;
const J_CLOSED_AB_REQ: &str = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"],"additionalProperties":false}"#;
const J_OPEN_A: &str = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
const J_OPEN_AB: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#;
const J_OPEN_A_REQ: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#;
const J_INT: &str = r#"{"type":"integer"}"#;
const J_NUM: &str = r#"{"type":"number"}"#;
const J_STR: &str = r#"{"type":"string"}"#;
const J_STR10: &str = r#"{"type":"string","maxLength":10}"#;
const J_STR5: &str = r#"{"type":"string","maxLength":5}"#;
const J_MIN0: &str = r#"{"type":"integer","minimum":0}"#;
const J_MIN5: &str = r#"{"type":"integer","minimum":5}"#;
const J_ENUM_AB: &str = r#"{"enum":["a","b"]}"#;
const J_ENUM_ABC: &str = r#"{"enum":["a","b","c"]}"#;
const J_ARR_STR: &str = r#"{"type":"array","items":{"type":"string"}}"#;
const J_ARR_INT: &str = r#"{"type":"array","items":{"type":"integer"}}"#;
const J_PATTERN: &str = r#"{"type":"string","pattern":"^a"}"#;
const J_ONEOF: &str = r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#;
const J_ONEOF3: &str = r#"{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}"#;
const J_PARTIAL: &str = r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#;
const J_PARTIAL_B: &str = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":{"type":"integer"}}"#;
const J_DRAFT2020: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;
const J_DRAFT4: &str = r#"{"$schema":"http://json-schema.org/draft-04/schema#","type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;

fn cases() -> Vec<(SchemaType, String, String, Level, bool)> {
    let fixed: Vec<Case> = vec![
        // --- Avro: records (spec: reader fields missing in the writer need defaults) ---
        (Avro, REC_A, REC_AB_DEF, Backward, true),
        (Avro, REC_A, REC_AB, Backward, false),
        (Avro, REC_A, REC_AB, Forward, true),
        (Avro, REC_AB, REC_A, Forward, false),
        (Avro, REC_AB, REC_A, Backward, true),
        (Avro, REC_AB_DEF, REC_A, Forward, true),
        (Avro, REC_A, REC_AB_DEF, Full, true),
        (Avro, REC_A, REC_AB, Full, false),
        (Avro, REC_A, REC_AB, None, true),
        (Avro, REC_A, REC_EMPTY, Backward, true),
        (Avro, REC_EMPTY, REC_A, Backward, false),
        (Avro, REC_EMPTY, REC_A_DEF, Backward, true),
        (Avro, REC_A, REC_A_DEF, Full, true),
        (Avro, REC_A, REC_RENAMED, Backward, false),
        (Avro, REC_A, REC_AB_DEF, BackwardTransitive, true),
        (Avro, REC_A, REC_AB, ForwardTransitive, true),
        (Avro, REC_A, REC_AB_DEF, FullTransitive, true),
        // --- Avro: enums ---
        (Avro, E_AB, E_ABC, Backward, true),
        (Avro, E_AB, E_ABC, Forward, false),
        (Avro, E_ABC, E_AB, Backward, false),
        (Avro, E_ABC, E_AB, Forward, true),
        (Avro, E_AB, E_A, Full, false),
        // The spec lets a reader's enum default cover a writer symbol it lacks;
        // apache-avro 0.21's checker does not (stricter: refused). Kept as the crate decides.
        (Avro, E_ABC, E_AB_DEF, Backward, false),
        // --- Avro: unions ---
        (
            Avro,
            r#"["null","string"]"#,
            r#"["null","string","int"]"#,
            Backward,
            true,
        ),
        (
            Avro,
            r#"["null","string","int"]"#,
            r#"["null","string"]"#,
            Backward,
            false,
        ),
        (Avro, r#""string""#, r#"["null","string"]"#, Backward, true),
        (Avro, r#"["null","string"]"#, r#""string""#, Backward, false),
        (Avro, r#"["null","string"]"#, r#""string""#, Forward, true),
        // --- Avro: names ---
        (Avro, REC_A, REC_ALIAS, None, true),
        (Avro, REC_A, REC_RENAMED, None, true),
        // --- Protobuf (Confluent's wire-level rules) ---
        (Protobuf, P_AB, P_ABC, Backward, true),
        (Protobuf, P_ABC, P_AB, Backward, true),
        (Protobuf, P_AB, P_A, Full, true),
        (Protobuf, P_AB, P_B64, Backward, true),
        (Protobuf, P_AB, P_BSTR, Backward, false),
        (Protobuf, P_AB, P_BYTES, Backward, true),
        (Protobuf, P_AB, P_SINT, Backward, false),
        (Protobuf, P_FIX, P_SFIX, Full, true),
        (Protobuf, P_TWO, P_AB, Backward, false),
        (Protobuf, P_AB, P_TWO, Backward, true),
        (Protobuf, P_AB, P_TWO, Forward, false),
        (Protobuf, P_AB, P_PKG, Backward, false),
        (Protobuf, P_AB, P_PKG, None, true),
        (Protobuf, P_AB, P_RENAMED_FIELD, Full, true),
        (Protobuf, P_AB, P_ONEOF_ONE, Backward, true),
        (Protobuf, P_AB, P_ONEOF_TWO, Backward, false),
        (Protobuf, P_ONEOF_EXIST, P_ONEOF_EXIST2, Backward, false),
        (Protobuf, P_MSG_X, P_MSG_Y, Backward, false),
        (Protobuf, P_AB, P_ENUM, Backward, true),
        (Protobuf, P_AB, P_REP, Backward, false),
        (Protobuf, P2_OPT, P2_REQ, Backward, false),
        (Protobuf, P2_REQ, P2_OPT, Backward, false),
        (Protobuf, P_ONEOF_EXIST, P_AB, Backward, false),
        // --- JSON Schema (content models) ---
        (Json, J_CLOSED_A, J_CLOSED_AB, Backward, true),
        (Json, J_CLOSED_A, J_CLOSED_AB_REQ, Backward, false),
        (Json, J_OPEN_A, J_OPEN_AB, Backward, false),
        (Json, J_OPEN_AB, J_OPEN_A, Backward, true),
        (Json, J_CLOSED_AB, J_CLOSED_A, Backward, false),
        (Json, J_CLOSED_AB, J_CLOSED_A, Forward, true),
        (Json, J_OPEN_A, J_OPEN_AB, Forward, true),
        (Json, J_OPEN_A, J_CLOSED_A, Backward, false),
        (Json, J_CLOSED_A, J_OPEN_A, Backward, true),
        (Json, J_OPEN_A_REQ, J_OPEN_A, Backward, true),
        (Json, J_OPEN_A, J_OPEN_A_REQ, Backward, false),
        (Json, J_INT, J_NUM, Backward, true),
        (Json, J_NUM, J_INT, Backward, false),
        (Json, J_STR, J_INT, Backward, false),
        (Json, J_STR, J_INT, None, true),
        (Json, J_STR10, J_STR5, Backward, false),
        (Json, J_STR5, J_STR10, Backward, true),
        (Json, J_STR5, J_STR10, Full, false),
        (Json, J_MIN0, J_MIN5, Backward, false),
        (Json, J_MIN5, J_MIN0, Backward, true),
        (Json, J_ENUM_AB, J_ENUM_ABC, Backward, true),
        (Json, J_ENUM_ABC, J_ENUM_AB, Backward, false),
        (Json, J_ARR_STR, J_ARR_INT, Backward, false),
        (Json, J_STR, J_PATTERN, Backward, false),
        (Json, J_PATTERN, J_STR, Backward, true),
        (Json, J_ONEOF, J_ONEOF3, Backward, true),
        (Json, J_ONEOF3, J_ONEOF, Backward, false),
        (Json, J_PARTIAL, J_PARTIAL_B, Backward, true),
        (Json, J_CLOSED_A, J_DRAFT2020, Full, true),
        (Json, J_DRAFT4, J_CLOSED_A, Full, true),
    ];
    let mut out: Vec<(SchemaType, String, String, Level, bool)> = fixed
        .into_iter()
        .map(|(t, o, n, l, e)| (t, o.to_string(), n.to_string(), l, e))
        .collect();
    // Avro primitive promotions inside a record field (reader = new for BACKWARD).
    for (old, new, backward_ok) in [
        ("\"int\"", "\"long\"", true),
        ("\"int\"", "\"float\"", true),
        ("\"int\"", "\"double\"", true),
        ("\"long\"", "\"float\"", true),
        ("\"long\"", "\"double\"", true),
        ("\"float\"", "\"double\"", true),
        ("\"string\"", "\"bytes\"", true),
        ("\"bytes\"", "\"string\"", true),
        ("\"long\"", "\"int\"", false),
        ("\"double\"", "\"float\"", false),
        ("\"int\"", "\"string\"", false),
        ("\"boolean\"", "\"int\"", false),
        (
            r#"{"type":"array","items":"int"}"#,
            r#"{"type":"array","items":"long"}"#,
            true,
        ),
        (
            r#"{"type":"map","values":"int"}"#,
            r#"{"type":"map","values":"string"}"#,
            false,
        ),
        (
            r#"{"type":"fixed","name":"F","size":4}"#,
            r#"{"type":"fixed","name":"F","size":8}"#,
            false,
        ),
    ] {
        out.push((Avro, f(old), f(new), Backward, backward_ok));
    }
    out.push((Avro, f("\"int\""), f("\"long\""), Forward, false));
    out.push((Avro, REC_A.to_string(), J_OPEN_A.to_string(), None, true));
    out
}

#[test]
fn compatibility_table() {
    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (i, (kind, old, new, level, expected)) in cases.iter().enumerate() {
        let old_kind = if i == cases.len() - 1 { Avro } else { *kind };
        let new_kind = if i == cases.len() - 1 { Json } else { *kind };
        let o = parse(old_kind, old, &[]).unwrap_or_else(|e| panic!("case {i}: old: {e}"));
        let n = parse(new_kind, new, &[]).unwrap_or_else(|e| panic!("case {i}: new: {e}"));
        let msgs = check(*level, &n, &[(1, o)]);
        if msgs.is_empty() != *expected {
            failures.push(format!(
                "case {i} {kind:?} {level:?}: expected {} got {:?}\n  old {old}\n  new {new}",
                if *expected {
                    "compatible"
                } else {
                    "incompatible"
                },
                msgs
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn schema_type_change_is_incompatible() {
    let o = parse(Avro, REC_A, &[]).expect("avro");
    let n = parse(Json, J_OPEN_A, &[]).expect("json");
    assert!(!check(Backward, &n, &[(1, o)]).is_empty());
}

#[test]
fn transitive_levels_check_every_version() {
    // v1 {a}, v2 {a, b=0}; candidate {a, b} (no default): fine with v2 only.
    let v1 = parse(Avro, REC_A, &[]).expect("v1");
    let v2 = parse(Avro, REC_AB_DEF, &[]).expect("v2");
    let cand = parse(Avro, REC_AB, &[]).expect("v3");
    let hist = vec![(1, v1), (2, v2)];
    assert!(check(Full, &cand, &hist).is_empty());
    assert!(!check(FullTransitive, &cand, &hist).is_empty());
    assert!(check(Backward, &cand, &hist).is_empty());
    assert!(!check(BackwardTransitive, &cand, &hist).is_empty());
    assert!(check(ForwardTransitive, &cand, &hist).is_empty());
    let msgs = check(BackwardTransitive, &cand, &hist);
    assert!(
        msgs.iter().any(|m| m.contains("oldSchemaVersion: 1")),
        "{msgs:?}"
    );
}

#[test]
fn canonical_form_ignores_whitespace_and_key_order() {
    let a = parse(Avro, REC_AB_DEF, &[]).expect("a");
    let spaced = r#"{ "fields" : [ {"type":"string", "name":"a"}, {"default":0,"name":"b","type":"int"} ],
                      "name" : "R", "type" : "record" }"#;
    let b = parse(Avro, spaced, &[]).expect("b");
    assert_eq!(a.canonical(), b.canonical());
    let j1 = parse(Json, J_CLOSED_AB, &[]).expect("j1");
    let j2 = parse(Json, &J_CLOSED_AB.replace(',', " , "), &[]).expect("j2");
    assert_eq!(j1.canonical(), j2.canonical());
}

#[test]
fn bad_schemas_are_refused_with_the_parsers_message() {
    for (kind, text) in [
        (Avro, "{"),
        (Avro, r#"{"type":"record","name":"X"}"#),
        (Avro, r#"{"type":"nope"}"#),
        (Protobuf, "message M { string a = 1 }"),
        (
            Protobuf,
            r#"syntax = "proto3"; message M { Unknown a = 1; }"#,
        ),
        (Json, r#"{"type": 12}"#),
        (Json, "[1]"),
    ] {
        let e = parse(kind, text, &[]).expect_err(text);
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn protobuf_references_are_imports() {
    let dep = fjord_schema::ResolvedRef {
        name: "common.proto".into(),
        schema: r#"syntax = "proto3"; package c; message Money { int64 cents = 1; }"#.into(),
    };
    let main = r#"syntax = "proto3"; package o; import "common.proto"; message Order { c.Money total = 1; }"#;
    let p = parse(Protobuf, main, &[dep]).expect("with its import");
    assert!(matches!(p, fjord_schema::Parsed::Protobuf(_)));
    assert!(parse(Protobuf, main, &[]).is_err());
}

#[test]
fn avro_references_are_named_types() {
    let dep = fjord_schema::ResolvedRef {
        name: "ex.Address".into(),
        schema: r#"{"type":"record","name":"Address","namespace":"ex","fields":[{"name":"city","type":"string"}]}"#.into(),
    };
    let main = r#"{"type":"record","name":"Person","namespace":"ex","fields":[{"name":"home","type":"ex.Address"}]}"#;
    parse(Avro, main, &[dep]).expect("with its reference");
    assert!(parse(Avro, main, &[]).is_err());
}
