//! Client-metrics subscriptions (KIP-714): the `client-metrics` config resources that
//! tell matching clients which telemetry metrics to push and how often.
//!
//! A subscription is a named config resource with up to three configs, as in Kafka's
//! `ClientMetricsConfigs`: `metrics` (a list of metric-name prefixes, `*` for all),
//! `interval.ms` (the push interval, 100 ms to one hour) and `match` (a list of
//! `selector=regex` pairs, every one of which must fully match the client's value; an
//! empty list matches every client). They are ConfigRecords in the metadata log, so
//! they survive restarts; deleting every config of a subscription removes it.

use std::collections::BTreeMap;

use crate::controller::{ConfigOp, ControllerError};
use crate::image::MetadataImage;
use crate::records::{ConfigResource, MetadataRecord};

pub const METRICS: &str = "metrics";
pub const INTERVAL_MS: &str = "interval.ms";
pub const MATCH: &str = "match";

/// Every config a subscription may have.
pub const CONFIG_NAMES: &[&str] = &[METRICS, INTERVAL_MS, MATCH];

/// Kafka's default push interval (five minutes), also the longest a client is told to
/// wait when several subscriptions match it.
pub const DEFAULT_INTERVAL_MS: i32 = 5 * 60 * 1000;
const MIN_INTERVAL_MS: i32 = 100;
const MAX_INTERVAL_MS: i32 = 3_600_000;

/// The client properties a `match` entry can select on (KIP-714).
pub const MATCH_SELECTORS: &[&str] = &[
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];

/// The items of a list-typed config value (comma-separated, blanks dropped).
pub fn list_items(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect()
}

/// Splits a `match` entry at its first `=` into a known selector and its pattern.
pub fn split_match(entry: &str) -> Result<(&'static str, &str), ControllerError> {
    let illegal =
        || ControllerError::InvalidConfig(format!("Illegal client matching pattern: {entry}"));
    let (name, pattern) = entry.split_once('=').ok_or_else(illegal)?;
    let selector = MATCH_SELECTORS
        .iter()
        .find(|s| **s == name.trim())
        .ok_or_else(illegal)?;
    Ok((selector, pattern.trim()))
}

/// A `match` pattern as the broker applies it: the whole value must match, as Java's
/// `Matcher.matches`. The `regex` crate is linear-time (the RE2 family, like the RE2/J
/// Kafka compiles these with), so a pattern cannot stall the broker.
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// Checks a subscription's complete configs, as Kafka's `ClientMetricsConfigs.validate`:
/// unknown names and out-of-range intervals are INVALID_REQUEST, a bad `match` entry is
/// INVALID_CONFIG.
pub fn validate(name: &str, configs: &BTreeMap<String, String>) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidRequest(
            "Subscription name can't be empty".into(),
        ));
    }
    for key in configs.keys() {
        if !CONFIG_NAMES.contains(&key.as_str()) {
            return Err(ControllerError::InvalidRequest(format!(
                "Unknown client metrics configuration: {key}"
            )));
        }
    }
    if let Some(v) = configs.get(INTERVAL_MS) {
        let ok = v
            .trim()
            .parse::<i32>()
            .is_ok_and(|ms| (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms));
        if !ok {
            return Err(ControllerError::InvalidRequest(format!(
                "Invalid value {v} for {INTERVAL_MS}, interval must be between 100 and 3600000 (1 hour)"
            )));
        }
    }
    if let Some(v) = configs.get(MATCH) {
        for entry in list_items(v) {
            let (selector, pattern) = split_match(&entry)?;
            compile_pattern(pattern).map_err(|e| {
                ControllerError::InvalidConfig(format!(
                    "Client match pattern `{selector}={pattern}` is not a valid regular expression: {e}."
                ))
            })?;
        }
    }
    Ok(())
}

