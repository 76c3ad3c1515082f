//! Schema formats: parsing (validation), the identity used to recognise a schema that
//! is already registered, normalization, and the pairwise "can a reader read a writer's
//! data" check that compatibility levels are built from.
//!
//! Layout: `avro` (apache-avro's parser and schema resolution rules), `json` (JSON
//! Schema: Confluent's compatibility rules for the common keywords, `$ref`s within the
//! schema resolved), `protobuf` (`.proto` text or base64 descriptors compiled by protox,
//! imports resolved from references, Confluent's compatibility rules).

mod avro;
mod json;
mod protobuf;

use crate::model::SchemaType;

/// A schema that parsed, in the form its format's compatibility check needs.
#[derive(Debug, Clone)]
pub enum Parsed {
    Avro(apache_avro::Schema),
    Json(serde_json::Value),
    Protobuf(Box<protobuf::Proto>),
}

/// A schema that the one being parsed references, directly or not: the reference's
/// name (for Protobuf, the path it is imported by) and the referenced version's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSchema {
    pub name: String,
    pub text: String,
}

/// Parses `text` as `kind`. `refs` are the schemas it references (transitively,
/// dependencies first), for formats that resolve names across them (Avro, Protobuf).
pub fn parse(kind: SchemaType, text: &str, refs: &[RefSchema]) -> Result<Parsed, String> {
    match kind {
        SchemaType::Avro => {
            let mut texts: Vec<String> = Vec::new();
            for r in refs {
                if !texts.contains(&r.text) {
                    texts.push(r.text.clone());
                }
            }
            avro::parse(text, &texts).map(Parsed::Avro)
        }
        SchemaType::Json => json::parse(text).map(Parsed::Json),
        SchemaType::Protobuf => protobuf::parse(text, refs).map(|p| Parsed::Protobuf(Box::new(p))),
    }
}

/// The form two registrations are compared in to decide they are "the same schema":
/// JSON formats without insignificant whitespace (object keys sorted), Protobuf as its
/// compiled descriptor (so `.proto` text and the base64 descriptor of the same file are
/// one schema). Text that does not parse compares as it is.
pub fn identity(kind: SchemaType, text: &str, refs: &[RefSchema]) -> String {
    match kind {
        SchemaType::Avro | SchemaType::Json => serde_json::from_str::<serde_json::Value>(text)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| text.to_string()),
        SchemaType::Protobuf => protobuf::identity(text, refs),
    }
}

/// The schema as `?format=serialized` asks: for Protobuf the base64-encoded
/// `FileDescriptorProto` (what Confluent's deserializers load); other formats, and
/// Protobuf text that does not compile, as stored.
pub fn serialized(kind: SchemaType, text: &str, refs: &[RefSchema]) -> String {
    match kind {
        SchemaType::Protobuf => {
            protobuf::serialized(text, refs).unwrap_or_else(|| text.to_string())
        }
        SchemaType::Avro | SchemaType::Json => text.to_string(),
    }
}

/// The text stored for `?normalize=true`: Avro as the parser's full JSON form,
/// JSON Schema compacted, Protobuf unchanged (its identity is already the compiled
/// descriptor).
pub fn normalize(kind: SchemaType, text: &str, parsed: &Parsed, has_refs: bool) -> String {
    match (kind, parsed) {
        (SchemaType::Avro, Parsed::Avro(schema)) if !has_refs => {
            serde_json::to_string(schema).unwrap_or_else(|_| identity(kind, text, &[]))
        }
        (SchemaType::Protobuf, _) => text.to_string(),
        _ => identity(kind, text, &[]),
    }
}

/// Whether data written with `writer` can be read with `reader`; the reasons if not.
pub fn can_read(writer: &Parsed, reader: &Parsed) -> Vec<String> {
    match (writer, reader) {
        (Parsed::Avro(w), Parsed::Avro(r)) => avro::can_read(w, r),
        (Parsed::Json(w), Parsed::Json(r)) => json::can_read(w, r),
        (Parsed::Protobuf(w), Parsed::Protobuf(r)) => protobuf::can_read(w, r),
        _ => vec!["schema types differ".to_string()],
    }
}
