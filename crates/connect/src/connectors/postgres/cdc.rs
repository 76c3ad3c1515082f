//! `PostgresCdcSource`: change data capture from a logical replication slot.
//!
//! On first start it creates the publication (`publication.name`, for the tables of
//! `table.include.list`, or all tables) and the slot (`slot.name`, plugin `pgoutput`),
//! then reads every table (`op` "r"), then polls the slot with
//! `pg_logical_slot_peek_binary_changes` and decodes the pgoutput messages. The slot is
//! advanced (`pg_replication_slot_advance`) only in `commit`, which the runtime calls
//! after Kafka acknowledged the records and their offsets were stored, so a crash
//! replays rather than loses changes; the stored offset (the end LSN of the last
//! delivered transaction) lets a restarted task skip transactions it already delivered.
//!
//! Records (topic `<topic.prefix>.<schema>.<table>`), Debezium-like:
//! key = the primary key columns; value = `{before, after, source: {version, connector,
//! name, ts_ms, snapshot, db, schema, table, txId, lsn}, op: c|u|d|r, ts_ms}`; a delete
//! is followed by a tombstone (same key, null value). `before` holds the old row as far
//! as the table's REPLICA IDENTITY sends it (the key columns by default; FULL for all).
//! Column values: bool, int2/4/8 and float4/8 typed; every other type as its text.
//! The snapshot is not synchronised with the slot: a change made while it runs can
//! appear both in the snapshot and after it (at-least-once).

use std::collections::HashMap;
use std::time::Duration;

use gregor_connect_api::config::{get_i64, get_list, get_str};
use gregor_connect_api::connector::OffsetReader;
use gregor_connect_api::{
    ConfigDef, ConfigType, ConnectError, ConnectRecord, Connector, ExactlyOnceSupport, Field,
    Importance, Props, Schema, SchemaType, SourceRecord, SourceTask, Validator, Value,
};
use serde_json::{json, Map, Value as J};

use super::pgoutput::{self, Message, RelColumn, Relation, Tuple};
use super::{connect, connection_def, db_err, ident, VERSION};

pub fn connector() -> Box<dyn Connector> {
    Box::new(CdcConnector {
        props: Props::new(),
    })
}

pub fn task() -> Box<dyn SourceTask> {
    Box::new(CdcTask::default())
}

struct CdcConnector {
    props: Props,
}

impl Connector for CdcConnector {
    fn version(&self) -> &'static str {
        VERSION
    }

    fn config_def(&self) -> ConfigDef {
        connection_def()
            .define("topic.prefix", ConfigType::String, None, Importance::High, "Topic names are <topic.prefix>.<schema>.<table>; also the offsets' source partition.")
            .with_validator(Validator::NonEmpty)
            .define("slot.name", ConfigType::String, Some("gregor_connect"), Importance::Medium, "The logical replication slot (created with pgoutput when missing).")
            .define("publication.name", ConfigType::String, Some("gregor_connect"), Importance::Medium, "The publication (created when missing).")
            .define("table.include.list", ConfigType::List, Some(""), Importance::Medium, "schema.table names to capture; empty: all tables of the publication (created FOR ALL TABLES).")
            .define("snapshot.mode", ConfigType::String, Some("initial"), Importance::Medium, "initial: read every table first; never: changes only.")
            .with_validator(Validator::OneOf(vec!["initial", "never"]))
            .define("batch.size", ConfigType::Int, Some("2048"), Importance::Low, "Changes read from the slot per poll (whole transactions).")
            .with_validator(Validator::Range { min: 1, max: i64::from(i32::MAX) })
            .define("poll.interval.ms", ConfigType::Int, Some("200"), Importance::Low, "Wait between polls of an idle slot.")
            .with_validator(Validator::Range { min: 1, max: 60_000 })
            .in_group("Capture")
    }

    fn start(&mut self, props: &Props) -> Result<(), ConnectError> {
        self.props = props.clone();
        Ok(())
    }

    /// Streaming is exact (whole PostgreSQL transactions per poll, the offset is the end
    /// LSN of the last one, a restarted task skips what is at or below it); an
    /// interrupted snapshot starts over, so only `snapshot.mode=never` is exact.
    fn exactly_once_support(&self, props: &Props) -> Option<ExactlyOnceSupport> {
        Some(match get_str(props, "snapshot.mode").unwrap_or("initial") {
            "never" => ExactlyOnceSupport::Supported,
            _ => ExactlyOnceSupport::Unsupported,
        })
    }

    fn task_configs(&self, _max_tasks: usize) -> Vec<Props> {
        // One slot, one reader.
        vec![self.props.clone()]
    }
}

