//! Exactly-once source support (KIP-618), Kafka's names: the worker's
//! `exactly.once.source.support`, the connector's `exactly.once.support`,
//! `transaction.boundary` and `transaction.boundary.interval.ms`, the per-task
//! transactional id, and the checks `config/validate` and create/update make.

use std::time::Duration;

use gregor_connect_api::config::get_str;
use gregor_connect_api::{Connector, ExactlyOnceSupport, Props};

use super::distributed::DistError;

pub const WORKER_SUPPORT: &str = "exactly.once.source.support";
pub const SUPPORT: &str = "exactly.once.support";
pub const BOUNDARY: &str = "transaction.boundary";
pub const BOUNDARY_INTERVAL: &str = "transaction.boundary.interval.ms";

/// The worker's `exactly.once.source.support`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WorkerSupport {
    /// At-least-once, as before (the default).
    #[default]
    Disabled,
    /// Kafka's rolling-upgrade step; tasks still run at-least-once here.
    Preparing,
    /// Source tasks of the distributed worker produce in transactions.
    Enabled,
}

impl WorkerSupport {
    pub fn from_props(props: &Props) -> Result<Self, DistError> {
        match props.get(WORKER_SUPPORT).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(WorkerSupport::Disabled),
            Some(v) => match v.as_str() {
                "disabled" => Ok(WorkerSupport::Disabled),
                "preparing" => Ok(WorkerSupport::Preparing),
                "enabled" => Ok(WorkerSupport::Enabled),
                _ => Err(DistError::Config(format!(
                    "Invalid value {v} for configuration {WORKER_SUPPORT}: String must be one of: disabled, preparing, enabled"
                ))),
            },
        }
    }

    /// Whether source tasks run transactionally on a worker with these properties:
    /// `enabled` and distributed (`group.id` set); standalone has no EOS, as in Kafka.
    pub fn enabled_on(props: &Props) -> bool {
        props.get("group.id").is_some_and(|g| !g.trim().is_empty())
            && WorkerSupport::from_props(props).ok() == Some(WorkerSupport::Enabled)
    }
}

/// When a source task commits its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionBoundary {
    /// One transaction per non-empty poll batch (the default).
    Poll,
    /// A transaction spans the polls of this long.
    Interval(Duration),
    /// Defined by the connector (no shipped connector can).
    Connector,
}

/// The default of `transaction.boundary.interval.ms`: the worker's
/// `offset.flush.interval.ms`, else Kafka's 60 s.
fn default_interval_ms(worker: &Props) -> i64 {
    worker
        .get("offset.flush.interval.ms")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(60_000)
}

impl TransactionBoundary {
    /// Parses the connector's settings; `Err((setting, message))` on a bad value (a
    /// bad interval is an error whatever the boundary, as Kafka's ConfigDef says).
    pub fn from_config(worker: &Props, config: &Props) -> Result<Self, (String, String)> {
        let interval_error = |v: &str, why: &str| {
            (
                BOUNDARY_INTERVAL.to_string(),
                format!("Invalid value {v} for configuration {BOUNDARY_INTERVAL}: {why}"),
            )
        };
        let ms = match get_str(config, BOUNDARY_INTERVAL).map(str::trim) {
            None | Some("") => default_interval_ms(worker),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| interval_error(v, "Not a number of type LONG"))?,
        };
        let ms = u64::try_from(ms)
            .map_err(|_| interval_error(&ms.to_string(), "Value must be at least 0"))?;
        let boundary = get_str(config, BOUNDARY).unwrap_or("poll").trim();
        match boundary.to_ascii_lowercase().as_str() {
            "poll" => Ok(TransactionBoundary::Poll),
            "connector" => Ok(TransactionBoundary::Connector),
            "interval" => Ok(TransactionBoundary::Interval(Duration::from_millis(ms))),
            _ => Err((
                BOUNDARY.to_string(),
                format!("Invalid value {boundary} for configuration {BOUNDARY}: String must be one of: poll, interval, connector"),
            )),
        }
    }
}

/// A source task's transactional id, Kafka's `${groupId}-${connector}-${taskId}`.
pub fn transactional_id(group_id: &str, connector: &str, task: u32) -> String {
    format!("{group_id}-{connector}-{task}")
}

