//! Feature levels (KIP-584): the ranges this broker supports, the levels a new cluster
//! starts with, and the controller's checks for UpdateFeatures.
//!
//! Finalized levels live in the metadata log as `FeatureLevelRecord`s (level 0 removes
//! a feature), so they survive restarts and snapshots like any other metadata. Levels
//! use Kafka 4.2's numbering: `metadata.version` 29 is 4.2-IV1, `transaction.version`
//! 2 is the epoch bump per transaction (KIP-890 part 2), `group.version` 1 is the
//! consumer rebalance protocol (KIP-848), `eligible.leader.replicas.version` 1 tracks
//! eligible leader replicas (KIP-966).
//!
//! # Bootstrap
//! - A new cluster (an empty metadata log) starts where `kafka-storage format` puts a
//!   Kafka 4.2 cluster: `metadata.version` 29, `transaction.version` 2,
//!   `group.version` 1, `eligible.leader.replicas.version` 1.
//! - A data directory written before features existed (records, but no
//!   `metadata.version`) keeps what it did: `metadata.version` 29 and `group.version`
//!   1 (KIP-848 groups were already served), `transaction.version` unset (0), so
//!   transactions keep the v1 protocol until an operator upgrades it, as a Kafka
//!   cluster upgraded from 3.x does.

use crate::controller::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

pub const METADATA_VERSION: &str = "metadata.version";
pub const TRANSACTION_VERSION: &str = "transaction.version";
pub const GROUP_VERSION: &str = "group.version";

/// `metadata.version` 7 is 3.3-IV3, the lowest level Kafka 4.x accepts.
pub const METADATA_VERSION_MIN: i16 = 7;
/// `metadata.version` 29 is 4.2-IV1, Kafka 4.2's latest production level.
pub const METADATA_VERSION_LATEST: i16 = 29;
/// The `transaction.version` level from which EndTxn v5, Produce v12 and
/// TxnOffsetCommit v5 follow KIP-890 part 2.
pub const TRANSACTION_VERSION_2: i16 = 2;

/// A feature this broker knows: its supported range and its bootstrap levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSpec {
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    /// The level a new cluster is formatted with.
    pub new_cluster: i16,
    /// The level a data directory from before features comes up with.
    pub existing_dir: i16,
}

/// Every feature this broker supports, as ApiVersions reports them.
pub const SUPPORTED: &[FeatureSpec] = &[
    FeatureSpec {
        name: METADATA_VERSION,
        min: METADATA_VERSION_MIN,
        max: METADATA_VERSION_LATEST,
        new_cluster: METADATA_VERSION_LATEST,
        existing_dir: METADATA_VERSION_LATEST,
    },
    FeatureSpec {
        name: TRANSACTION_VERSION,
        min: 0,
        max: 2,
        new_cluster: 2,
        existing_dir: 0,
    },
    FeatureSpec {
        name: GROUP_VERSION,
        min: 0,
        max: 1,
        new_cluster: 1,
        existing_dir: 1,
    },
    // KIP-966 (see `crate::elr`): on for a new cluster, as from Kafka 4.1; a directory
    // from before it keeps the old ISR rules until an operator upgrades.
    FeatureSpec {
        name: crate::elr::ELR_VERSION,
        min: 0,
        max: 1,
        new_cluster: 1,
        existing_dir: 0,
    },
];

pub fn spec(name: &str) -> Option<&'static FeatureSpec> {
    SUPPORTED.iter().find(|s| s.name == name)
}

/// The records that finalize the bootstrap levels, or none when `metadata.version` is
/// already finalized. `new_cluster`: the metadata log was empty.
pub fn bootstrap_records(image: &MetadataImage, new_cluster: bool) -> Vec<MetadataRecord> {
    if image.features.contains_key(METADATA_VERSION) {
        return Vec::new();
    }
    SUPPORTED
        .iter()
        .map(|s| {
            let level = if new_cluster {
                s.new_cluster
            } else {
                s.existing_dir
            };
            (s.name, level)
        })
        .filter(|(_, level)| *level > 0)
        .map(|(name, level)| MetadataRecord::FeatureLevelRecord {
            name: name.to_string(),
            feature_level: level,
        })
        .collect()
}

