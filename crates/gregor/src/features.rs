//! `gregor cluster features`: the feature levels (KIP-584) a cluster supports and has
//! finalized, and changing them with UpdateFeatures. Both go over [`crate::wire`]
//! (ApiVersions v3 and UpdateFeatures are not in librdkafka's API), so they work
//! against any Kafka 4.x cluster too.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{ApiVersionsRequest, UpdateFeaturesRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::conn::{table, Conn};
use crate::wire::{error_name, Wire};

#[derive(clap::Subcommand)]
pub(crate) enum FeaturesCommand {
    /// Raise finalized levels.
    ///
    /// Example: gregor cluster features upgrade --feature transaction.version=2
    Upgrade(Change),
    /// Lower finalized levels (level 0 removes a feature).
    ///
    /// Example: gregor cluster features downgrade --feature transaction.version=1
    Downgrade {
        #[command(flatten)]
        change: Change,
        /// An unsafe downgrade (may lose metadata; the broker may refuse it).
        #[arg(long = "unsafe")]
        unsafe_downgrade: bool,
    },
}

#[derive(clap::Args)]
pub(crate) struct Change {
    /// NAME=LEVEL, e.g. transaction.version=2. Repeatable.
    #[arg(long = "feature", value_name = "NAME=LEVEL", required = true)]
    features: Vec<String>,
    /// Only check that the cluster would accept the change.
    #[arg(long)]
    dry_run: bool,
}

/// UpdateFeatures' upgrade types.
const UPGRADE: i8 = 1;
const SAFE_DOWNGRADE: i8 = 2;
const UNSAFE_DOWNGRADE: i8 = 3;

pub(crate) fn run(conn: &Conn, cmd: Option<FeaturesCommand>) -> Result<()> {
    conn.config()?; // the reachability check
    match cmd {
        None => describe(conn),
        Some(FeaturesCommand::Upgrade(change)) => update(conn, &change, UPGRADE),
        Some(FeaturesCommand::Downgrade {
            change,
            unsafe_downgrade,
        }) => update(
            conn,
            &change,
            if unsafe_downgrade {
                UNSAFE_DOWNGRADE
            } else {
                SAFE_DOWNGRADE
            },
        ),
    }
}

/// A feature's supported range and finalized level.
#[derive(Default)]
struct Row {
    supported: Option<(i16, i16)>,
    finalized: Option<i16>,
}

fn describe(conn: &Conn) -> Result<()> {
    let mut w = Wire::open(conn)?;
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("gregor-cli"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let resp = w.call(&req, 3)?;
    if resp.error_code != 0 {
        bail!("cannot describe features: {}", error_name(resp.error_code));
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for f in &resp.supported_features {
        rows.entry(f.name.to_string()).or_default().supported =
            Some((f.min_version, f.max_version));
    }
    for f in &resp.finalized_features {
        rows.entry(f.name.to_string()).or_default().finalized = Some(f.max_version_level);
    }
    let epoch = resp.finalized_features_epoch;
    if conn.json() {
        let features: Vec<_> = rows
            .iter()
            .map(|(name, r)| {
                json!({
                    "name": name,
                    "supported_min": r.supported.map(|s| s.0),
                    "supported_max": r.supported.map(|s| s.1),
                    "finalized": r.finalized.unwrap_or(0),
                })
            })
            .collect();
        out!(
            "{}",
            json!({"features": features, "finalized_epoch": epoch})
        );
    } else {
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|(name, r)| {
                vec![
                    name.clone(),
                    r.supported
                        .map_or_else(|| "-".into(), |(a, b)| format!("{a}-{b}")),
                    r.finalized.unwrap_or(0).to_string(),
                ]
            })
            .collect();
        table(&["FEATURE", "SUPPORTED", "FINALIZED"], &table_rows);
        out!("finalized features epoch: {epoch}");
    }
    Ok(())
}

fn parse(spec: &str) -> Result<(String, i16)> {
    let (name, level) = spec
        .split_once('=')
        .with_context(|| format!("malformed --feature {spec:?}: expected NAME=LEVEL"))?;
    let level: i16 = level
        .trim()
        .parse()
        .with_context(|| format!("malformed --feature {spec:?}: the level is not a number"))?;
    if name.trim().is_empty() {
        bail!("malformed --feature {spec:?}: no feature name");
    }
    Ok((name.trim().to_string(), level))
}

fn update(conn: &Conn, change: &Change, upgrade_type: i8) -> Result<()> {
    let updates = change
        .features
        .iter()
        .map(|f| parse(f))
        .collect::<Result<Vec<_>>>()?;
    let req = UpdateFeaturesRequest::default()
        .with_timeout_ms(30_000)
        .with_validate_only(change.dry_run)
        .with_feature_updates(
            updates
                .iter()
                .map(|(name, level)| {
                    FeatureUpdateKey::default()
                        .with_feature(StrBytes::from_string(name.clone()))
                        .with_max_version_level(*level)
                        .with_upgrade_type(upgrade_type)
                })
                .collect(),
        );
    let mut w = Wire::open(conn)?;
    let resp = w.call(&req, 1)?;
    if resp.error_code != 0 {
        let why = resp
            .error_message
            .as_ref()
            .map_or_else(String::new, |m| format!(": {}", m.as_str()));
        bail!(
            "cannot update features: {}{why}",
            error_name(resp.error_code)
        );
    }
    let verb = if change.dry_run {
        "would be finalized"
    } else {
        "finalized"
    };
    if conn.json() {
        let done: Vec<_> = updates
            .iter()
            .map(|(n, l)| json!({"name": n, "level": l}))
            .collect();
        out!("{}", json!({"updated": done, "dry_run": change.dry_run}));
    } else {
        for (name, level) in &updates {
            out!("{name} {verb} at level {level}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_specs_parse() {
        assert_eq!(
            parse("transaction.version=2").ok(),
            Some(("transaction.version".to_string(), 2))
        );
        assert!(parse("transaction.version").is_err());
        assert!(parse("=2").is_err());
        assert!(parse("group.version=x").is_err());
    }
}
