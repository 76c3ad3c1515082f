//! Confluent's Protobuf compatibility rules, on compiled descriptors. The check is one
//! diff from the writer's schema (the "original") to the reader's (the "update"); only
//! the differences Confluent counts as incompatible are reported:
//!
//! - the file's package changed (`PACKAGE_CHANGED`);
//! - a message that the original declares at some level is gone (`MESSAGE_REMOVED`);
//!   adding, moving or reordering messages is fine, and so is any enum change;
//! - a field number on both sides changed kind (scalar, message, map:
//!   `FIELD_KIND_CHANGED`), scalar group (`FIELD_SCALAR_KIND_CHANGED`: the varint
//!   integers, `bool` and enums together; `sint32`/`sint64`; `string`/`bytes`; the
//!   32- and 64-bit fixed types; `float`; `double`), or message type (a different name,
//!   or the same name with incompatible contents: `FIELD_NAMED_TYPE_CHANGED`), or a
//!   numeric field became repeated or stopped being (`FIELD_NUMERIC_LABEL_CHANGED`);
//!   renames and added or removed optional fields are fine;
//! - a `required` field was added or removed (`REQUIRED_FIELD_ADDED`/`_REMOVED`);
//! - `oneof`s: several existing fields moved into one new oneof
//!   (`MULTIPLE_FIELDS_MOVED_TO_ONEOF`), a field moved into a oneof together with fields
//!   of another oneof (`FIELD_MOVED_TO_EXISTING_ONEOF`), or a field left a oneof and the
//!   message altogether (`ONEOF_FIELD_REMOVED`). Adding or removing a whole oneof is fine.
//!
//! Map fields are compared by key and value type (their synthetic entry messages are
//! not messages of the schema), and proto3 `optional` fields as plain fields.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto};

use super::Proto;

/// Reasons data written with `original` cannot be read with `update`.
pub(super) fn differences(original: &Proto, update: &Proto) -> Vec<String> {
    let mut ctx = Ctx {
        old: Types::of(original),
        new: Types::of(update),
        seen: HashSet::new(),
        out: Vec::new(),
    };
    let (o, u) = (&original.file, &update.file);
    if o.package() != u.package() {
        ctx.add(
            "PACKAGE_CHANGED",
            "#/",
            format!(
                "the package changed from '{}' to '{}'",
                o.package(),
                u.package()
            ),
        );
    }
    ctx.types(
        "#",
        &scope(o.package()),
        &scope(u.package()),
        &o.message_type,
        &u.message_type,
    );
    ctx.out
}

fn scope(package: &str) -> String {
    if package.is_empty() {
        String::new()
    } else {
        format!("{package}.")
    }
}

fn is_map_entry(m: &DescriptorProto) -> bool {
    m.options
        .as_ref()
        .and_then(|o| o.map_entry)
        .unwrap_or(false)
}

#[derive(Clone, Copy)]
enum Def<'a> {
    Message(&'a DescriptorProto),
    Enum,
}

#[derive(Clone, Copy)]
struct TypeInfo<'a> {
    def: Def<'a>,
    package: &'a str,
}

/// Every message and enum of a schema and its imports, by full name (no leading dot).
struct Types<'a>(HashMap<String, TypeInfo<'a>>);

impl<'a> Types<'a> {
    fn of(p: &'a Proto) -> Types<'a> {
        let mut map = HashMap::new();
        for f in std::iter::once(&p.file).chain(&p.imports) {
            let package = f.package();
            collect(
                &mut map,
                &scope(package),
                package,
                &f.message_type,
                &f.enum_type,
            );
        }
        Types(map)
    }

    fn get(&self, name: &str) -> Option<TypeInfo<'a>> {
        self.0.get(name.trim_start_matches('.')).copied()
    }

    /// The name without its package, as Confluent compares message types.
    fn local(&self, full: &str) -> String {
        match self.get(full) {
            Some(t) if !t.package.is_empty() => full
                .strip_prefix(t.package)
                .and_then(|r| r.strip_prefix('.'))
                .unwrap_or(full)
                .to_string(),
            _ => full.to_string(),
        }
    }
}

