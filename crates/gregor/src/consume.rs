//! `gregor consume`: read topics, with or without a consumer group.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::conn::{Conn, TIMEOUT};

#[derive(clap::Args)]
pub(crate) struct ConsumeArgs {
    /// Topics to read.
    #[arg(required = true)]
    pub(crate) topics: Vec<String>,
    /// Where to start: beginning, end, an offset, or @TIMESTAMP_MS. With --group, where
    /// to start when the group has no committed offset.
    #[arg(long, default_value = "end")]
    from: String,
    /// Read as a member of this consumer group (commits its position).
    #[arg(long, short)]
    group: Option<String>,
    /// Read as a member of this share group (KIP-932, a queue): records are shared
    /// with the group's other members and each one printed is acknowledged (ACCEPT).
    #[arg(long, conflicts_with = "group", value_name = "NAME")]
    pub(crate) share_group: Option<String>,
    /// Stop after this many records.
    #[arg(long, short = 'c')]
    pub(crate) count: Option<u64>,
    /// Stop when every partition has been read to its end (with --share-group: when a
    /// fetch finds nothing to deliver).
    #[arg(long, short = 'e')]
    pub(crate) exit_at_end: bool,
    /// kcat-like template: %t topic, %p partition, %o offset, %k key, %s value,
    /// %T timestamp, %h headers, \n and \t.
    #[arg(long, short = 'f')]
    pub(crate) format: Option<String>,
    /// read_uncommitted or read_committed.
    #[arg(long, default_value = "read_uncommitted")]
    isolation: String,
}

fn text(b: Option<&[u8]>) -> String {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// One record as the output formats see it, whichever client read it.
pub(crate) struct Rec<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(String, Option<String>)>,
}

impl Rec<'_> {
    /// The record as one output line: JSON, the `-f` template, or the value.
    pub(crate) fn line(&self, json: bool, format: Option<&str>) -> String {
        if json {
            json!({
                "topic": self.topic, "partition": self.partition, "offset": self.offset,
                "timestamp": self.timestamp,
                "key": self.key.map(|k| String::from_utf8_lossy(k).into_owned()),
                "value": self.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                "headers": self.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            })
            .to_string()
                + "\n"
        } else if let Some(f) = format {
            render(f, self)
        } else {
            text(self.value) + "\n"
        }
    }
}

fn headers(m: &BorrowedMessage<'_>) -> Vec<(String, Option<String>)> {
    m.headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn render(template: &str, m: &Rec<'_>) -> String {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some(n)) => {
                chars.next();
                match n {
                    't' => out.push_str(m.topic),
                    'p' => out.push_str(&m.partition.to_string()),
                    'o' => out.push_str(&m.offset.to_string()),
                    'k' => out.push_str(&text(m.key)),
                    's' => out.push_str(&text(m.value)),
                    'T' => out.push_str(&m.timestamp.unwrap_or(-1).to_string()),
                    'h' => {
                        let hs: Vec<String> = m
                            .headers
                            .iter()
                            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or_default()))
                            .collect();
                        out.push_str(&hs.join(","));
                    }
                    other => {
                        out.push('%');
                        out.push(other);
                    }
                }
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                out.push('\t');
            }
            (c, _) => out.push(c),
        }
    }
    out
}

fn start_offset(from: &str) -> Result<Offset> {
    Ok(match from {
        "beginning" => Offset::Beginning,
        "end" => Offset::End,
        s if s.starts_with('@') => Offset::Offset(
            s[1..]
                .parse()
                .with_context(|| format!("bad timestamp in --from {s}"))?,
        ),
        s => Offset::Offset(s.parse().with_context(|| {
            format!("--from must be beginning, end, an offset or @timestamp, not {s:?}")
        })?),
    })
}

pub(crate) fn run(conn: &Conn, args: ConsumeArgs) -> Result<()> {
    if let Some(group) = args.share_group.clone() {
        return crate::share_consume::run(conn, &args, &group);
    }
    let mut cfg = conn.config()?;
    cfg.set("enable.partition.eof", "true")
        .set("isolation.level", &args.isolation)
        .set(
            "auto.offset.reset",
            if args.from == "beginning" {
                "earliest"
            } else {
                "latest"
            },
        );
    match &args.group {
        Some(g) => cfg.set("group.id", g),
        None => cfg
            .set("group.id", "gregor-cli")
            .set("enable.auto.commit", "false"),
    };
    let consumer: BaseConsumer = cfg.create().context("cannot create consumer")?;
    let md = consumer
        .fetch_metadata(None, TIMEOUT)
        .context("cannot fetch metadata")?;
    let mut all = Vec::new();
    for t in &args.topics {
        let Some(topic) = md.topics().iter().find(|x| x.name() == t) else {
            bail!("unknown topic {t}");
        };
        for p in topic.partitions() {
            all.push((t.clone(), p.id()));
        }
    }
    if args.group.is_some() {
        let refs: Vec<&str> = args.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs).context("cannot subscribe")?;
    } else {
        let mut tpl = TopicPartitionList::new();
        let start = start_offset(&args.from)?;
        for (t, p) in &all {
            tpl.add_partition_offset(
                t,
                *p,
                match start {
                    Offset::Offset(o) if args.from.starts_with('@') => Offset::Offset(o),
                    other => other,
                },
            )?;
        }
        if args.from.starts_with('@') {
            tpl = consumer
                .offsets_for_times(tpl, TIMEOUT)
                .context("cannot look up offsets for the timestamp")?;
        }
        consumer.assign(&tpl).context("cannot assign partitions")?;
    }
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    let mut at_end: HashSet<(String, i32)> = HashSet::new();
    loop {
        if args.count.is_some_and(|c| seen >= c) {
            break;
        }
        let Some(r) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = match r {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(p)) => {
                if args.exit_at_end {
                    let assignment = consumer.assignment().unwrap_or_default();
                    let assigned = assignment.count();
                    for e in assignment.elements() {
                        if e.partition() == p {
                            at_end.insert((e.topic().to_string(), p));
                        }
                    }
                    if assigned > 0 && at_end.len() >= assigned {
                        break;
                    }
                }
                continue;
            }
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                bail!("unknown topic or partition")
            }
            Err(e) => bail!("consume failed: {e}"),
        };
        at_end.remove(&(m.topic().to_string(), m.partition()));
        seen += 1;
        let line = Rec {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
            key: m.key(),
            value: m.payload(),
            headers: headers(&m),
        }
        .line(conn.json(), args.format.as_deref());
        if out.write_all(line.as_bytes()).is_err() {
            break; // stdout closed (a pipe to head): stop quietly
        }
    }
    let _ = out.flush();
    if args.group.is_some() {
        // Commit what was read before leaving the group.
        if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
            if !matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) {
                bail!("cannot commit the group's position: {e}");
            }
        }
    }
    Ok(())
}