#[derive(Default)]
struct CdcTask {
    client: Option<postgres::Client>,
    prefix: String,
    slot: String,
    publication: String,
    db: String,
    batch: i32,
    poll_interval: Duration,
    relations: HashMap<u32, Relation>,
    /// Tables still to snapshot.
    snapshot: Vec<(String, String)>,
    /// The table being snapshotted (its cursor is open), and whether it is the last.
    cursor: Option<(Relation, bool)>,
    /// End LSN of the last transaction whose records are stored.
    last_lsn: u64,
    /// Where to advance the slot once the last poll's records are stored.
    pending_advance: Option<u64>,
}

fn typed(oid: u32, text: Option<&str>) -> (SchemaType, Value) {
    let t = match oid {
        16 => SchemaType::Boolean,
        21 => SchemaType::Int16,
        23 => SchemaType::Int32,
        20 => SchemaType::Int64,
        700 => SchemaType::Float32,
        701 => SchemaType::Float64,
        _ => SchemaType::String,
    };
    let v = match (t, text) {
        (_, None) => Value::Null,
        (SchemaType::Boolean, Some(s)) => Value::Boolean(s == "t" || s == "true"),
        (SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64, Some(s)) => s
            .parse()
            .map_or_else(|_| Value::String(s.to_string()), Value::Int),
        (SchemaType::Float32 | SchemaType::Float64, Some(s)) => s
            .parse()
            .map_or_else(|_| Value::String(s.to_string()), Value::Float),
        (_, Some(s)) => Value::String(s.to_string()),
    };
    (t, v)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// PostgreSQL timestamps count microseconds from 2000-01-01.
fn pg_ts_to_unix_ms(us: i64) -> i64 {
    us / 1000 + 946_684_800_000
}

fn named(mut s: Schema, name: String) -> Schema {
    s.name = Some(name);
    s
}

struct Change<'a> {
    op: &'static str,
    before: Option<&'a Tuple>,
    after: Option<&'a Tuple>,
    ts_ms: i64,
    snapshot: &'static str,
    txid: Option<u32>,
    lsn: Option<u64>,
}

impl CdcTask {
    fn client(&mut self) -> Result<&mut postgres::Client, ConnectError> {
        self.client
            .as_mut()
            .ok_or_else(|| ConnectError::Other("The PostgreSQL CDC task is not started".into()))
    }

    fn partition(&self) -> Map<String, J> {
        let mut m = Map::new();
        m.insert("server".into(), J::from(self.prefix.clone()));
        m
    }

    fn row_schema(&self, rel: &Relation, cols: &[&RelColumn], suffix: &str) -> Schema {
        let fields = cols
            .iter()
            .map(|c| Field {
                name: c.name.clone(),
                schema: Schema::new(typed(c.type_oid, None).0).optional(),
            })
            .collect();
        named(
            Schema::structure(fields),
            format!("{}.{}.{}.{suffix}", self.prefix, rel.namespace, rel.name),
        )
    }

    fn row_value(cols: &[&RelColumn], rel: &Relation, tuple: &Tuple) -> Value {
        Value::Struct(
            cols.iter()
                .map(|c| {
                    let i = rel
                        .columns
                        .iter()
                        .position(|x| x.name == c.name)
                        .unwrap_or(usize::MAX);
                    let text = tuple.get(i).and_then(|v| v.as_deref());
                    (c.name.clone(), typed(c.type_oid, text).1)
                })
                .collect(),
        )
    }