/// How an UpdateFeatures entry may move a level (Kafka's `UpgradeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
}

impl UpgradeType {
    /// The wire code (v1+ `UpgradeType`); `None` for an unknown code.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(UpgradeType::Upgrade),
            2 => Some(UpgradeType::SafeDowngrade),
            3 => Some(UpgradeType::UnsafeDowngrade),
            _ => None,
        }
    }
}

/// One requested change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeatureUpdate {
    pub name: String,
    pub level: i16,
    /// `None`: an upgrade type the broker does not know.
    pub upgrade: Option<UpgradeType>,
}

fn invalid(name: &str, level: i16, why: &str) -> ControllerError {
    ControllerError::InvalidUpdateVersion(format!(
        "Invalid update version {level} for feature {name}. {why}"
    ))
}

/// Checks one update against the current level.
fn check(image: &MetadataImage, u: &FeatureUpdate) -> Result<(), ControllerError> {
    let Some(upgrade) = u.upgrade else {
        return Err(invalid(&u.name, u.level, "Unknown upgrade type."));
    };
    if u.level < 0 {
        return Err(invalid(
            &u.name,
            u.level,
            "A feature level cannot be negative.",
        ));
    }
    let Some(spec) = spec(&u.name) else {
        return Err(invalid(
            &u.name,
            u.level,
            "This broker does not support the feature.",
        ));
    };
    // Level 0 removes the feature, which every feature but metadata.version allows.
    let in_range =
        (spec.min..=spec.max).contains(&u.level) || (u.level == 0 && spec.name != METADATA_VERSION);
    if !in_range {
        return Err(invalid(
            &u.name,
            u.level,
            &format!("This broker supports levels {} to {}.", spec.min, spec.max),
        ));
    }
    let current = image.feature_level(&u.name);
    if u.level < current {
        if upgrade == UpgradeType::Upgrade {
            return Err(invalid(
                &u.name,
                u.level,
                "A downgrade needs the upgrade type safe or unsafe downgrade.",
            ));
        }
        if spec.name == METADATA_VERSION {
            let why = match upgrade {
                UpgradeType::UnsafeDowngrade => {
                    "Unsafe downgrades of metadata.version are not supported."
                }
                _ => "Refusing the downgrade: it could lose metadata.",
            };
            return Err(invalid(&u.name, u.level, why));
        }
    } else if u.level > current && upgrade != UpgradeType::Upgrade {
        return Err(invalid(
            &u.name,
            u.level,
            "A downgrade cannot raise the level.",
        ));
    }
    Ok(())
}

