//! The registry's in-memory state: a pure function of the `_schemas` records read so
//! far, in log order. Every process replays the same log, so every process holds the
//! same state once it has read to the same offset.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{RegistryError, Result};
use crate::model::{
    Compatibility, ConfigValue, IdWatermarkValue, Mode, ModeValue, PrimaryValue, RecordKey,
    Reference, SchemaType, SchemaValue,
};
use crate::schema;

/// One version of a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub id: i32,
    pub schema_type: SchemaType,
    pub schema: String,
    pub references: Vec<Reference>,
    pub deleted: bool,
    /// `schema::identity` of the text, computed once at apply time.
    pub identity: String,
}

impl Version {
    /// Same schema: same format, same identity, same references.
    pub fn same_as(&self, kind: SchemaType, identity: &str, refs: &[Reference]) -> bool {
        self.schema_type == kind && self.identity == identity && self.references == refs
    }
}

/// Which version a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(i32),
}

impl VersionSpec {
    pub fn parse(s: &str) -> Result<VersionSpec> {
        if s == "latest" || s == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(VersionSpec::Number(n)),
            _ => Err(RegistryError::InvalidVersion(s.to_string())),
        }
    }
}

#[derive(Debug, Default)]
pub struct State {
    subjects: BTreeMap<String, BTreeMap<i32, Version>>,
    ids: BTreeMap<i32, BTreeSet<(String, i32)>>,
    configs: BTreeMap<Option<String>, Compatibility>,
    modes: BTreeMap<Option<String>, Mode>,
    max_id: i32,
    /// The URL of the process that last announced itself primary.
    pub primary: Option<String>,
}

