//! Protobuf schemas: `.proto` text (or, as confluent-kafka's serializers send
//! it, a base64 `FileDescriptorProto`) compiled in-process by `protox`, with
//! references as imports; Confluent's wire-level compatibility rules (field
//! numbers and wire types, removed messages, required fields, `oneof` moves);
//! and the message-index paths of the Confluent framing.

use std::collections::HashMap;

use base64::Engine;
use prost::Message;
use prost_reflect::{Cardinality, DescriptorPool, FileDescriptor, Kind, MessageDescriptor};
use prost_types::FileDescriptorProto;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::{ResolvedRef, SchemaError};

/// The file name a `.proto` text without one of its own is compiled under.
const MAIN: &str = "__fjord_main__.proto";

/// A compiled Protobuf schema: its main file within a pool holding its imports.
#[derive(Debug, Clone)]
pub struct ProtoSchema {
    pub file: FileDescriptor,
    pub canonical: String,
}

enum Source {
    Text(String),
    Proto(Box<FileDescriptorProto>),
}

struct MapResolver(HashMap<String, Source>);

impl FileResolver for MapResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(Source::Text(t)) => File::from_source(name, t),
            Some(Source::Proto(p)) => Ok(File::from_file_descriptor_proto((**p).clone())),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// A base64 `FileDescriptorProto` (what confluent-kafka sends), if `text` is one.
fn as_descriptor(text: &str) -> Option<FileDescriptorProto> {
    let t = text.trim();
    if t.is_empty() || t.contains(char::is_whitespace) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(t).ok()?;
    let p = FileDescriptorProto::decode(bytes.as_slice()).ok()?;
    (!p.name().is_empty()).then_some(p)
}

impl ProtoSchema {
    /// Compile `text` with `refs` as the files it imports (by reference name).
    pub fn parse(text: &str, refs: &[ResolvedRef]) -> Result<ProtoSchema, SchemaError> {
        let mut files = HashMap::new();
        for r in refs {
            let src = match as_descriptor(&r.schema) {
                Some(mut p) => {
                    p.name = Some(r.name.clone());
                    Source::Proto(Box::new(p))
                }
                None => Source::Text(r.schema.clone()),
            };
            files.insert(r.name.clone(), src);
        }
        let main = match as_descriptor(text) {
            Some(p) => {
                let name = p.name().to_string();
                files.insert(name.clone(), Source::Proto(Box::new(p)));
                name
            }
            None => {
                files.insert(MAIN.to_string(), Source::Text(text.to_string()));
                MAIN.to_string()
            }
        };
        let mut chain = ChainFileResolver::new();
        chain.add(MapResolver(files));
        chain.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(chain);
        compiler.include_imports(true);
        compiler
            .open_file(&main)
            .map_err(|e| SchemaError::Invalid(e.to_string()))?;
        let pool = compiler.descriptor_pool();
        let file = pool
            .get_file_by_name(&main)
            .ok_or_else(|| SchemaError::Invalid("compiled file missing".into()))?;
        Ok(ProtoSchema {
            file,
            canonical: text.trim().to_string(),
        })
    }

    /// The pool the schema's types live in.
    pub fn pool(&self) -> &DescriptorPool {
        self.file.parent_pool()
    }

