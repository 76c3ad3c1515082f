//! FileStreamSource and FileStreamSink, with Kafka's class names and settings.
//!
//! The source reads complete lines only (a line without its newline yet is left for the
//! next poll) and records its byte position as the offset
//! `{"filename": file} -> {"position": n}`, Kafka's own shape, so a restarted task
//! resumes after the last line Kafka acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use gregor_connect_api::config::{get_i64, get_str};
use gregor_connect_api::connector::OffsetReader;
use gregor_connect_api::{
    ConfigDef, ConfigType, ConnectError, ConnectRecord, Connector, ExactlyOnceSupport, Importance,
    Props, Schema, SchemaType, SinkRecord, SinkTask, SourceRecord, SourceTask, Validator, Value,
};
use serde_json::{json, Map};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn source_connector() -> Box<dyn Connector> {
    Box::new(FileStreamConnector {
        source: true,
        props: Props::new(),
    })
}

pub fn sink_connector() -> Box<dyn Connector> {
    Box::new(FileStreamConnector {
        source: false,
        props: Props::new(),
    })
}

pub fn source_task() -> Box<dyn SourceTask> {
    Box::new(FileStreamSourceTask::default())
}

pub fn sink_task() -> Box<dyn SinkTask> {
    Box::new(FileStreamSinkTask { out: None })
}

struct FileStreamConnector {
    source: bool,
    props: Props,
}

impl Connector for FileStreamConnector {
    fn version(&self) -> &'static str {
        VERSION
    }

    fn config_def(&self) -> ConfigDef {
        let def = ConfigDef::new().define(
            "file",
            ConfigType::String,
            None,
            Importance::High,
            if self.source {
                "Source filename."
            } else {
                "Destination filename."
            },
        );
        if self.source {
            def.with_validator(Validator::NonEmpty)
                .define("topic", ConfigType::List, None, Importance::High, "The topic to publish data to")
                .with_validator(Validator::NonEmpty)
                .define(
                    "batch.size",
                    ConfigType::Int,
                    Some("2000"),
                    Importance::Low,
                    "The maximum number of records the source task can read from the file each time it is polled",
                )
                .with_validator(Validator::Range { min: 1, max: i64::from(i32::MAX) })
        } else {
            def.with_validator(Validator::NonEmpty)
        }
    }

    fn validate(&self, props: &Props) -> Vec<(String, String)> {
        match get_str(props, "topic") {
            Some(t) if self.source && t.contains(',') => vec![(
                "topic".into(),
                format!("Invalid value {t} for configuration topic: 'topic' in FileStreamSourceConnector configuration requires definition of a single topic"),
            )],
            _ => Vec::new(),
        }
    }

    fn start(&mut self, props: &Props) -> Result<(), ConnectError> {
        self.props = props.clone();
        Ok(())
    }

    /// The source's offset is the byte position after the last line it returned, so a
    /// task restarted from a committed offset reads exactly the lines not committed.
    fn exactly_once_support(&self, _props: &Props) -> Option<ExactlyOnceSupport> {
        self.source.then_some(ExactlyOnceSupport::Supported)
    }

    fn task_configs(&self, max_tasks: usize) -> Vec<Props> {
        // As Kafka's: the source reads one file with one task; the sink gives every one
        // of `tasks.max` tasks the same config (they share the topics' partitions).
        let n = if self.source { 1 } else { max_tasks.max(1) };
        vec![self.props.clone(); n]
    }
}

/// Reads lines appended to `file` from the stored position.
#[derive(Default)]
struct FileStreamSourceTask {
    file: String,
    topic: String,
    batch_size: usize,
    position: u64,
    /// Bytes read past `position` that do not end in a newline yet.
    partial: Vec<u8>,
    reader: Option<File>,
}

impl FileStreamSourceTask {
    fn partition(&self) -> Map<String, serde_json::Value> {
        let mut m = Map::new();
        m.insert("filename".into(), json!(self.file));
        m
    }
}