impl State {
    /// Applies one record. A record that does not decode, or a schema record that would
    /// give an id already in use to a different schema (two processes that both believed
    /// they were primary), is refused: every replica refuses it alike, since they all
    /// apply the same records in the same order.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> std::result::Result<(), String> {
        let key: RecordKey = serde_json::from_slice(key).map_err(|e| format!("key: {e}"))?;
        match key {
            RecordKey::Schema { subject, version } => match value {
                None => {
                    let removed = self
                        .subjects
                        .get_mut(&subject)
                        .and_then(|vs| vs.remove(&version));
                    if let Some(v) = removed {
                        if let Some(users) = self.ids.get_mut(&v.id) {
                            users.remove(&(subject.clone(), version));
                            if users.is_empty() {
                                self.ids.remove(&v.id);
                            }
                        }
                    }
                    if self.subjects.get(&subject).is_some_and(BTreeMap::is_empty) {
                        self.subjects.remove(&subject);
                    }
                }
                Some(value) => {
                    let v: SchemaValue =
                        serde_json::from_slice(value).map_err(|e| format!("schema: {e}"))?;
                    // References resolve against what was applied before: a schema's
                    // references are registered before it.
                    let mut refs = Vec::new();
                    let resolved =
                        crate::service::resolve_refs(self, &v.references, true, &mut refs);
                    if resolved.is_err() {
                        refs.clear();
                    }
                    let identity = schema::identity(v.schema_type, &v.schema, &refs);
                    if let Some(other) = self.by_id(v.id) {
                        if !other.same_as(v.schema_type, &identity, &v.references) {
                            return Err(format!("id {} already names another schema", v.id));
                        }
                    }
                    self.max_id = self.max_id.max(v.id);
                    self.ids
                        .entry(v.id)
                        .or_default()
                        .insert((subject.clone(), version));
                    let entry = Version {
                        id: v.id,
                        schema_type: v.schema_type,
                        schema: v.schema,
                        references: v.references,
                        deleted: v.deleted,
                        identity,
                    };
                    let old = self
                        .subjects
                        .entry(subject.clone())
                        .or_default()
                        .insert(version, entry);
                    if let Some(old) = old.filter(|o| o.id != v.id) {
                        if let Some(users) = self.ids.get_mut(&old.id) {
                            users.remove(&(subject, version));
                        }
                    }
                }
            },
            RecordKey::Config { subject } => match value {
                None => {
                    self.configs.remove(&subject);
                }
                Some(value) => {
                    let v: ConfigValue =
                        serde_json::from_slice(value).map_err(|e| format!("config: {e}"))?;
                    self.configs.insert(subject, v.compatibility_level);
                }
            },
            RecordKey::Mode { subject } => match value {
                None => {
                    self.modes.remove(&subject);
                }
                Some(value) => {
                    let v: ModeValue =
                        serde_json::from_slice(value).map_err(|e| format!("mode: {e}"))?;
                    self.modes.insert(subject, v.mode);
                }
            },
            RecordKey::Primary => {
                self.primary = match value {
                    Some(value) => Some(
                        serde_json::from_slice::<PrimaryValue>(value)
                            .map_err(|e| format!("primary: {e}"))?
                            .url,
                    ),
                    None => None,
                };
            }
            RecordKey::IdWatermark => {
                if let Some(value) = value {
                    let v: IdWatermarkValue =
                        serde_json::from_slice(value).map_err(|e| format!("watermark: {e}"))?;
                    self.max_id = self.max_id.max(v.max_id);
                }
            }
        }
        Ok(())
    }

    /// The id the next new schema gets: one past the highest ever seen.
    pub fn next_id(&self) -> i32 {
        self.max_id.saturating_add(1)
    }

    pub fn max_id(&self) -> i32 {
        self.max_id
    }

    /// Subjects with at least one live version (or any version, with `deleted`).
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, vs)| vs.values().any(|v| deleted || !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// All stored versions of a subject, soft-deleted ones included.
    pub fn all_versions(&self, subject: &str) -> Option<&BTreeMap<i32, Version>> {
        self.subjects.get(subject).filter(|vs| !vs.is_empty())
    }

    /// The versions of a subject; 40401 when it has none visible.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<(i32, &Version)>> {
        let out: Vec<_> = self
            .subjects
            .get(subject)
            .into_iter()
            .flatten()
            .filter(|(_, v)| deleted || !v.deleted)
            .map(|(n, v)| (*n, v))
            .collect();
        if out.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(out)
    }

    /// One version: 40401 if the subject has none visible, 40402 if not this one.
    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<(i32, &Version)> {
        let versions = self.versions(subject, deleted)?;
        let found = match spec {
            VersionSpec::Latest => versions.last().copied(),
            VersionSpec::Number(n) => versions.into_iter().find(|(v, _)| *v == n),
        };
        found.ok_or_else(|| {
            RegistryError::VersionNotFound(match spec {
                VersionSpec::Latest => "latest".to_string(),
                VersionSpec::Number(n) => n.to_string(),
            })
        })
    }

    /// The schema an id names, from any subject version that still holds it.
    pub fn by_id(&self, id: i32) -> Option<&Version> {
        let users = self.ids.get(&id)?;
        users
            .iter()
            .filter_map(|(s, v)| self.subjects.get(s)?.get(v))
            .min_by_key(|v| v.deleted)
    }

    /// The (subject, version) pairs that use an id.
    pub fn id_users(&self, id: i32, deleted: bool) -> Vec<(String, i32)> {
        self.ids
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|(s, v)| {
                deleted
                    || self
                        .subjects
                        .get(s)
                        .and_then(|vs| vs.get(v))
                        .is_some_and(|x| !x.deleted)
            })
            .cloned()
            .collect()
    }

    /// An id already given to this schema under any subject.
    pub fn id_of(&self, kind: SchemaType, identity: &str, refs: &[Reference]) -> Option<i32> {
        self.subjects
            .values()
            .flat_map(BTreeMap::values)
            .find(|v| v.same_as(kind, identity, refs))
            .map(|v| v.id)
    }

    /// Whether a live schema references this subject version.
    pub fn is_referenced(&self, subject: &str, version: i32) -> bool {
        self.subjects.values().flat_map(BTreeMap::values).any(|v| {
            !v.deleted
                && v.references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
        })
    }

    pub fn config(&self, subject: Option<&str>) -> Option<Compatibility> {
        self.configs.get(&subject.map(str::to_string)).copied()
    }

    /// The subject's level, else the global one, else BACKWARD.
    pub fn effective_config(&self, subject: &str) -> Compatibility {
        self.config(Some(subject))
            .or_else(|| self.config(None))
            .unwrap_or_default()
    }

    pub fn mode(&self, subject: Option<&str>) -> Option<Mode> {
        self.modes.get(&subject.map(str::to_string)).copied()
    }

    pub fn effective_mode(&self, subject: &str) -> Mode {
        self.mode(Some(subject))
            .or_else(|| self.mode(None))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Record;

    fn schema(subject: &str, version: i32, id: i32, text: &str, deleted: bool) -> Record {
        Record::put(
            RecordKey::Schema {
                subject: subject.into(),
                version,
            },
            &SchemaValue {
                subject: subject.into(),
                version,
                id,
                schema_type: SchemaType::Avro,
                schema: text.into(),
                references: vec![],
                deleted,
            },
        )
    }

    fn replay(records: &[Record]) -> State {
        let mut st = State::default();
        for r in records {
            let _ = st.apply(&r.key.to_bytes(), r.value.as_deref());
        }
        st
    }

    #[test]
    fn replay_rebuilds_subjects_ids_and_next_id() {
        let st = replay(&[
            schema("a", 1, 1, "\"string\"", false),
            schema("a", 2, 2, "\"int\"", false),
            schema("b", 1, 1, "\"string\"", false),
        ]);
        assert_eq!(st.subjects(false), ["a", "b"]);
        assert_eq!(st.next_id(), 3);
        assert_eq!(st.id_users(1, false).len(), 2);
        assert_eq!(st.version("a", VersionSpec::Latest, false).unwrap().0, 2);
        assert_eq!(
            st.id_of(
                SchemaType::Avro,
                &schema::identity(SchemaType::Avro, " \"int\" ", &[]),
                &[]
            ),
            Some(2)
        );
    }

    #[test]
    fn ids_are_never_reused_after_permanent_delete() {
        let mut records = vec![
            schema("a", 1, 1, "\"string\"", false),
            schema("a", 2, 2, "\"int\"", false),
            schema("a", 2, 2, "\"int\"", true),
            Record::put(RecordKey::IdWatermark, &IdWatermarkValue { max_id: 2 }),
            Record::tombstone(RecordKey::Schema {
                subject: "a".into(),
                version: 2,
            }),
        ];
        let st = replay(&records);
        assert_eq!(st.next_id(), 3);
        assert!(st.by_id(2).is_none());
        assert!(matches!(
            st.version("a", VersionSpec::Number(2), true),
            Err(RegistryError::VersionNotFound(_))
        ));
        // Compaction keeps only the last record per key: the watermark still holds.
        records.retain(|r| !matches!(r.key, RecordKey::Schema { version: 2, .. }));
        assert_eq!(replay(&records).next_id(), 3);
    }

    #[test]
    fn a_conflicting_id_is_refused_by_every_replica() {
        let st = replay(&[
            schema("a", 1, 1, "\"string\"", false),
            schema("b", 1, 1, "\"int\"", false),
        ]);
        assert_eq!(st.subjects(false), ["a"]);
        assert_eq!(st.by_id(1).map(|v| v.schema.as_str()), Some("\"string\""));
    }

    #[test]
    fn soft_deleted_versions_are_hidden_unless_asked() {
        let st = replay(&[
            schema("a", 1, 1, "\"string\"", false),
            schema("a", 1, 1, "\"string\"", true),
        ]);
        assert!(st.subjects(false).is_empty());
        assert_eq!(st.subjects(true), ["a"]);
        assert!(matches!(
            st.versions("a", false),
            Err(RegistryError::SubjectNotFound(_))
        ));
        assert!(st.by_id(1).is_some());
        assert!(st.id_users(1, false).is_empty());
    }

    #[test]
    fn configs_and_modes_fall_back_to_global_then_default() {
        let mut st = State::default();
        assert_eq!(st.effective_config("a"), Compatibility::Backward);
        let put = |st: &mut State, r: Record| st.apply(&r.key.to_bytes(), r.value.as_deref());
        put(
            &mut st,
            Record::put(
                RecordKey::Config { subject: None },
                &ConfigValue {
                    compatibility_level: Compatibility::Full,
                },
            ),
        )
        .unwrap();
        assert_eq!(st.effective_config("a"), Compatibility::Full);
        put(
            &mut st,
            Record::put(
                RecordKey::Config {
                    subject: Some("a".into()),
                },
                &ConfigValue {
                    compatibility_level: Compatibility::None,
                },
            ),
        )
        .unwrap();
        assert_eq!(st.effective_config("a"), Compatibility::None);
        assert_eq!(st.effective_config("b"), Compatibility::Full);
        put(
            &mut st,
            Record::put(
                RecordKey::Mode { subject: None },
                &ModeValue {
                    mode: Mode::Readonly,
                },
            ),
        )
        .unwrap();
        assert_eq!(st.effective_mode("a"), Mode::Readonly);
        assert!(VersionSpec::parse("0").is_err());
        assert!(VersionSpec::parse("abc").is_err());
        assert_eq!(VersionSpec::parse("-1").unwrap(), VersionSpec::Latest);
    }
}