    /// The record(s) of one change: the event, and a tombstone after a delete.
    fn records(&self, rel: &Relation, ch: Change<'_>) -> Vec<ConnectRecord> {
        let all: Vec<&RelColumn> = rel.columns.iter().collect();
        let keys: Vec<&RelColumn> = rel.columns.iter().filter(|c| c.key).collect();
        let row = self.row_schema(rel, &all, "Value").optional();
        let s = |t: SchemaType| Schema::new(t);
        let source_schema = named(
            Schema::structure(vec![
                Field {
                    name: "version".into(),
                    schema: s(SchemaType::String),
                },
                Field {
                    name: "connector".into(),
                    schema: s(SchemaType::String),
                },
                Field {
                    name: "name".into(),
                    schema: s(SchemaType::String),
                },
                Field {
                    name: "ts_ms".into(),
                    schema: s(SchemaType::Int64),
                },
                Field {
                    name: "snapshot".into(),
                    schema: s(SchemaType::String).optional(),
                },
                Field {
                    name: "db".into(),
                    schema: s(SchemaType::String),
                },
                Field {
                    name: "schema".into(),
                    schema: s(SchemaType::String),
                },
                Field {
                    name: "table".into(),
                    schema: s(SchemaType::String),
                },
                Field {
                    name: "txId".into(),
                    schema: s(SchemaType::Int64).optional(),
                },
                Field {
                    name: "lsn".into(),
                    schema: s(SchemaType::Int64).optional(),
                },
            ]),
            "io.gregor.connect.postgres.Source".into(),
        );
        let envelope = named(
            Schema::structure(vec![
                Field {
                    name: "before".into(),
                    schema: row.clone(),
                },
                Field {
                    name: "after".into(),
                    schema: row,
                },
                Field {
                    name: "source".into(),
                    schema: source_schema,
                },
                Field {
                    name: "op".into(),
                    schema: s(SchemaType::String),
                },
                Field {
                    name: "ts_ms".into(),
                    schema: s(SchemaType::Int64).optional(),
                },
            ]),
            format!("{}.{}.{}.Envelope", self.prefix, rel.namespace, rel.name),
        );
        let image = |t: Option<&Tuple>| t.map_or(Value::Null, |t| Self::row_value(&all, rel, t));
        let value = Value::Struct(vec![
            ("before".into(), image(ch.before)),
            ("after".into(), image(ch.after)),
            (
                "source".into(),
                Value::Struct(vec![
                    ("version".into(), Value::String(VERSION.into())),
                    ("connector".into(), Value::String("postgresql".into())),
                    ("name".into(), Value::String(self.prefix.clone())),
                    ("ts_ms".into(), Value::Int(ch.ts_ms)),
                    ("snapshot".into(), Value::String(ch.snapshot.into())),
                    ("db".into(), Value::String(self.db.clone())),
                    ("schema".into(), Value::String(rel.namespace.clone())),
                    ("table".into(), Value::String(rel.name.clone())),
                    (
                        "txId".into(),
                        ch.txid.map_or(Value::Null, |x| Value::Int(x.into())),
                    ),
                    (
                        "lsn".into(),
                        ch.lsn.map_or(Value::Null, |l| {
                            Value::Int(i64::try_from(l).unwrap_or(i64::MAX))
                        }),
                    ),
                ]),
            ),
            ("op".into(), Value::String(ch.op.into())),
            ("ts_ms".into(), Value::Int(now_ms())),
        ]);
        let topic = format!("{}.{}.{}", self.prefix, rel.namespace, rel.name);
        let (key_schema, key) = match ch.after.or(ch.before) {
            Some(t) if !keys.is_empty() => (
                Some(self.row_schema(rel, &keys, "Key")),
                Self::row_value(&keys, rel, t),
            ),
            _ => (None, Value::Null),
        };
        let mut event = ConnectRecord::new(topic.clone(), Some(envelope), value);
        event.key_schema = key_schema.clone();
        event.key = key.clone();
        event.timestamp = Some(ch.ts_ms);
        let mut out = vec![event];
        if ch.op == "d" {
            let mut tomb = ConnectRecord::new(topic, None, Value::Null);
            tomb.key_schema = key_schema;
            tomb.key = key;
            tomb.timestamp = Some(ch.ts_ms);
            out.push(tomb);
        }
        out
    }

    fn source(&self, records: Vec<ConnectRecord>, offset: &Map<String, J>) -> Vec<SourceRecord> {
        records
            .into_iter()
            .map(|record| SourceRecord {
                record,
                source_partition: self.partition(),
                source_offset: offset.clone(),
            })
            .collect()
    }

