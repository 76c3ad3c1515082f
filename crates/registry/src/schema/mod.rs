//! Schema formats: parsing (validation), the identity used to recognise a schema that
//! is already registered, normalization, and the pairwise "can a reader read a writer's
//! data" check that compatibility levels are built from.
//!
//! Layout: `avro` (complete: apache-avro's parser and schema resolution rules),
//! `json` (JSON Schema: validity and a structural subset of the compatibility rules),
//! `protobuf` (partial: a syntax sanity check, and only the wire-type rule for a field
//! number kept on both sides).

mod avro;
mod json;
mod protobuf;

use crate::model::SchemaType;

/// A schema that parsed, in the form its format's compatibility check needs.
#[derive(Debug, Clone)]
pub enum Parsed {
    Avro(apache_avro::Schema),
    Json(serde_json::Value),
    Protobuf(protobuf::Proto),
}

/// Parses `text` as `kind`. `refs` are the texts of the schemas it references
/// (transitively), for formats that resolve names across them (Avro).
pub fn parse(kind: SchemaType, text: &str, refs: &[String]) -> Result<Parsed, String> {
    match kind {
        SchemaType::Avro => avro::parse(text, refs).map(Parsed::Avro),
        SchemaType::Json => json::parse(text).map(Parsed::Json),
        SchemaType::Protobuf => protobuf::parse(text).map(Parsed::Protobuf),
    }
}

/// The form two registrations are compared in to decide they are "the same schema":
/// JSON formats without insignificant whitespace (object keys sorted), Protobuf with
/// runs of whitespace collapsed. Text that does not parse compares as it is.
pub fn identity(kind: SchemaType, text: &str) -> String {
    match kind {
        SchemaType::Avro | SchemaType::Json => serde_json::from_str::<serde_json::Value>(text)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| text.to_string()),
        SchemaType::Protobuf => protobuf::collapse_whitespace(text),
    }
}

/// The text stored for `?normalize=true`: Avro as the parser's full JSON form,
/// JSON Schema compacted, Protobuf unchanged.
pub fn normalize(kind: SchemaType, text: &str, parsed: &Parsed, has_refs: bool) -> String {
    match (kind, parsed) {
        (SchemaType::Avro, Parsed::Avro(schema)) if !has_refs => {
            serde_json::to_string(schema).unwrap_or_else(|_| identity(kind, text))
        }
        _ => identity(kind, text),
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
