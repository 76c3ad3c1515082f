//! Connect schema <-> Protobuf, as Confluent's `ProtobufData` maps them: a struct is a
//! proto3 message (named by the Connect name's last part, in the package of the rest;
//! unnamed, `ConnectDefault1`), its fields numbered from 1 in order, nested structs
//! nested messages, arrays `repeated`, maps `map<K, V>`; int8/int16/int32 are `int32`.
//! Read back, every singular field is optional (proto3 has no required fields).
//!
//! `.proto` text is compiled by protox (the registry's compiler) into a prost-reflect
//! pool, which encodes and decodes the messages.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use gregor_connect_api::{ConnectError, Field, Schema, SchemaType as T};
use prost::Message as _;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

/// The name the schema's own file is compiled under.
pub const MAIN: &str = "schema.proto";

/// A Connect struct schema as `.proto` text, and the full name of its message.
pub fn to_proto(schema: &Schema) -> Result<(String, String), ConnectError> {
    if schema.schema_type != T::Struct {
        return Err(ConnectError::Data(format!(
            "ProtobufConverter needs a struct schema, not {}",
            schema.schema_type.name()
        )));
    }
    let full = schema
        .name
        .clone()
        .unwrap_or_else(|| "ConnectDefault1".into());
    let (package, name) = match full.rsplit_once('.') {
        Some((p, n)) => (Some(p), n),
        None => (None, full.as_str()),
    };
    let mut out = String::from("syntax = \"proto3\";\n");
    if let Some(p) = package {
        out.push_str(&format!("package {p};\n"));
    }
    out.push('\n');
    message(&mut out, name, schema, 0)?;
    Ok((out, full))
}

fn message(out: &mut String, name: &str, s: &Schema, depth: usize) -> Result<(), ConnectError> {
    let pad = "  ".repeat(depth);
    out.push_str(&format!("{pad}message {name} {{\n"));
    // Nested message types, by name: a struct used by several fields is declared once.
    let mut nested: BTreeMap<String, &Schema> = BTreeMap::new();
    for (i, f) in s.fields.iter().enumerate() {
        let (label, ty) = field_type(&f.name, &f.schema, &mut nested)?;
        out.push_str(&format!("{pad}  {label}{ty} {} = {};\n", f.name, i + 1));
    }
    for (n, s) in nested {
        message(out, &n, s, depth + 1)?;
    }
    out.push_str(&format!("{pad}}}\n"));
    Ok(())
}

fn field_type<'a>(
    field: &str,
    s: &'a Schema,
    nested: &mut BTreeMap<String, &'a Schema>,
) -> Result<(&'static str, String), ConnectError> {
    let unsupported =
        |why: &str| ConnectError::Data(format!("Protobuf cannot represent field {field}: {why}"));
    match s.schema_type {
        T::Array => {
            let items = s
                .value_schema
                .as_deref()
                .ok_or_else(|| unsupported("no items"))?;
            if matches!(items.schema_type, T::Array | T::Map) {
                return Err(unsupported("an array of arrays or maps"));
            }
            Ok(("repeated ", scalar_or_message(field, items, nested)?))
        }
        T::Map => {
            let k = s
                .key_schema
                .as_deref()
                .ok_or_else(|| unsupported("no key schema"))?;
            let v = s
                .value_schema
                .as_deref()
                .ok_or_else(|| unsupported("no value schema"))?;
            if !matches!(
                k.schema_type,
                T::String | T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::Boolean
            ) || matches!(v.schema_type, T::Array | T::Map)
            {
                return Err(unsupported("a map with these key or value types"));
            }
            let key = scalar_or_message(field, k, nested)?;
            let value = scalar_or_message(field, v, nested)?;
            Ok(("", format!("map<{key}, {value}>")))
        }
        _ => Ok(("", scalar_or_message(field, s, nested)?)),
    }
}

fn scalar_or_message<'a>(
    field: &str,
    s: &'a Schema,
    nested: &mut BTreeMap<String, &'a Schema>,
) -> Result<String, ConnectError> {
    Ok(match s.schema_type {
        T::Int8 | T::Int16 | T::Int32 => "int32".into(),
        T::Int64 => "int64".into(),
        T::Float32 => "float".into(),
        T::Float64 => "double".into(),
        T::Boolean => "bool".into(),
        T::String => "string".into(),
        T::Bytes => "bytes".into(),
        T::Struct => {
            let name = match &s.name {
                Some(n) => n.rsplit('.').next().unwrap_or(n).to_string(),
                None => camel(field),
            };
            nested.insert(name.clone(), s);
            name
        }
        T::Array | T::Map => {
            return Err(ConnectError::Data(format!(
                "Protobuf cannot represent field {field}: nested arrays or maps"
            )))
        }
    })
}

