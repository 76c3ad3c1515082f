//! `PostgresSink`: writes records to tables, after Confluent's JDBC sink settings:
//! `insert.mode` (insert | upsert), `pk.mode` (none | record_key | record_value),
//! `pk.fields`, `delete.enabled` (a tombstone deletes the row by key), `auto.create`,
//! `table.name.format` (`${topic}`), `batch.size`.
//!
//! Each `put` runs as one transaction per `batch.size` records (one multi-statement
//! round trip), so a failed batch leaves nothing half-written and the offsets are not
//! committed; records are applied in order, so an upsert then a delete of one key in a
//! batch end deleted.

use std::collections::HashSet;

use gregor_connect_api::config::{get_bool, get_i64, get_list, get_str};
use gregor_connect_api::{
    ConfigDef, ConfigType, ConnectError, Connector, Importance, Props, Schema, SchemaType,
    SinkRecord, SinkTask, Validator, Value,
};

use super::{connect, connection_def, db_err, ident, literal, VERSION};

pub fn connector() -> Box<dyn Connector> {
    Box::new(PostgresSinkConnector {
        props: Props::new(),
    })
}

pub fn task() -> Box<dyn SinkTask> {
    Box::new(PostgresSinkTask::default())
}

struct PostgresSinkConnector {
    props: Props,
}

impl Connector for PostgresSinkConnector {
    fn version(&self) -> &'static str {
        VERSION
    }

    fn config_def(&self) -> ConfigDef {
        connection_def()
            .define("insert.mode", ConfigType::String, Some("insert"), Importance::High, "insert or upsert (by primary key).")
            .with_validator(Validator::OneOf(vec!["insert", "upsert"]))
            .define("pk.mode", ConfigType::String, Some("none"), Importance::High, "Where the primary key comes from: none, record_key or record_value.")
            .with_validator(Validator::OneOf(vec!["none", "record_key", "record_value"]))
            .define("pk.fields", ConfigType::List, Some(""), Importance::Medium, "Primary key columns (the key's field names by default; required for a primitive key or record_value).")
            .define("delete.enabled", ConfigType::Boolean, Some("false"), Importance::Medium, "Delete the row when a record's value is null (needs pk.mode=record_key).")
            .define("auto.create", ConfigType::Boolean, Some("false"), Importance::Medium, "Create a missing table from the first record's schema (or JSON types).")
            .define("table.name.format", ConfigType::String, Some("${topic}"), Importance::Medium, "Table name; ${topic} is replaced by the record's topic.")
            .define("batch.size", ConfigType::Int, Some("3000"), Importance::Medium, "Records per transaction.")
            .with_validator(Validator::Range { min: 1, max: i64::from(i32::MAX) })
            .in_group("Writes")
    }

    fn validate(&self, props: &Props) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let pk_mode = get_str(props, "pk.mode").unwrap_or("none");
        if get_str(props, "insert.mode") == Some("upsert") && pk_mode == "none" {
            errs.push(("pk.mode".into(), "Invalid value none for configuration pk.mode: insert.mode=upsert needs a primary key (record_key or record_value)".into()));
        }
        if get_bool(props, "delete.enabled", false) && pk_mode != "record_key" {
            errs.push(("delete.enabled".into(), "Invalid value true for configuration delete.enabled: Delete support only works with pk.mode=record_key".into()));
        }
        if pk_mode == "record_value" && get_list(props, "pk.fields").is_empty() {
            errs.push((
                "pk.fields".into(),
                "pk.mode=record_value needs pk.fields".into(),
            ));
        }
        errs
    }

    fn start(&mut self, props: &Props) -> Result<(), ConnectError> {
        self.props = props.clone();
        Ok(())
    }

    fn task_configs(&self, max_tasks: usize) -> Vec<Props> {
        vec![self.props.clone(); max_tasks.max(1)]
    }
}

#[derive(Default)]
struct PostgresSinkTask {
    client: Option<postgres::Client>,
    upsert: bool,
    pk_mode: String,
    pk_fields: Vec<String>,
    delete_enabled: bool,
    auto_create: bool,
    table_format: String,
    batch_size: usize,
    /// Tables known to exist (auto.create checked once per table).
    tables: HashSet<String>,
}