/// Records for IncrementalAlterConfigs on one subscription. SET and DELETE apply to any
/// of its configs, APPEND and SUBTRACT to the list-typed `metrics` and `match`; the
/// resulting configs are validated as a whole, so one bad operation refuses them all.
pub fn alter(
    image: &MetadataImage,
    name: &str,
    ops: &[(String, ConfigOp, Option<String>)],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let current = image.client_metrics.get(name).cloned().unwrap_or_default();
    let mut next = current.clone();
    for (key, op, value) in ops {
        if !CONFIG_NAMES.contains(&key.as_str()) {
            return Err(ControllerError::InvalidRequest(format!(
                "Unknown client metrics configuration: {key}"
            )));
        }
        match op {
            ConfigOp::Set => {
                let v = value.clone().ok_or_else(|| {
                    ControllerError::InvalidConfig(format!("Null value not supported for : {key}"))
                })?;
                next.insert(key.clone(), v);
            }
            ConfigOp::Delete => {
                next.remove(key);
            }
            ConfigOp::Append | ConfigOp::Subtract => {
                if key == INTERVAL_MS {
                    return Err(ControllerError::InvalidConfig(format!(
                        "Config value append/subtract is not allowed for config key: {key}, since it is not a list"
                    )));
                }
                let mut items = list_items(next.get(key).map_or("", String::as_str));
                let given = list_items(value.as_deref().unwrap_or_default());
                if *op == ConfigOp::Append {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                next.insert(key.clone(), items.join(","));
            }
        }
    }
    validate(name, &next)?;
    Ok(crate::records::config_changes(
        ConfigResource::ClientMetrics,
        name,
        &current,
        &next,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: &str, v: &str) -> (String, ConfigOp, Option<String>) {
        (k.to_string(), ConfigOp::Set, Some(v.to_string()))
    }

    fn applied(image: &mut MetadataImage, records: Vec<MetadataRecord>) {
        for r in &records {
            image.apply(r);
        }
    }

    #[test]
    fn a_subscription_is_created_altered_and_removed() {
        let mut image = MetadataImage::empty();
        let r = alter(
            &image,
            "sub",
            &[
                set(METRICS, "org.apache.kafka.producer."),
                set(INTERVAL_MS, "1000"),
                set(MATCH, "client_id=app-.*"),
            ],
        )
        .unwrap();
        applied(&mut image, r);
        assert_eq!(image.client_metrics["sub"][INTERVAL_MS], "1000");
        let r = alter(
            &image,
            "sub",
            &[(
                METRICS.into(),
                ConfigOp::Append,
                Some("org.apache.kafka.consumer.".into()),
            )],
        )
        .unwrap();
        applied(&mut image, r);
        assert_eq!(
            image.client_metrics["sub"][METRICS],
            "org.apache.kafka.producer.,org.apache.kafka.consumer."
        );
        let del: Vec<_> = CONFIG_NAMES
            .iter()
            .map(|k| (k.to_string(), ConfigOp::Delete, None))
            .collect();
        let r = alter(&image, "sub", &del).unwrap();
        applied(&mut image, r);
        assert!(!image.client_metrics.contains_key("sub"));
    }

    #[test]
    fn bad_configs_get_kafkas_codes() {
        let image = MetadataImage::empty();
        let err = |ops: &[(String, ConfigOp, Option<String>)]| alter(&image, "s", ops).unwrap_err();
        assert!(matches!(
            err(&[set("nope", "1")]),
            ControllerError::InvalidRequest(_)
        ));
        assert!(matches!(
            err(&[set(INTERVAL_MS, "99")]),
            ControllerError::InvalidRequest(_)
        ));
        assert!(matches!(
            err(&[set(INTERVAL_MS, "3600001")]),
            ControllerError::InvalidRequest(_)
        ));
        assert!(matches!(
            err(&[set(MATCH, "host=a")]),
            ControllerError::InvalidConfig(_)
        ));
        assert!(matches!(
            err(&[set(MATCH, "client_id")]),
            ControllerError::InvalidConfig(_)
        ));
        assert!(matches!(
            err(&[set(MATCH, "client_id=(unclosed")]),
            ControllerError::InvalidConfig(_)
        ));
        assert!(matches!(
            err(&[(INTERVAL_MS.into(), ConfigOp::Append, Some("5".into()))]),
            ControllerError::InvalidConfig(_)
        ));
        assert!(matches!(
            alter(&image, "", &[set(METRICS, "a")]).unwrap_err(),
            ControllerError::InvalidRequest(_)
        ));
    }

    #[test]
    fn patterns_match_whole_values() {
        let p = compile_pattern("app-.*").unwrap();
        assert!(p.is_match("app-1"));
        assert!(!p.is_match("my-app-1"));
        assert_eq!(
            split_match("client_id = a=b").unwrap(),
            ("client_id", "a=b")
        );
    }
}