    /// The main file as a base64 `FileDescriptorProto` (`?format=serialized`).
    pub fn serialized_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(self.file.file_descriptor_proto().encode_to_vec())
    }

    /// The message a Confluent message-index path names (`[]` or `[0]`: the first).
    pub fn message_by_indexes(&self, idx: &[i32]) -> Option<MessageDescriptor> {
        let idx: &[i32] = if idx.is_empty() { &[0] } else { idx };
        let first = usize::try_from(idx[0]).ok()?;
        let mut m = self.file.messages().nth(first)?;
        for i in &idx[1..] {
            let next = m.child_messages().nth(usize::try_from(*i).ok()?)?;
            m = next;
        }
        Some(m)
    }

    /// The message-index path of a message by full name (None if not in this file).
    pub fn indexes_of(&self, full_name: &str) -> Option<Vec<i32>> {
        fn walk(ms: Vec<MessageDescriptor>, want: &str, path: &mut Vec<i32>) -> bool {
            for (i, m) in ms.into_iter().enumerate() {
                path.push(i as i32);
                if m.full_name() == want || walk(m.child_messages().collect(), want, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        let mut path = Vec::new();
        walk(self.file.messages().collect(), full_name, &mut path).then_some(path)
    }

    /// The reasons `self` (reader) cannot read what `writer` wrote; empty when it can.
    pub fn can_read(&self, writer: &ProtoSchema) -> Vec<String> {
        let mut out = Vec::new();
        if self.file.package_name() != writer.file.package_name() {
            out.push(msg(
                "PACKAGE_CHANGED",
                &format!(
                    "package changed from '{}' to '{}'",
                    writer.file.package_name(),
                    self.file.package_name()
                ),
            ));
        }
        for wm in all_messages(&writer.file) {
            match self.pool().get_message_by_name(wm.full_name()) {
                None => out.push(msg(
                    "MESSAGE_REMOVED",
                    &format!("message '{}' removed", wm.full_name()),
                )),
                Some(rm) => compare_message(&rm, &wm, &mut out),
            }
        }
        out
    }
}

fn msg(kind: &str, description: &str) -> String {
    format!("{{errorType:\"{kind}\", description:\"{description}\"}}")
}

fn all_messages(f: &FileDescriptor) -> Vec<MessageDescriptor> {
    fn walk(m: MessageDescriptor, out: &mut Vec<MessageDescriptor>) {
        for c in m.child_messages() {
            walk(c, out);
        }
        out.push(m);
    }
    let mut out = Vec::new();
    for m in f.messages() {
        walk(m, &mut out);
    }
    out
}

/// Fields of one wire group may change into each other (Confluent's groups).
fn wire_group(k: &Kind) -> u8 {
    match k {
        Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool | Kind::Enum(_) => 0,
        Kind::Sint32 | Kind::Sint64 => 1,
        Kind::Fixed32 | Kind::Sfixed32 => 2,
        Kind::Fixed64 | Kind::Sfixed64 => 3,
        Kind::Float => 4,
        Kind::Double => 5,
        Kind::String | Kind::Bytes => 6,
        Kind::Message(_) => 7,
    }
}

fn real_oneof(f: &prost_reflect::FieldDescriptor) -> Option<String> {
    f.containing_oneof()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.name().to_string())
}

fn compare_message(r: &MessageDescriptor, w: &MessageDescriptor, out: &mut Vec<String>) {
    let name = w.full_name();
    for wf in w.fields() {
        let Some(rf) = r.get_field(wf.number()) else {
            if wf.cardinality() == Cardinality::Required {
                out.push(msg(
                    "REQUIRED_FIELD_REMOVED",
                    &format!("required field {} of '{name}' removed", wf.number()),
                ));
            } else if real_oneof(&wf).is_some() {
                out.push(msg(
                    "ONEOF_FIELD_REMOVED",
                    &format!("field {} removed from a oneof of '{name}'", wf.number()),
                ));
            }
            continue;
        };
        let (rk, wk) = (rf.kind(), wf.kind());
        if wire_group(&rk) != wire_group(&wk) {
            out.push(msg(
                "FIELD_KIND_CHANGED",
                &format!(
                    "field {} of '{name}' changed from {:?} to {:?}",
                    wf.number(),
                    kind_name(&wk),
                    kind_name(&rk)
                ),
            ));
        } else {
            let named = match (&rk, &wk) {
                (Kind::Message(a), Kind::Message(b)) => Some((a.full_name(), b.full_name())),
                (Kind::Enum(a), Kind::Enum(b)) => Some((a.full_name(), b.full_name())),
                _ => None,
            };
            if let Some((a, b)) = named {
                if a != b {
                    out.push(msg(
                        "FIELD_NAMED_TYPE_CHANGED",
                        &format!(
                            "field {} of '{name}' changed type from '{b}' to '{a}'",
                            wf.number()
                        ),
                    ));
                }
            }
        }
        let (rrep, wrep) = (rf.is_list() || rf.is_map(), wf.is_list() || wf.is_map());
        if rrep != wrep && wire_group(&wk) < 6 {
            out.push(msg(
                "FIELD_CARDINALITY_CHANGED",
                &format!(
                    "field {} of '{name}' changed between repeated and singular",
                    wf.number()
                ),
            ));
        }
        if rf.cardinality() == Cardinality::Required && wf.cardinality() != Cardinality::Required {
            out.push(msg(
                "REQUIRED_FIELD_ADDED",
                &format!("field {} of '{name}' became required", wf.number()),
            ));
        }
    }
    for rf in r.fields() {
        if w.get_field(rf.number()).is_none() && rf.cardinality() == Cardinality::Required {
            out.push(msg(
                "REQUIRED_FIELD_ADDED",
                &format!("required field {} added to '{name}'", rf.number()),
            ));
        }
    }
    // oneof moves: fields that were outside any oneof in the writer and are
    // inside one in the reader.
    for o in r.oneofs().filter(|o| !o.is_synthetic()) {
        let mut moved = 0;
        let mut existing = false;
        for rf in o.fields() {
            if let Some(wf) = w.get_field(rf.number()) {
                match real_oneof(&wf) {
                    None => moved += 1,
                    Some(_) => existing = true,
                }
            }
        }
        if moved > 1 {
            out.push(msg(
                "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
                &format!("several fields of '{name}' moved into oneof '{}'", o.name()),
            ));
        } else if moved == 1 && existing {
            out.push(msg(
                "FIELD_MOVED_TO_EXISTING_ONEOF",
                &format!(
                    "a field of '{name}' moved into existing oneof '{}'",
                    o.name()
                ),
            ));
        }
    }
}

fn kind_name(k: &Kind) -> String {
    match k {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}