/// One column of a row: name, value, and the schema when the record had one.
type Column = (String, Value, Option<Schema>);

fn columns(
    schema: Option<&Schema>,
    value: &Value,
    what: &str,
) -> Result<Vec<Column>, ConnectError> {
    match value {
        Value::Struct(fields) => Ok(fields
            .iter()
            .map(|(n, v)| {
                let s = schema.and_then(|s| s.field(n)).map(|f| f.schema.clone());
                (n.clone(), v.clone(), s)
            })
            .collect()),
        Value::Map(entries) => Ok(entries
            .iter()
            .map(|(k, v)| (k.to_display_string(), v.clone(), None))
            .collect()),
        other => Err(ConnectError::Data(format!(
            "The PostgreSQL sink needs a struct or map {what}, found {}",
            other.to_json()
        ))),
    }
}

fn sql_type(schema: Option<&Schema>, value: &Value) -> &'static str {
    match (schema.map(|s| s.schema_type), value) {
        (Some(SchemaType::Int8 | SchemaType::Int16), _) => "SMALLINT",
        (Some(SchemaType::Int32), _) => "INTEGER",
        (Some(SchemaType::Int64), _) | (None, Value::Int(_)) => "BIGINT",
        (Some(SchemaType::Float32), _) => "REAL",
        (Some(SchemaType::Float64), _) | (None, Value::Float(_)) => "DOUBLE PRECISION",
        (Some(SchemaType::Boolean), _) | (None, Value::Boolean(_)) => "BOOLEAN",
        (Some(SchemaType::Bytes), _) | (None, Value::Bytes(_)) => "BYTEA",
        (Some(SchemaType::Array | SchemaType::Map | SchemaType::Struct), _)
        | (None, Value::Array(_) | Value::Map(_) | Value::Struct(_)) => "JSONB",
        _ => "TEXT",
    }
}