/// The KIP-618 checks of a source connector's config: (setting, message) pairs, in the
/// shape the rest of validation reports.
pub fn validate(
    worker: &Props,
    config: &Props,
    connector: &dyn Connector,
) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let support = get_str(config, SUPPORT).unwrap_or("requested").trim();
    let required = match support.to_ascii_lowercase().as_str() {
        "requested" => false,
        "required" => true,
        _ => {
            errors.push((
                SUPPORT.to_string(),
                format!("Invalid value {support} for configuration {SUPPORT}: String must be one of: requested, required"),
            ));
            false
        }
    };
    let enabled = WorkerSupport::enabled_on(worker);
    if required {
        if !enabled {
            errors.push((
                SUPPORT.to_string(),
                format!("This worker does not have exactly-once source support enabled ({WORKER_SUPPORT}=enabled on a distributed worker), so {SUPPORT}=required cannot be honoured"),
            ));
        } else {
            match connector.exactly_once_support(config) {
                Some(ExactlyOnceSupport::Supported) => {}
                Some(ExactlyOnceSupport::Unsupported) => errors.push((
                    SUPPORT.to_string(),
                    "The connector does not support exactly-once semantics with the provided configuration.".into(),
                )),
                None => errors.push((
                    SUPPORT.to_string(),
                    "The connector does not implement the API required for preflight validation of exactly-once source support.".into(),
                )),
            }
        }
    }
    match TransactionBoundary::from_config(worker, config) {
        Err(e) => errors.push(e),
        Ok(TransactionBoundary::Connector)
            if !connector.can_define_transaction_boundaries(config) =>
        {
            errors.push((
                BOUNDARY.to_string(),
                "The connector does not support connector-defined transaction boundaries with the given configuration. Please use transaction.boundary=poll or transaction.boundary=interval.".into(),
            ));
        }
        Ok(_) => {}
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors;

    fn props(kv: &[(&str, &str)]) -> Props {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn worker_setting() {
        assert_eq!(
            WorkerSupport::from_props(&props(&[])).unwrap(),
            WorkerSupport::Disabled
        );
        let p = props(&[(WORKER_SUPPORT, " Enabled ")]);
        assert_eq!(
            WorkerSupport::from_props(&p).unwrap(),
            WorkerSupport::Enabled
        );
        assert!(!WorkerSupport::enabled_on(&p), "standalone has no EOS");
        let p = props(&[(WORKER_SUPPORT, "enabled"), ("group.id", "g")]);
        assert!(WorkerSupport::enabled_on(&p));
        let p = props(&[(WORKER_SUPPORT, "preparing"), ("group.id", "g")]);
        assert!(!WorkerSupport::enabled_on(&p));
        let e = WorkerSupport::from_props(&props(&[(WORKER_SUPPORT, "on")])).unwrap_err();
        assert!(e.to_string().contains("disabled, preparing, enabled"));
    }

    #[test]
    fn boundaries() {
        let w = props(&[("offset.flush.interval.ms", "5000")]);
        let b = |kv: &[(&str, &str)]| TransactionBoundary::from_config(&w, &props(kv));
        assert_eq!(b(&[]).unwrap(), TransactionBoundary::Poll);
        assert_eq!(
            b(&[(BOUNDARY, "interval")]).unwrap(),
            TransactionBoundary::Interval(Duration::from_secs(5))
        );
        assert_eq!(
            b(&[(BOUNDARY, "interval"), (BOUNDARY_INTERVAL, "250")]).unwrap(),
            TransactionBoundary::Interval(Duration::from_millis(250))
        );
        assert_eq!(
            b(&[(BOUNDARY, "connector")]).unwrap(),
            TransactionBoundary::Connector
        );
        assert_eq!(b(&[(BOUNDARY, "sometimes")]).unwrap_err().0, BOUNDARY);
        let e = b(&[(BOUNDARY, "interval"), (BOUNDARY_INTERVAL, "-1")]).unwrap_err();
        assert_eq!(e.0, BOUNDARY_INTERVAL);
        let e = b(&[(BOUNDARY, "interval"), (BOUNDARY_INTERVAL, "x")]).unwrap_err();
        assert_eq!(e.0, BOUNDARY_INTERVAL);
    }

    #[test]
    fn transactional_ids_follow_kafka() {
        assert_eq!(
            transactional_id("connect-cluster", "src", 3),
            "connect-cluster-src-3"
        );
    }

    #[test]
    fn connector_checks() {
        let file = connectors::find("FileStreamSource").unwrap();
        let cdc = connectors::find("PostgresCdcSource").unwrap();
        let (f, c) = ((file.new_connector)(), (cdc.new_connector)());
        let eos = props(&[(WORKER_SUPPORT, "enabled"), ("group.id", "g")]);
        let plain = props(&[("group.id", "g")]);
        let required = props(&[(SUPPORT, "required")]);
        assert!(validate(&eos, &required, f.as_ref()).is_empty());
        let e = validate(&plain, &required, f.as_ref());
        assert_eq!(e.len(), 1);
        assert!(e[0]
            .1
            .contains("does not have exactly-once source support enabled"));
        // The CDC source's snapshot is not exact; changes-only is.
        assert_eq!(validate(&eos, &required, c.as_ref()).len(), 1);
        let never = props(&[(SUPPORT, "required"), ("snapshot.mode", "never")]);
        assert!(validate(&eos, &never, c.as_ref()).is_empty());
        let e = validate(&eos, &props(&[(SUPPORT, "maybe")]), f.as_ref());
        assert_eq!(e[0].0, SUPPORT);
        let e = validate(&eos, &props(&[(BOUNDARY, "connector")]), f.as_ref());
        assert!(e[0].1.contains("connector-defined transaction boundaries"));
        // `requested` (the default) never refuses.
        assert!(validate(&plain, &props(&[]), f.as_ref()).is_empty());
    }
}