    /// Starts reading one table for the snapshot: its columns, then a cursor over its
    /// rows in a REPEATABLE READ transaction, fetched `batch.size` rows per poll so a
    /// large table is never held in memory at once.
    fn open_snapshot(&mut self, schema: &str, table: &str, last: bool) -> Result<(), ConnectError> {
        let qualified = format!("{}.{}", ident(schema), ident(table));
        let client = self.client()?;
        let cols = client
            .query(
                "SELECT a.attname::text, a.atttypid::int8, coalesce(a.attnum = ANY(i.indkey::int2[]), false)
                 FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&qualified],
            )
            .map_err(|e| db_err(&format!("cannot read the columns of {qualified}"), e))?;
        let columns = cols
            .iter()
            .map(|r| RelColumn {
                name: r.get(0),
                type_oid: u32::try_from(r.get::<_, i64>(1)).unwrap_or(25),
                key: r.get(2),
            })
            .collect();
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; DECLARE gregor_snapshot NO SCROLL CURSOR FOR SELECT * FROM {qualified}"
            ))
            .map_err(|e| db_err(&format!("cannot read {qualified}"), e))?;
        let rel = Relation {
            id: 0,
            namespace: schema.to_string(),
            name: table.to_string(),
            columns,
        };
        self.cursor = Some((rel, last));
        Ok(())
    }

    /// The next rows of the table being snapshotted.
    fn fetch_snapshot(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        let Some((rel, last)) = self.cursor.clone() else {
            return Ok(Vec::new());
        };
        let n = usize::try_from(self.batch).unwrap_or(2048).max(1);
        let client = self.client()?;
        let rows = client
            .simple_query(&format!("FETCH {n} FROM gregor_snapshot"))
            .map_err(|e| db_err(&format!("cannot read {}.{}", rel.namespace, rel.name), e))?;
        let tuples: Vec<Tuple> = rows
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect();
        let table_done = tuples.len() < n;
        if table_done {
            client
                .batch_execute("CLOSE gregor_snapshot; COMMIT")
                .map_err(|e| db_err("cannot end the snapshot transaction", e))?;
            self.cursor = None;
        }
        let now = now_ms();
        let mut out = Vec::new();
        let count = tuples.len();
        for (i, t) in tuples.iter().enumerate() {
            let done = last && table_done && i + 1 == count;
            let offset = json!({"lsn": self.last_lsn, "snapshot_completed": done});
            let offset = offset.as_object().cloned().unwrap_or_default();
            let ch = Change {
                op: "r",
                before: None,
                after: Some(t),
                ts_ms: now,
                snapshot: if done { "last" } else { "true" },
                txid: None,
                lsn: None,
            };
            let recs = self.records(&rel, ch);
            out.extend(self.source(recs, &offset));
        }
        Ok(out)
    }

    fn advance(&mut self, lsn: u64) -> Result<(), ConnectError> {
        let slot = self.slot.clone();
        self.client()?
            .execute(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)",
                &[&slot, &pgoutput::format_lsn(lsn)],
            )
            .map_err(|e| db_err("cannot advance the replication slot", e))?;
        Ok(())
    }

    fn stream(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        let (slot, publication, batch) = (self.slot.clone(), self.publication.clone(), self.batch);
        let rows = self
            .client()?
            .query(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, $2, 'proto_version', '1', 'publication_names', $3)",
                &[&slot, &batch, &publication],
            )
            .map_err(|e| db_err("cannot read the replication slot", e))?;
        let mut out = Vec::new();
        let mut tx: Vec<ConnectRecord> = Vec::new();
        let (mut xid, mut commit_ts) = (0u32, 0i64);
        let mut max_end = 0u64;
        for row in &rows {
            let data: Vec<u8> = row.get(0);
            match pgoutput::decode(&data)? {
                Message::Begin {
                    xid: x,
                    commit_ts_us,
                } => {
                    tx.clear();
                    xid = x;
                    commit_ts = pg_ts_to_unix_ms(commit_ts_us);
                }
                Message::Relation(r) => {
                    self.relations.insert(r.id, r);
                }
                Message::Insert { rel, new } => {
                    let r = self.relation(rel)?;
                    tx.extend(self.records(
                        &r,
                        Change {
                            op: "c",
                            before: None,
                            after: Some(&new),
                            ts_ms: commit_ts,
                            snapshot: "false",
                            txid: Some(xid),
                            lsn: None,
                        },
                    ));
                }
                Message::Update { rel, old, new } => {
                    let r = self.relation(rel)?;
                    tx.extend(self.records(
                        &r,
                        Change {
                            op: "u",
                            before: old.as_ref(),
                            after: Some(&new),
                            ts_ms: commit_ts,
                            snapshot: "false",
                            txid: Some(xid),
                            lsn: None,
                        },
                    ));
                }
                Message::Delete { rel, old } => {
                    let r = self.relation(rel)?;
                    tx.extend(self.records(
                        &r,
                        Change {
                            op: "d",
                            before: Some(&old),
                            after: None,
                            ts_ms: commit_ts,
                            snapshot: "false",
                            txid: Some(xid),
                            lsn: None,
                        },
                    ));
                }
                Message::Commit { end_lsn, .. } => {
                    max_end = max_end.max(end_lsn);
                    let records = std::mem::take(&mut tx);
                    if end_lsn <= self.last_lsn {
                        // Delivered before a restart; the slot had not been advanced yet.
                        continue;
                    }
                    let offset = json!({"lsn": end_lsn, "snapshot_completed": true});
                    let offset = offset.as_object().cloned().unwrap_or_default();
                    let records = records
                        .into_iter()
                        .map(|mut r| {
                            set_lsn(&mut r.value, end_lsn);
                            r
                        })
                        .collect();
                    out.extend(self.source(records, &offset));
                }
                Message::Other => {}
            }
        }
        if max_end > 0 {
            if out.is_empty() {
                // Only transactions already delivered (or without captured changes).
                self.advance(max_end)?;
            } else {
                self.pending_advance = Some(max_end);
            }
        }
        Ok(out)
    }

    fn relation(&self, id: u32) -> Result<Relation, ConnectError> {
        self.relations
            .get(&id)
            .cloned()
            .ok_or_else(|| ConnectError::Data(format!("pgoutput change for unknown relation {id}")))
    }
}

