//! Protobuf: a schema is either `.proto` text or a base64-encoded serialized
//! `FileDescriptorProto` (what confluent-kafka's `ProtobufSerializer` registers). Both are
//! compiled by protox into one representation, the resolved `FileDescriptorProto`
//! (fully-qualified type names, imports checked), with the files it imports: the
//! references (by their names, which are the import paths), else protox's bundled
//! well-known types (`google/protobuf/*.proto`).
//!
//! That one representation gives the identity (a text and its descriptor are the same
//! schema), the `?format=serialized` form, and the compatibility rules in `compat`.

mod compat;

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorProto};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::RefSchema;

/// A compiled schema: its own file and every file it imports, transitively.
#[derive(Debug, Clone, PartialEq)]
pub struct Proto {
    pub file: FileDescriptorProto,
    pub imports: Vec<FileDescriptorProto>,
}

/// The name the schema's own file is compiled under, unless a reference took it.
const MAIN: &str = "schema.proto";

pub(super) fn parse(text: &str, refs: &[RefSchema]) -> Result<Proto, String> {
    if text.trim().is_empty() {
        return Err("an empty schema".to_string());
    }
    let mut files = HashMap::new();
    for r in refs {
        files
            .entry(r.name.clone())
            .or_insert_with(|| r.text.clone());
    }
    let mut main = MAIN.to_string();
    while files.contains_key(&main) {
        main.insert(0, '_');
    }
    files.insert(main.clone(), text.to_string());
    let mut chain = ChainFileResolver::new();
    chain.add(Sources(files));
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true).include_source_info(false);
    compiler.open_file(&main).map_err(|e| compile_error(&e))?;
    let mut file = None;
    let mut imports = Vec::new();
    for f in compiler.file_descriptor_set().file {
        if f.name() == main {
            file = Some(f);
        } else {
            imports.push(f);
        }
    }
    let file = file.ok_or_else(|| "the schema did not compile".to_string())?;
    Ok(Proto { file, imports })
}

/// protox's message, with the error's causes (a bad import names the file and why).
fn compile_error(e: &protox::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The form two registrations are compared in: the compiled file without what does
/// not change its meaning (its file name, `json_name`s, an explicit `proto2` syntax),
/// encoded. Text that does not compile compares with runs of whitespace collapsed.
pub(super) fn identity(text: &str, refs: &[RefSchema]) -> String {
    match parse(text, refs) {
        Ok(p) => {
            let mut f = p.file;
            f.name = None;
            f.source_code_info = None;
            if f.syntax.as_deref() == Some("proto2") {
                f.syntax = None;
            }
            for m in &mut f.message_type {
                clear_json_names(m);
            }
            for x in &mut f.extension {
                x.json_name = None;
            }
            format!("pb:{}", B64.encode(f.encode_to_vec()))
        }
        Err(_) => collapse_whitespace(text),
    }
}

fn clear_json_names(m: &mut DescriptorProto) {
    for f in m.field.iter_mut().chain(m.extension.iter_mut()) {
        f.json_name = None;
    }
    for n in &mut m.nested_type {
        clear_json_names(n);
    }
}

pub(super) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `?format=serialized`: the base64 `FileDescriptorProto`. A schema registered in that
/// form is returned as it was; text is compiled (with its references) and encoded.
pub(super) fn serialized(text: &str, refs: &[RefSchema]) -> Option<String> {
    if is_base64(text) {
        return Some(text.trim().to_string());
    }
    let p = parse(text, refs).ok()?;
    Some(B64.encode(p.file.encode_to_vec()))
}

/// Reasons data written with `writer` cannot be read with `reader` (Confluent's rules).
pub(super) fn can_read(writer: &Proto, reader: &Proto) -> Vec<String> {
    compat::differences(writer, reader)
}

/// Whether `text` can only be a base64 descriptor: `.proto` text always has a space,
/// a `;` or a brace, none of which is in the base64 alphabet.
fn is_base64(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// The texts protox compiles: the schema and its references, by file name. Each is
/// `.proto` text or a base64 descriptor.
struct Sources(HashMap<String, String>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let text = self
            .0
            .get(name)
            .ok_or_else(|| protox::Error::file_not_found(name))?;
        if !is_base64(text) {
            return File::from_source(name, text);
        }
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| protox::Error::new(format!("{name}: invalid base64: {e}")))?;
        let mut fd = FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
            protox::Error::new(format!("{name}: not a serialized FileDescriptorProto: {e}"))
        })?;
        fd.name = Some(name.to_string());
        Ok(File::from_file_descriptor_proto(fd))
    }
}

#[cfg(test)]
mod tests;