/// UpdateFeatures: all updates are checked, then applied together (one commit), or
/// none is. An update to the current level is accepted and writes nothing.
pub fn update_features(
    image: &MetadataImage,
    updates: &[FeatureUpdate],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let mut out = Vec::new();
    for (i, u) in updates.iter().enumerate() {
        if updates[..i].iter().any(|o| o.name == u.name) {
            return Err(ControllerError::InvalidRequest(format!(
                "The request names feature {} more than once.",
                u.name
            )));
        }
        check(image, u)?;
        if image.feature_level(&u.name) != u.level {
            out.push(MetadataRecord::FeatureLevelRecord {
                name: u.name.clone(),
                feature_level: u.level,
            });
            if u.name == crate::elr::ELR_VERSION && u.level == 0 {
                out.extend(crate::elr::disable_records(image));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn image_with(records: Vec<MetadataRecord>) -> MetadataImage {
        let mut image = MetadataImage::empty();
        for r in &records {
            image.apply(r);
        }
        image
    }

    fn up(name: &str, level: i16, upgrade: UpgradeType) -> FeatureUpdate {
        FeatureUpdate {
            name: name.into(),
            level,
            upgrade: Some(upgrade),
        }
    }

    #[test]
    fn bootstrap_levels_for_new_and_existing_directories() {
        let new = image_with(bootstrap_records(&MetadataImage::empty(), true));
        assert_eq!(new.feature_level(METADATA_VERSION), 29);
        assert_eq!(new.feature_level(TRANSACTION_VERSION), 2);
        assert_eq!(new.feature_level(GROUP_VERSION), 1);
        assert_eq!(new.feature_level(crate::elr::ELR_VERSION), 1);
        assert!(bootstrap_records(&new, true).is_empty(), "only once");
        let old = image_with(bootstrap_records(&MetadataImage::empty(), false));
        assert_eq!(old.feature_level(TRANSACTION_VERSION), 0);
        assert!(!old.features.contains_key(TRANSACTION_VERSION));
        assert_eq!(old.feature_level(GROUP_VERSION), 1);
        assert_eq!(old.feature_level(crate::elr::ELR_VERSION), 0);
    }

    #[test]
    fn upgrades_downgrades_and_refusals() {
        let img = image_with(bootstrap_records(&MetadataImage::empty(), false));
        let recs =
            update_features(&img, &[up(TRANSACTION_VERSION, 2, UpgradeType::Upgrade)]).unwrap();
        let img2 = image_with(
            bootstrap_records(&MetadataImage::empty(), false)
                .into_iter()
                .chain(recs)
                .collect(),
        );
        assert_eq!(img2.feature_level(TRANSACTION_VERSION), 2);
        // Same level: nothing to write.
        assert!(
            update_features(&img2, &[up(TRANSACTION_VERSION, 2, UpgradeType::Upgrade)])
                .unwrap()
                .is_empty()
        );
        let refused = |u: FeatureUpdate| match update_features(&img2, &[u]) {
            Err(ControllerError::InvalidUpdateVersion(m)) => m,
            other => panic!("expected INVALID_UPDATE_VERSION, got {other:?}"),
        };
        assert!(refused(up(TRANSACTION_VERSION, 1, UpgradeType::Upgrade)).contains("downgrade"));
        assert!(refused(up(TRANSACTION_VERSION, 3, UpgradeType::Upgrade)).contains("0 to 2"));
        assert!(refused(up("no.such.feature", 1, UpgradeType::Upgrade)).contains("support"));
        assert!(refused(up(METADATA_VERSION, 28, UpgradeType::SafeDowngrade)).contains("lose"));
        assert!(refused(up(METADATA_VERSION, 28, UpgradeType::UnsafeDowngrade)).contains("Unsafe"));
        assert!(refused(up(METADATA_VERSION, 0, UpgradeType::UnsafeDowngrade)).contains("7 to 29"));
        assert!(
            update_features(&img2, &[up(GROUP_VERSION, 1, UpgradeType::SafeDowngrade)])
                .unwrap()
                .is_empty()
        );
        assert!(refused(FeatureUpdate {
            name: GROUP_VERSION.into(),
            level: 1,
            upgrade: None
        })
        .contains("Unknown upgrade type"));
        let down = update_features(
            &img2,
            &[up(TRANSACTION_VERSION, 0, UpgradeType::SafeDowngrade)],
        )
        .unwrap();
        assert_eq!(
            down,
            vec![MetadataRecord::FeatureLevelRecord {
                name: TRANSACTION_VERSION.into(),
                feature_level: 0
            }]
        );
        assert!(matches!(
            update_features(
                &img2,
                &[
                    up(GROUP_VERSION, 0, UpgradeType::SafeDowngrade),
                    up(GROUP_VERSION, 1, UpgradeType::Upgrade)
                ]
            ),
            Err(ControllerError::InvalidRequest(_))
        ));
        // All or nothing: one bad update refuses the whole request.
        assert!(update_features(
            &img2,
            &[
                up(GROUP_VERSION, 0, UpgradeType::SafeDowngrade),
                up(TRANSACTION_VERSION, 9, UpgradeType::Upgrade)
            ]
        )
        .is_err());
    }
}