fn collect<'a>(
    map: &mut HashMap<String, TypeInfo<'a>>,
    prefix: &str,
    package: &'a str,
    messages: &'a [DescriptorProto],
    enums: &'a [EnumDescriptorProto],
) {
    for m in messages {
        let full = format!("{prefix}{}", m.name());
        collect(
            map,
            &format!("{full}."),
            package,
            &m.nested_type,
            &m.enum_type,
        );
        let def = Def::Message(m);
        map.insert(full, TypeInfo { def, package });
    }
    for e in enums {
        let def = Def::Enum;
        map.insert(format!("{prefix}{}", e.name()), TypeInfo { def, package });
    }
}

/// Scalar groups whose members share a wire encoding (Protobuf's "updating" rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    Varint,
    Zigzag,
    StringOrBytes,
    Fixed32,
    Fixed64,
    Float,
    Double,
}

enum Kind<'a> {
    Scalar(Scalar, String),
    Map(&'a FieldDescriptorProto, &'a FieldDescriptorProto),
    Message(String),
}

impl Kind<'_> {
    fn describe(&self) -> String {
        match self {
            Kind::Scalar(_, name) => name.clone(),
            Kind::Map(..) => "a map".to_string(),
            Kind::Message(name) => format!("message {name}"),
        }
    }
}

fn scalar(t: Type) -> (Scalar, &'static str) {
    match t {
        Type::Int32 => (Scalar::Varint, "int32"),
        Type::Int64 => (Scalar::Varint, "int64"),
        Type::Uint32 => (Scalar::Varint, "uint32"),
        Type::Uint64 => (Scalar::Varint, "uint64"),
        Type::Bool => (Scalar::Varint, "bool"),
        Type::Enum => (Scalar::Varint, "enum"),
        Type::Sint32 => (Scalar::Zigzag, "sint32"),
        Type::Sint64 => (Scalar::Zigzag, "sint64"),
        Type::String => (Scalar::StringOrBytes, "string"),
        Type::Bytes => (Scalar::StringOrBytes, "bytes"),
        Type::Fixed32 => (Scalar::Fixed32, "fixed32"),
        Type::Sfixed32 => (Scalar::Fixed32, "sfixed32"),
        Type::Fixed64 => (Scalar::Fixed64, "fixed64"),
        Type::Sfixed64 => (Scalar::Fixed64, "sfixed64"),
        Type::Float => (Scalar::Float, "float"),
        Type::Double => (Scalar::Double, "double"),
        // Not scalars; `kind` handles them before asking.
        Type::Message | Type::Group => (Scalar::StringOrBytes, "message"),
    }
}

/// The fields of one message, by number: outside any (real) oneof, and per oneof.
struct Fields<'a> {
    top: BTreeMap<i32, &'a FieldDescriptorProto>,
    oneof_of: BTreeMap<i32, &'a str>,
    oneofs: BTreeMap<&'a str, BTreeMap<i32, &'a FieldDescriptorProto>>,
    all: BTreeMap<i32, &'a FieldDescriptorProto>,
}

impl<'a> Fields<'a> {
    fn of(m: &'a DescriptorProto) -> Fields<'a> {
        let mut f = Fields {
            top: BTreeMap::new(),
            oneof_of: BTreeMap::new(),
            oneofs: BTreeMap::new(),
            all: BTreeMap::new(),
        };
        for field in &m.field {
            let n = field.number();
            f.all.insert(n, field);
            // A proto3 `optional` field sits in a synthetic oneof of its own: a plain field.
            let oneof = field
                .oneof_index
                .filter(|_| !field.proto3_optional())
                .and_then(|i| m.oneof_decl.get(usize::try_from(i).ok()?));
            match oneof {
                Some(decl) => {
                    f.oneof_of.insert(n, decl.name());
                    f.oneofs.entry(decl.name()).or_default().insert(n, field);
                }
                None => {
                    f.top.insert(n, field);
                }
            }
        }
        f
    }
}

struct Ctx<'a> {
    old: Types<'a>,
    new: Types<'a>,
    /// Message pairs already compared (recursive types, and types used many times).
    seen: HashSet<(String, String)>,
    out: Vec<String>,
}