impl PostgresSinkTask {
    /// The key columns of a record.
    fn key_columns(&self, r: &SinkRecord) -> Result<Vec<Column>, ConnectError> {
        let rec = &r.record;
        match self.pk_mode.as_str() {
            "record_key" => match &rec.key {
                Value::Struct(_) | Value::Map(_) => {
                    let all = columns(rec.key_schema.as_ref(), &rec.key, "key")?;
                    Ok(if self.pk_fields.is_empty() {
                        all
                    } else {
                        all.into_iter()
                            .filter(|(n, _, _)| self.pk_fields.contains(n))
                            .collect()
                    })
                }
                Value::Null => Err(ConnectError::Data(format!(
                    "pk.mode=record_key but the record at {}-{} offset {} has no key",
                    rec.topic,
                    rec.kafka_partition.unwrap_or(0),
                    r.kafka_offset
                ))),
                primitive => {
                    let name = self.pk_fields.first().ok_or_else(|| {
                        ConnectError::Config(
                            "A primitive record key needs pk.fields to name its column".into(),
                        )
                    })?;
                    Ok(vec![(
                        name.clone(),
                        primitive.clone(),
                        rec.key_schema.clone(),
                    )])
                }
            },
            "record_value" => {
                let all = columns(rec.value_schema.as_ref(), &rec.value, "value")?;
                let keys: Vec<Column> = all
                    .into_iter()
                    .filter(|(n, _, _)| self.pk_fields.contains(n))
                    .collect();
                if keys.len() != self.pk_fields.len() {
                    return Err(ConnectError::Data(format!(
                        "The record value lacks a pk.fields column ({})",
                        self.pk_fields.join(",")
                    )));
                }
                Ok(keys)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn statement(&mut self, r: &SinkRecord, sql: &mut String) -> Result<(), ConnectError> {
        let rec = &r.record;
        let table = self.table_format.replace("${topic}", &rec.topic);
        let keys = self.key_columns(r)?;
        if rec.value.is_null() {
            if self.delete_enabled {
                let cond: Vec<String> = keys
                    .iter()
                    .map(|(n, v, _)| Ok(format!("{} = {}", ident(n), literal(v)?)))
                    .collect::<Result<_, ConnectError>>()?;
                if !cond.is_empty() {
                    sql.push_str(&format!(
                        "DELETE FROM {} WHERE {};\n",
                        ident(&table),
                        cond.join(" AND ")
                    ));
                }
            }
            return Ok(());
        }
        let mut cols = columns(rec.value_schema.as_ref(), &rec.value, "value")?;
        for k in &keys {
            if !cols.iter().any(|(n, _, _)| n == &k.0) {
                cols.insert(0, k.clone());
            }
        }
        if self.auto_create && !self.tables.contains(&table) {
            let defs: Vec<String> = cols
                .iter()
                .map(|(n, v, s)| {
                    let not_null =
                        s.as_ref().is_some_and(|s| !s.optional) || keys.iter().any(|k| &k.0 == n);
                    format!(
                        "{} {}{}",
                        ident(n),
                        sql_type(s.as_ref(), v),
                        if not_null { " NOT NULL" } else { "" }
                    )
                })
                .collect();
            let pk = if keys.is_empty() {
                String::new()
            } else {
                format!(
                    ", PRIMARY KEY ({})",
                    keys.iter()
                        .map(|k| ident(&k.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            sql.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {} ({}{pk});\n",
                ident(&table),
                defs.join(", ")
            ));
            self.tables.insert(table.clone());
        }
        let names: Vec<String> = cols.iter().map(|(n, _, _)| ident(n)).collect();
        let values: Vec<String> = cols
            .iter()
            .map(|(_, v, _)| literal(v))
            .collect::<Result<_, _>>()?;
        sql.push_str(&format!(
            "INSERT INTO {} ({}) VALUES ({})",
            ident(&table),
            names.join(", "),
            values.join(", ")
        ));
        if self.upsert {
            let conflict: Vec<String> = keys.iter().map(|k| ident(&k.0)).collect();
            let updates: Vec<String> = cols
                .iter()
                .filter(|(n, _, _)| !keys.iter().any(|k| &k.0 == n))
                .map(|(n, _, _)| format!("{0} = EXCLUDED.{0}", ident(n)))
                .collect();
            if updates.is_empty() {
                sql.push_str(&format!(
                    " ON CONFLICT ({}) DO NOTHING",
                    conflict.join(", ")
                ));
            } else {
                sql.push_str(&format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    conflict.join(", "),
                    updates.join(", ")
                ));
            }
        }
        sql.push_str(";\n");
        Ok(())
    }
}

impl SinkTask for PostgresSinkTask {
    fn start(&mut self, props: &Props) -> Result<(), ConnectError> {
        let mut client = connect(props)?;
        let rows = client
            .simple_query("SHOW standard_conforming_strings")
            .map_err(|e| db_err("cannot read standard_conforming_strings", e))?;
        let on = rows.iter().any(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0) == Some("on"),
            _ => false,
        });
        if !on {
            return Err(ConnectError::Config(
                "The PostgreSQL sink needs standard_conforming_strings=on".into(),
            ));
        }
        self.client = Some(client);
        self.upsert = get_str(props, "insert.mode") == Some("upsert");
        self.pk_mode = get_str(props, "pk.mode").unwrap_or("none").to_string();
        self.pk_fields = get_list(props, "pk.fields");
        self.delete_enabled = get_bool(props, "delete.enabled", false);
        self.auto_create = get_bool(props, "auto.create", false);
        self.table_format = get_str(props, "table.name.format")
            .unwrap_or("${topic}")
            .to_string();
        self.batch_size = usize::try_from(get_i64(props, "batch.size", 3000))
            .unwrap_or(3000)
            .max(1);
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<(), ConnectError> {
        for chunk in records.chunks(self.batch_size) {
            let mut sql = String::new();
            for r in chunk {
                self.statement(r, &mut sql)?;
            }
            if sql.is_empty() {
                continue;
            }
            let client = self.client.as_mut().ok_or_else(|| {
                ConnectError::Other("The PostgreSQL sink task is not started".into())
            })?;
            // One simple-query message: PostgreSQL runs it as one implicit transaction.
            if let Err(e) = client.batch_execute(&sql) {
                // A table this batch created was rolled back with it.
                self.tables.clear();
                return Err(db_err("cannot write the batch", e));
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectError> {
        // Every put commits its transactions before returning.
        Ok(())
    }

    fn stop(&mut self) {
        self.client = None;
    }
}