fn set_lsn(value: &mut Value, lsn: u64) {
    if let Value::Struct(fields) = value {
        for (n, v) in fields.iter_mut() {
            if n == "source" {
                if let Value::Struct(sf) = v {
                    for (sn, sv) in sf.iter_mut() {
                        if sn == "lsn" {
                            *sv = Value::Int(i64::try_from(lsn).unwrap_or(i64::MAX));
                        }
                    }
                }
            }
        }
    }
}

impl SourceTask for CdcTask {
    fn start(&mut self, props: &Props, offsets: OffsetReader<'_>) -> Result<(), ConnectError> {
        let mut client = connect(props)?;
        self.prefix = get_str(props, "topic.prefix")
            .unwrap_or_default()
            .to_string();
        self.slot = get_str(props, "slot.name")
            .unwrap_or("gregor_connect")
            .to_string();
        self.publication = get_str(props, "publication.name")
            .unwrap_or("gregor_connect")
            .to_string();
        self.batch = i32::try_from(get_i64(props, "batch.size", 2048)).unwrap_or(2048);
        self.poll_interval = Duration::from_millis(
            u64::try_from(get_i64(props, "poll.interval.ms", 200)).unwrap_or(200),
        );
        let tables: Vec<(String, String)> = get_list(props, "table.include.list")
            .iter()
            .map(|t| match t.split_once('.') {
                Some((s, n)) => (s.to_string(), n.to_string()),
                None => ("public".to_string(), t.clone()),
            })
            .collect();
        self.db = client
            .query_one("SELECT current_database()::text", &[])
            .map_err(|e| db_err("cannot read the database name", e))?
            .get(0);
        let has_pub = !client
            .query(
                "SELECT 1 FROM pg_publication WHERE pubname = $1",
                &[&self.publication],
            )
            .map_err(|e| db_err("cannot read publications", e))?
            .is_empty();
        if !has_pub {
            let what = if tables.is_empty() {
                "ALL TABLES".to_string()
            } else {
                format!(
                    "TABLE {}",
                    tables
                        .iter()
                        .map(|(s, t)| format!("{}.{}", ident(s), ident(t)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            client
                .batch_execute(&format!(
                    "CREATE PUBLICATION {} FOR {what}",
                    ident(&self.publication)
                ))
                .map_err(|e| db_err("cannot create the publication", e))?;
        }
        let has_slot = !client
            .query(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .map_err(|e| db_err("cannot read replication slots", e))?
            .is_empty();
        if !has_slot {
            client
                .execute(
                    "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                    &[&self.slot],
                )
                .map_err(|e| db_err("cannot create the replication slot", e))?;
        }
        let stored = offsets(&self.partition());
        self.last_lsn = stored
            .as_ref()
            .and_then(|o| o.get("lsn"))
            .and_then(J::as_u64)
            .unwrap_or(0);
        let snapshot_done = stored
            .as_ref()
            .and_then(|o| o.get("snapshot_completed"))
            .and_then(J::as_bool)
            .unwrap_or(false);
        if !snapshot_done && get_str(props, "snapshot.mode") != Some("never") {
            self.snapshot = if tables.is_empty() {
                client
                    .query("SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2", &[&self.publication])
                    .map_err(|e| db_err("cannot list the publication's tables", e))?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect()
            } else {
                tables
            };
        }
        self.client = Some(client);
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        if self.cursor.is_none() && !self.snapshot.is_empty() {
            let (schema, table) = self.snapshot.remove(0);
            let last = self.snapshot.is_empty();
            self.open_snapshot(&schema, &table, last)?;
        }
        if self.cursor.is_some() {
            return self.fetch_snapshot();
        }
        let out = self.stream()?;
        if out.is_empty() {
            std::thread::sleep(self.poll_interval);
        }
        Ok(out)
    }

    fn commit(&mut self) -> Result<(), ConnectError> {
        if let Some(lsn) = self.pending_advance.take() {
            self.advance(lsn)?;
            self.last_lsn = self.last_lsn.max(lsn);
        }
        Ok(())
    }

    fn stop(&mut self) {
        self.client = None;
    }
}
