//! Single Message Transforms with Kafka's class names and settings, and the chain a
//! connector's `transforms` / `predicates` settings build.
//!
//! A transform returns `Ok(None)` to drop the record (Filter). `$Key`/`$Value` class
//! suffixes select which side of the record a field transform works on.

mod cast;
mod fields;
mod filter;
mod route;
mod time;

use std::collections::BTreeMap;

use gregor_connect_api::{ConnectError, ConnectRecord, Props, Schema, Value};

/// What a transform may need besides the record (InsertField's `offset.field`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordContext {
    /// The Kafka offset, for records read from Kafka (sink side).
    pub kafka_offset: Option<i64>,
}

/// A transform (Kafka's `Transformation`).
pub trait Transformation: Send + Sync {
    fn apply(
        &self,
        record: ConnectRecord,
        ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError>;
}

/// A condition on a record (Kafka's `Predicate`).
pub trait Predicate: Send + Sync {
    fn test(&self, record: &ConnectRecord) -> bool;
}

/// Which side of a record a field transform works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Key,
    Value,
}

impl Side {
    pub(crate) fn take(self, r: &mut ConnectRecord) -> (Option<Schema>, Value) {
        match self {
            Side::Key => (
                r.key_schema.take(),
                std::mem::replace(&mut r.key, Value::Null),
            ),
            Side::Value => (
                r.value_schema.take(),
                std::mem::replace(&mut r.value, Value::Null),
            ),
        }
    }

    pub(crate) fn put(self, r: &mut ConnectRecord, schema: Option<Schema>, value: Value) {
        match self {
            Side::Key => {
                r.key_schema = schema;
                r.key = value;
            }
            Side::Value => {
                r.value_schema = schema;
                r.value = value;
            }
        }
    }
}

const PREFIX: &str = "org.apache.kafka.connect.transforms.";

/// The transform classes this worker has (Key/Value variants listed separately, as
/// `GET /connector-plugins?connectorsOnly=false` shows them).
pub const CLASSES: &[&str] = &[
    "org.apache.kafka.connect.transforms.Cast$Key",
    "org.apache.kafka.connect.transforms.Cast$Value",
    "org.apache.kafka.connect.transforms.ExtractField$Key",
    "org.apache.kafka.connect.transforms.ExtractField$Value",
    "org.apache.kafka.connect.transforms.Filter",
    "org.apache.kafka.connect.transforms.HoistField$Key",
    "org.apache.kafka.connect.transforms.HoistField$Value",
    "org.apache.kafka.connect.transforms.InsertField$Key",
    "org.apache.kafka.connect.transforms.InsertField$Value",
    "org.apache.kafka.connect.transforms.MaskField$Key",
    "org.apache.kafka.connect.transforms.MaskField$Value",
    "org.apache.kafka.connect.transforms.RegexRouter",
    "org.apache.kafka.connect.transforms.ReplaceField$Key",
    "org.apache.kafka.connect.transforms.ReplaceField$Value",
    "org.apache.kafka.connect.transforms.TimestampConverter$Key",
    "org.apache.kafka.connect.transforms.TimestampConverter$Value",
    "org.apache.kafka.connect.transforms.TimestampRouter",
    "org.apache.kafka.connect.transforms.ValueToKey",
];

/// The predicate classes this worker has.
pub const PREDICATE_CLASSES: &[&str] = &[
    "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
    "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
    "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
];