fn camel(field: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in field.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Compiles a schema (`.proto` text or a base64 `FileDescriptorProto`) with the files
/// it imports (by import name), the well-known types built in.
pub fn compile(
    main: &str,
    imports: HashMap<String, String>,
) -> Result<DescriptorPool, ConnectError> {
    let mut files = imports;
    files.insert(MAIN.to_string(), main.to_string());
    let mut chain = ChainFileResolver::new();
    chain.add(Sources(files));
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_file(MAIN)
        .map_err(|e| ConnectError::Data(format!("Invalid Protobuf schema: {e}")))?;
    Ok(compiler.descriptor_pool())
}

/// The message at `path` (Confluent's message indexes) of the compiled main file.
pub fn message_at(pool: &DescriptorPool, path: &[i32]) -> Result<MessageDescriptor, ConnectError> {
    let bad = || ConnectError::Data(format!("No Protobuf message at message indexes {path:?}"));
    let file = pool.get_file_by_name(MAIN).ok_or_else(bad)?;
    let (first, rest) = path.split_first().ok_or_else(bad)?;
    let mut msg = file
        .messages()
        .nth(usize::try_from(*first).map_err(|_| bad())?)
        .ok_or_else(bad)?;
    for i in rest {
        let next = msg
            .child_messages()
            .nth(usize::try_from(*i).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        msg = next;
    }
    Ok(msg)
}

/// The Connect schema of a message.
pub fn message_schema(desc: &MessageDescriptor, depth: usize) -> Result<Schema, ConnectError> {
    if depth > 32 {
        return Err(ConnectError::Data(format!(
            "Protobuf message {} nests more than 32 levels (a recursive type?)",
            desc.full_name()
        )));
    }
    let mut fields = Vec::new();
    for f in desc.fields() {
        fields.push(Field {
            name: f.name().to_string(),
            schema: field_schema(&f, depth)?,
        });
    }
    let mut s = Schema::structure(fields);
    s.name = Some(desc.full_name().to_string());
    Ok(s)
}

fn field_schema(f: &FieldDescriptor, depth: usize) -> Result<Schema, ConnectError> {
    if f.is_map() {
        let Kind::Message(entry) = f.kind() else {
            return Err(ConnectError::Data(format!(
                "map field {} without an entry",
                f.name()
            )));
        };
        let mut s = Schema::new(T::Map);
        s.key_schema = Some(Box::new(kind_schema(
            &entry.map_entry_key_field().kind(),
            depth,
        )?));
        s.value_schema = Some(Box::new(
            kind_schema(&entry.map_entry_value_field().kind(), depth)?.optional(),
        ));
        return Ok(s.optional());
    }
    let one = kind_schema(&f.kind(), depth)?;
    if f.is_list() {
        let mut s = Schema::new(T::Array);
        s.value_schema = Some(Box::new(one));
        return Ok(s.optional());
    }
    Ok(one.optional())
}

fn kind_schema(kind: &Kind, depth: usize) -> Result<Schema, ConnectError> {
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Schema::new(T::Int32),
        Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64
        | Kind::Uint32
        | Kind::Fixed32
        | Kind::Uint64
        | Kind::Fixed64 => Schema::new(T::Int64),
        Kind::Float => Schema::new(T::Float32),
        Kind::Double => Schema::new(T::Float64),
        Kind::Bool => Schema::new(T::Boolean),
        Kind::String => Schema::new(T::String),
        Kind::Bytes => Schema::new(T::Bytes),
        Kind::Enum(e) => {
            let mut s = Schema::new(T::String);
            s.parameters.insert(
                "io.confluent.connect.protobuf.Enum".into(),
                e.name().to_string(),
            );
            s
        }
        Kind::Message(m) => message_schema(m, depth + 1)?,
    })
}

/// `.proto` text or base64 descriptors, by file name.
struct Sources(HashMap<String, String>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let text = self
            .0
            .get(name)
            .ok_or_else(|| protox::Error::file_not_found(name))?;
        let t = text.trim();
        let is_base64 = !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if !is_base64 {
            return File::from_source(name, text);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t)
            .map_err(|e| protox::Error::new(format!("{name}: invalid base64: {e}")))?;
        let mut fd = prost_types::FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
            protox::Error::new(format!("{name}: not a serialized FileDescriptorProto: {e}"))
        })?;
        fd.name = Some(name.to_string());
        Ok(File::from_file_descriptor_proto(fd))
    }
}