impl<'a> Ctx<'a> {
    fn add(&mut self, kind: &str, path: &str, what: String) {
        self.out.push(format!("{kind} at '{path}': {what}"));
    }

    /// The messages declared at one level (a file, or inside a message), by name.
    fn types(
        &mut self,
        path: &str,
        old_scope: &str,
        new_scope: &str,
        old: &'a [DescriptorProto],
        new: &'a [DescriptorProto],
    ) {
        let by_name = |ms: &'a [DescriptorProto]| -> BTreeMap<&'a str, &'a DescriptorProto> {
            ms.iter()
                .filter(|m| !is_map_entry(m))
                .map(|m| (m.name(), m))
                .collect()
        };
        let news = by_name(new);
        for (name, om) in by_name(old) {
            let p = format!("{path}/{name}");
            match news.get(name) {
                None => self.add("MESSAGE_REMOVED", &p, format!("message {name} was removed")),
                Some(nm) => self.message(
                    &p,
                    &format!("{old_scope}{name}"),
                    &format!("{new_scope}{name}"),
                    om,
                    nm,
                ),
            }
        }
    }

    fn message(
        &mut self,
        path: &str,
        old_full: &str,
        new_full: &str,
        o: &'a DescriptorProto,
        n: &'a DescriptorProto,
    ) {
        if !self
            .seen
            .insert((old_full.to_string(), new_full.to_string()))
        {
            return;
        }
        let (of, nf) = (Fields::of(o), Fields::of(n));
        // Fields that moved from the top level into a oneof are checked below, by number.
        let mut old_top = of.top.clone();
        for (name, fields) in &nf.oneofs {
            let (mut moved, mut existing) = (0, 0);
            for tag in fields.keys() {
                if old_top.remove(tag).is_some() {
                    moved += 1;
                } else if of.oneof_of.contains_key(tag) {
                    existing += 1;
                }
            }
            let p = format!("{path}/{name}");
            if moved > 1 {
                self.add(
                    "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
                    &p,
                    format!("{moved} existing fields moved into oneof {name}"),
                );
            } else if moved == 1 && existing > 0 {
                self.add(
                    "FIELD_MOVED_TO_EXISTING_ONEOF",
                    &p,
                    format!("a field moved into oneof {name} with fields of another oneof"),
                );
            }
        }
        for (name, old_fields) in &of.oneofs {
            let Some(new_fields) = nf.oneofs.get(name) else {
                continue;
            };
            let tags: BTreeSet<i32> = old_fields
                .keys()
                .chain(new_fields.keys())
                .copied()
                .collect();
            for tag in tags {
                let p = format!("{path}/{name}/{tag}");
                match (old_fields.get(&tag), new_fields.get(&tag)) {
                    (Some(_), None) if !nf.all.contains_key(&tag) => self.add(
                        "ONEOF_FIELD_REMOVED",
                        &p,
                        format!("field {tag} was removed from oneof {name}"),
                    ),
                    (Some(a), Some(b)) => self.field(&p, a, b),
                    _ => {}
                }
            }
        }
        let tags: BTreeSet<i32> = old_top.keys().chain(nf.top.keys()).copied().collect();
        for tag in tags {
            let p = format!("{path}/{tag}");
            match (old_top.get(&tag), nf.top.get(&tag)) {
                (Some(a), None) if a.label() == Label::Required => self.add(
                    "REQUIRED_FIELD_REMOVED",
                    &p,
                    format!("required field {} was removed", a.name()),
                ),
                (None, Some(b)) if b.label() == Label::Required => self.add(
                    "REQUIRED_FIELD_ADDED",
                    &p,
                    format!("required field {} was added", b.name()),
                ),
                (Some(a), Some(b)) => self.field(&p, a, b),
                _ => {}
            }
        }
        // Fields whose oneof membership changed: their contents, by number.
        for (tag, a) in &of.all {
            let Some(b) = nf.all.get(tag) else {
                continue;
            };
            if of.oneof_of.get(tag) != nf.oneof_of.get(tag) {
                self.field(&format!("{path}/{tag}"), a, b);
            }
        }
        self.types(
            path,
            &format!("{old_full}."),
            &format!("{new_full}."),
            &o.nested_type,
            &n.nested_type,
        );
    }

    fn kind(&self, f: &'a FieldDescriptorProto, old: bool) -> Kind<'a> {
        let types = if old { &self.old } else { &self.new };
        match f.r#type() {
            Type::Message | Type::Group => {
                let name = f.type_name().trim_start_matches('.').to_string();
                match types.get(&name).map(|t| t.def) {
                    Some(Def::Message(m)) if is_map_entry(m) => {
                        let key = m.field.iter().find(|x| x.number() == 1);
                        let value = m.field.iter().find(|x| x.number() == 2);
                        match (key, value) {
                            (Some(k), Some(v)) => Kind::Map(k, v),
                            _ => Kind::Message(name),
                        }
                    }
                    _ => Kind::Message(name),
                }
            }
            Type::Enum => Kind::Scalar(
                Scalar::Varint,
                format!("enum {}", f.type_name().trim_start_matches('.')),
            ),
            t => {
                let (s, name) = scalar(t);
                Kind::Scalar(s, name.to_string())
            }
        }
    }

    fn field(&mut self, path: &str, a: &'a FieldDescriptorProto, b: &'a FieldDescriptorProto) {
        let (ka, kb) = (self.kind(a, true), self.kind(b, false));
        if let (Kind::Scalar(x, _), Kind::Scalar(y, _)) = (&ka, &kb) {
            let repeated = |f: &FieldDescriptorProto| f.label() == Label::Repeated;
            if x == y && *x != Scalar::StringOrBytes && repeated(a) != repeated(b) {
                self.add(
                    "FIELD_NUMERIC_LABEL_CHANGED",
                    path,
                    format!(
                        "numeric field {} changed between repeated and singular",
                        a.name()
                    ),
                );
            }
        }
        self.kinds(path, &ka, &kb);
    }

    fn kinds(&mut self, path: &str, a: &Kind<'a>, b: &Kind<'a>) {
        match (a, b) {
            (Kind::Scalar(x, xn), Kind::Scalar(y, yn)) => {
                if x != y {
                    self.add(
                        "FIELD_SCALAR_KIND_CHANGED",
                        path,
                        format!("the type changed from {xn} to {yn}"),
                    );
                }
            }
            (Kind::Map(ak, av), Kind::Map(bk, bv)) => {
                let (x, y) = (self.kind(ak, true), self.kind(bk, false));
                self.kinds(path, &x, &y);
                let (x, y) = (self.kind(av, true), self.kind(bv, false));
                self.kinds(path, &x, &y);
            }
            (Kind::Message(x), Kind::Message(y)) => self.named(path, x, y),
            _ => self.add(
                "FIELD_KIND_CHANGED",
                path,
                format!(
                    "the field changed from {} to {}",
                    a.describe(),
                    b.describe()
                ),
            ),
        }
    }

    /// A message-typed field on both sides: the same message name (without package),
    /// whose contents must be compatible.
    fn named(&mut self, path: &str, x: &str, y: &str) {
        let (xl, yl) = (self.old.local(x), self.new.local(y));
        if xl != yl {
            self.add(
                "FIELD_NAMED_TYPE_CHANGED",
                path,
                format!("the message type changed from {x} to {y}"),
            );
            return;
        }
        let (Some(Def::Message(om)), Some(Def::Message(nm))) = (
            self.old.get(x).map(|t| t.def),
            self.new.get(y).map(|t| t.def),
        ) else {
            return;
        };
        let before = self.out.len();
        self.message(&format!("#/{xl}"), x, y, om, nm);
        if self.out.len() > before {
            self.add(
                "FIELD_NAMED_TYPE_CHANGED",
                path,
                format!("message {xl} changed incompatibly"),
            );
        }
    }
}