/// Builds one transform from its class and its settings (prefix stripped).
pub fn create(class: &str, props: &Props) -> Result<Box<dyn Transformation>, ConnectError> {
    let short = class.strip_prefix(PREFIX).unwrap_or(class);
    let (base, side) = match short.split_once('$') {
        Some((b, "Key")) => (b, Some(Side::Key)),
        Some((b, "Value")) => (b, Some(Side::Value)),
        Some(_) => (short, None),
        None => (short, None),
    };
    let needs_side = |s: Option<Side>| {
        s.ok_or_else(|| {
            ConnectError::Config(format!(
                "Class {class} could not be found: use {PREFIX}{base}$Key or $Value"
            ))
        })
    };
    Ok(match base {
        "InsertField" => Box::new(fields::InsertField::new(needs_side(side)?, props)?),
        "ReplaceField" => Box::new(fields::ReplaceField::new(needs_side(side)?, props)?),
        "MaskField" => Box::new(fields::MaskField::new(needs_side(side)?, props)?),
        "ExtractField" => Box::new(fields::ExtractField::new(needs_side(side)?, props)?),
        "HoistField" => Box::new(fields::HoistField::new(needs_side(side)?, props)?),
        "ValueToKey" => Box::new(fields::ValueToKey::new(props)?),
        "Cast" => Box::new(cast::Cast::new(needs_side(side)?, props)?),
        "TimestampConverter" => Box::new(cast::TimestampConverter::new(needs_side(side)?, props)?),
        "RegexRouter" => Box::new(route::RegexRouter::new(props)?),
        "TimestampRouter" => Box::new(route::TimestampRouter::new(props)?),
        "Filter" => Box::new(filter::Filter),
        _ => {
            return Err(ConnectError::Config(format!(
                "Class {class} could not be found."
            )))
        }
    })
}

/// Builds one predicate from its class and settings.
pub fn create_predicate(class: &str, props: &Props) -> Result<Box<dyn Predicate>, ConnectError> {
    filter::create_predicate(class, props)
}

struct Step {
    name: String,
    transform: Box<dyn Transformation>,
    predicate: Option<(Box<dyn Predicate>, bool)>,
}

/// A connector's transforms, in order, each with its optional predicate.
#[derive(Default)]
pub struct Chain {
    steps: Vec<Step>,
}

/// The settings under `prefix` with the prefix removed.
pub fn sub_props(props: &Props, prefix: &str) -> Props {
    props
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v.clone())))
        .collect()
}

impl Chain {
    /// Builds the chain from a connector's `transforms`, `transforms.<alias>.*`,
    /// `predicates` and `predicates.<alias>.*` settings.
    pub fn from_config(props: &Props) -> Result<Chain, ConnectError> {
        let list = gregor_connect_api::config::get_list(props, "predicates");
        let mut predicates: BTreeMap<String, (String, Props)> = BTreeMap::new();
        for alias in &list {
            let sub = sub_props(props, &format!("predicates.{alias}."));
            let class = sub.get("type").cloned().ok_or_else(|| {
                ConnectError::Config(format!(
                    "Missing required configuration \"predicates.{alias}.type\" which has no default value."
                ))
            })?;
            create_predicate(&class, &sub)?;
            predicates.insert(alias.clone(), (class, sub));
        }
        let mut steps = Vec::new();
        for alias in gregor_connect_api::config::get_list(props, "transforms") {
            let sub = sub_props(props, &format!("transforms.{alias}."));
            let class = sub.get("type").cloned().ok_or_else(|| {
                ConnectError::Config(format!(
                    "Missing required configuration \"transforms.{alias}.type\" which has no default value."
                ))
            })?;
            let transform = create(&class, &sub).map_err(|e| {
                ConnectError::Config(format!("Invalid configuration for transform {alias}: {e}"))
            })?;
            let predicate = match sub.get("predicate") {
                None => None,
                Some(p) => {
                    let (pclass, psub) = predicates.get(p).ok_or_else(|| {
                        ConnectError::Config(format!(
                            "Invalid value {p} for configuration transforms.{alias}.predicate: the predicate is not listed in 'predicates'"
                        ))
                    })?;
                    let negate = gregor_connect_api::config::get_bool(&sub, "negate", false);
                    Some((create_predicate(pclass, psub)?, negate))
                }
            };
            steps.push(Step {
                name: alias,
                transform,
                predicate,
            });
        }
        Ok(Chain { steps })
    }

    /// Runs the record through every transform; `Ok(None)` once one drops it. The error
    /// names the transform that failed.
    pub fn apply(
        &self,
        mut record: ConnectRecord,
        ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, (String, ConnectError)> {
        for step in &self.steps {
            if let Some((p, negate)) = &step.predicate {
                if p.test(&record) == *negate {
                    continue;
                }
            }
            match step.transform.apply(record, ctx) {
                Ok(Some(r)) => record = r,
                Ok(None) => return Ok(None),
                Err(e) => return Err((step.name.clone(), e)),
            }
        }
        Ok(Some(record))
    }
}
