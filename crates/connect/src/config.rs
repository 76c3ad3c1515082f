//! Worker properties (`worker.properties`), with Kafka's names.

use std::path::PathBuf;

use gregor_connect_api::Props;

use crate::error::Error;
use crate::runtime::distributed::DistConfig;

/// Parses Java-style properties: `key=value` or `key: value`, `#`/`!` comments.
pub fn parse_properties(text: &str) -> Props {
    let mut props = Props::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']);
        let (k, v) = match split {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, ""),
        };
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    props
}

/// A worker's settings, read from its properties (standalone, or distributed when
/// `group.id` is set).
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub props: Props,
    /// `listeners` (first one, scheme removed), when set.
    pub listen: Option<String>,
    /// `offset.storage.file.filename`.
    pub offsets_file: PathBuf,
    /// Where connector configs are kept across restarts (a Gregor setting,
    /// `config.storage.file.filename`; default: the offsets file name + `.connectors`).
    pub configs_file: PathBuf,
    /// Distributed mode's settings, when `group.id` is set.
    pub distributed: Option<DistConfig>,
}

impl WorkerConfig {
    pub fn from_props(props: Props) -> Result<Self, Error> {
        let distributed = DistConfig::from_props(&props)?;
        let listen = props.get("listeners").and_then(|l| {
            l.split(',')
                .next()
                .map(|s| {
                    s.trim()
                        .trim_start_matches("http://")
                        .trim_end_matches('/')
                        .to_string()
                })
                .filter(|s| !s.is_empty())
        });
        let offsets_file = PathBuf::from(
            props
                .get("offset.storage.file.filename")
                .map_or("/tmp/connect.offsets", String::as_str),
        );
        let configs_file = props
            .get("config.storage.file.filename")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let mut s = offsets_file.clone().into_os_string();
                s.push(".connectors");
                PathBuf::from(s)
            });
        Ok(WorkerConfig {
            props,
            listen,
            offsets_file,
            configs_file,
            distributed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_distributed_mode() {
        let p = parse_properties("# c\nbootstrap.servers=a:1\nlisteners = http://127.0.0.1:8083\nkey.converter.schemas.enable: false\n");
        assert_eq!(
            p.get("key.converter.schemas.enable").map(String::as_str),
            Some("false")
        );
        let c = WorkerConfig::from_props(p).unwrap();
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:8083"));
        assert_eq!(
            c.configs_file,
            PathBuf::from("/tmp/connect.offsets.connectors")
        );
        assert!(c.distributed.is_none());
        let mut d = Props::new();
        d.insert("group.id".into(), "g".into());
        let c = WorkerConfig::from_props(d.clone()).unwrap();
        assert_eq!(c.distributed.unwrap().group_id, "g");
        d.insert("session.timeout.ms".into(), "soon".into());
        assert!(WorkerConfig::from_props(d).is_err());
    }
}