impl SourceTask for FileStreamSourceTask {
    fn start(&mut self, props: &Props, offsets: OffsetReader<'_>) -> Result<(), ConnectError> {
        self.file = get_str(props, "file").unwrap_or_default().to_string();
        self.topic = get_str(props, "topic").unwrap_or_default().to_string();
        self.batch_size = usize::try_from(get_i64(props, "batch.size", 2000)).unwrap_or(2000);
        self.position = offsets(&self.partition())
            .and_then(|o| o.get("position").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        if self.reader.is_none() {
            match File::open(&self.file) {
                Ok(mut f) => {
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    // A file shorter than the stored position was replaced: start over.
                    if len < self.position {
                        self.position = 0;
                    }
                    f.seek(SeekFrom::Start(self.position))
                        .map_err(|e| ConnectError::io(format!("seek in {}", self.file), e))?;
                    self.reader = Some(f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(200));
                    return Ok(Vec::new());
                }
                Err(e) => return Err(ConnectError::io(format!("open {}", self.file), e)),
            }
        }
        let source_partition = self.partition();
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Vec::new());
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut records = Vec::new();
        // `line_start` is the file position of the first byte of `partial`.
        let mut line_start = self.position;
        loop {
            if records.len() >= self.batch_size {
                break;
            }
            if let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=nl).collect();
                line_start += line.len() as u64;
                let mut text = &line[..line.len() - 1];
                if text.last() == Some(&b'\r') {
                    text = &text[..text.len() - 1];
                }
                let mut offset = Map::new();
                offset.insert("position".into(), json!(line_start));
                let mut record = ConnectRecord::new(
                    self.topic.clone(),
                    Some(Schema::new(SchemaType::String)),
                    Value::String(String::from_utf8_lossy(text).into_owned()),
                );
                record.timestamp = Some(now_ms());
                records.push(SourceRecord {
                    record,
                    source_partition: source_partition.clone(),
                    source_offset: offset,
                });
                continue;
            }
            let n = reader
                .read(&mut buf)
                .map_err(|e| ConnectError::io(format!("read {}", self.file), e))?;
            if n == 0 {
                break;
            }
            self.partial.extend_from_slice(&buf[..n]);
        }
        self.position = line_start;
        if records.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(records)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Appends each record's value, as text, as one line of `file`.
struct FileStreamSinkTask {
    out: Option<(String, BufWriter<File>)>,
}

impl SinkTask for FileStreamSinkTask {
    fn start(&mut self, props: &Props) -> Result<(), ConnectError> {
        let path = get_str(props, "file").unwrap_or_default().to_string();
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                ConnectError::io(
                    format!("Couldn't find or create file '{path}' for FileStreamSinkTask"),
                    e,
                )
            })?;
        self.out = Some((path, BufWriter::new(f)));
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<(), ConnectError> {
        let Some((path, out)) = self.out.as_mut() else {
            return Err(ConnectError::Other(
                "FileStreamSinkTask is not started".into(),
            ));
        };
        for r in records {
            writeln!(out, "{}", r.record.value.to_display_string())
                .map_err(|e| ConnectError::io(format!("write {path}"), e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectError> {
        if let Some((path, out)) = self.out.as_mut() {
            out.flush()
                .and_then(|_| out.get_ref().sync_data())
                .map_err(|e| ConnectError::io(format!("flush {path}"), e))?;
        }
        Ok(())
    }

    fn stop(&mut self) {
        let _ = self.flush();
        self.out = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_reads_complete_lines_and_resumes_from_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "a\nbb\ncc").unwrap();
        let mut props = Props::new();
        props.insert("file".into(), path.display().to_string());
        props.insert("topic".into(), "t".into());
        let mut task = FileStreamSourceTask::default();
        task.start(&props, &|_| None).unwrap();
        let recs = task.poll().unwrap();
        let lines: Vec<_> = recs.iter().map(|r| r.record.value.clone()).collect();
        assert_eq!(
            lines,
            vec![Value::String("a".into()), Value::String("bb".into())]
        );
        assert_eq!(recs[1].source_offset["position"], json!(5));
        // Resume at position 2 (after "a\n").
        let mut again = FileStreamSourceTask::default();
        again
            .start(&props, &|_| {
                Some(Map::from_iter([("position".to_string(), json!(2))]))
            })
            .unwrap();
        let recs = again.poll().unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].record.value, Value::String("bb".into()));
    }
}
