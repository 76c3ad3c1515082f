//! Write planning: each write is decided against a snapshot of the state and turned
//! into the records that carry it out. Pure (no I/O), so the decisions are unit tested;
//! `node` appends the records and answers once it has read them back.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{RegistryError, Result};
use crate::model::{
    Compatibility, ConfigValue, IdWatermarkValue, Mode, ModeValue, Record, RecordKey, Reference,
    SchemaType, SchemaValue,
};
use crate::schema::{self, Parsed, RefSchema};
use crate::state::{State, Version, VersionSpec};

/// The body of register, look-up and compatibility requests.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRequest {
    pub schema: String,
    #[serde(default)]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Option<Vec<Reference>>,
    /// IMPORT mode only.
    #[serde(default)]
    pub id: Option<i32>,
    /// IMPORT mode only.
    #[serde(default)]
    pub version: Option<i32>,
}

impl SchemaRequest {
    pub fn kind(&self) -> Result<SchemaType> {
        match &self.schema_type {
            None => Ok(SchemaType::Avro),
            Some(t) => SchemaType::parse(t)
                .ok_or_else(|| RegistryError::InvalidSchema(format!("unknown schema type {t}"))),
        }
    }

    pub fn refs(&self) -> Vec<Reference> {
        self.references.clone().unwrap_or_default()
    }
}

/// What a write does: records to append, the answer, and what must hold once the
/// records are read back (a schema record can be refused on replay).
#[derive(Debug)]
pub struct Plan {
    pub records: Vec<Record>,
    pub response: Value,
    pub expect: Option<(String, i32, i32)>,
}

impl Plan {
    fn answer(response: Value) -> Plan {
        Plan {
            records: Vec::new(),
            response,
            expect: None,
        }
    }
}

/// Everything `refs` reaches, dependencies first, each under the name it is referenced
/// by; 42201 for a missing one. `deleted`: soft-deleted versions count (stored schemas
/// keep their references to them, as clients read them with `deleted=true`).
pub fn resolve_refs(
    state: &State,
    refs: &[Reference],
    deleted: bool,
    out: &mut Vec<RefSchema>,
) -> Result<()> {
    for r in refs {
        let spec = if r.version <= 0 {
            VersionSpec::Latest
        } else {
            VersionSpec::Number(r.version)
        };
        let (_, v) = state.version(&r.subject, spec, deleted).map_err(|_| {
            RegistryError::InvalidSchema(format!(
                "reference {} to subject {} version {} not found",
                r.name, r.subject, r.version
            ))
        })?;
        if out.len() > 1000 {
            return Err(RegistryError::InvalidSchema("references too deep".into()));
        }
        resolve_refs(state, &v.references, deleted, out)?;
        let found = RefSchema {
            name: r.name.clone(),
            text: v.schema.clone(),
        };
        if !out.contains(&found) {
            out.push(found);
        }
    }
    Ok(())
}

/// A request's schema type, parsed schema and resolved references.
pub fn parse_request(
    state: &State,
    req: &SchemaRequest,
) -> Result<(SchemaType, Parsed, Vec<RefSchema>)> {
    let kind = req.kind()?;
    let mut refs = Vec::new();
    resolve_refs(state, &req.refs(), false, &mut refs)?;
    let parsed = schema::parse(kind, &req.schema, &refs).map_err(RegistryError::InvalidSchema)?;
    Ok((kind, parsed, refs))
}

/// The resolved references of a stored version (empty if one is gone).
pub fn stored_refs(state: &State, v: &Version) -> Vec<RefSchema> {
    let mut refs = Vec::new();
    match resolve_refs(state, &v.references, true, &mut refs) {
        Ok(()) => refs,
        Err(_) => Vec::new(),
    }
}

fn parse_stored(state: &State, v: &Version) -> Option<Parsed> {
    let mut refs = Vec::new();
    resolve_refs(state, &v.references, true, &mut refs).ok()?;
    schema::parse(v.schema_type, &v.schema, &refs).ok()
}

/// Reasons `candidate` breaks `level` against `existing` (oldest first); empty if none.
pub fn incompatibilities(
    state: &State,
    level: Compatibility,
    candidate: &Parsed,
    existing: &[&Version],
) -> Vec<String> {
    if level == Compatibility::None {
        return Vec::new();
    }
    let against: Vec<&&Version> = if level.transitive() {
        existing.iter().collect()
    } else {
        existing.last().into_iter().collect()
    };
    let mut out = Vec::new();
    for old in against {
        let Some(old_parsed) = parse_stored(state, old) else {
            continue;
        };
        if level.backward() {
            for m in schema::can_read(&old_parsed, candidate) {
                out.push(format!(
                    "{{oldSchemaVersion: id {}, reason: BACKWARD: {m}}}",
                    old.id
                ));
            }
        }
        if level.forward() {
            for m in schema::can_read(candidate, &old_parsed) {
                out.push(format!(
                    "{{oldSchemaVersion: id {}, reason: FORWARD: {m}}}",
                    old.id
                ));
            }
        }
    }
    out
}

fn writable(state: &State, subject: &str) -> Result<Mode> {
    match state.effective_mode(subject) {
        Mode::Readonly => Err(RegistryError::ReadOnly(subject.to_string())),
        m => Ok(m),
    }
}

pub fn plan_register(
    state: &State,
    subject: &str,
    req: &SchemaRequest,
    normalize: bool,
) -> Result<Plan> {
    let mode = writable(state, subject)?;
    let (kind, parsed, resolved) = parse_request(state, req)?;
    let refs = req.refs();
    let text = if normalize {
        schema::normalize(kind, &req.schema, &parsed, !refs.is_empty())
    } else {
        req.schema.clone()
    };
    let identity = schema::identity(kind, &text, &resolved);
    let stored = state.all_versions(subject);
    let live: Vec<&Version> = stored
        .into_iter()
        .flatten()
        .map(|(_, v)| v)
        .filter(|v| !v.deleted)
        .collect();
    if let Some(v) = live.iter().find(|v| v.same_as(kind, &identity, &refs)) {
        return Ok(Plan::answer(json!({"id": v.id})));
    }
    let imported = mode == Mode::Import;
    if !imported {
        let level = state.effective_config(subject);
        let details = incompatibilities(state, level, &parsed, &live);
        if !details.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                details,
            });
        }
    }
    let existing = state.id_of(kind, &identity, &refs);
    let id = match (imported, req.id) {
        (true, Some(id)) => {
            if let Some(other) = state.by_id(id) {
                if !other.same_as(kind, &identity, &refs) {
                    return Err(RegistryError::IdInUse(id));
                }
            }
            id
        }
        _ => existing.unwrap_or_else(|| state.next_id()),
    };
    let next_version = stored
        .and_then(|vs| vs.keys().next_back().copied())
        .unwrap_or(0)
        .saturating_add(1);
    let version = match (imported, req.version) {
        (true, Some(v)) if v >= 1 => v,
        _ => next_version,
    };
    let value = SchemaValue {
        subject: subject.to_string(),
        version,
        id,
        schema_type: kind,
        schema: text,
        references: refs,
        deleted: false,
    };
    let key = RecordKey::Schema {
        subject: subject.to_string(),
        version,
    };
    Ok(Plan {
        records: vec![Record::put(key, &value)],
        response: json!({"id": id}),
        expect: Some((subject.to_string(), version, id)),
    })
}

fn rewrite(subject: &str, version: i32, v: &Version, deleted: bool) -> Record {
    Record::put(
        RecordKey::Schema {
            subject: subject.to_string(),
            version,
        },
        &SchemaValue {
            subject: subject.to_string(),
            version,
            id: v.id,
            schema_type: v.schema_type,
            schema: v.schema.clone(),
            references: v.references.clone(),
            deleted,
        },
    )
}

fn tombstone(subject: &str, version: i32) -> Record {
    Record::tombstone(RecordKey::Schema {
        subject: subject.to_string(),
        version,
    })
}

fn watermark(state: &State) -> Record {
    Record::put(
        RecordKey::IdWatermark,
        &IdWatermarkValue {
            max_id: state.max_id(),
        },
    )
}

pub fn plan_delete_subject(state: &State, subject: &str, permanent: bool) -> Result<Plan> {
    writable(state, subject)?;
    let all = state
        .all_versions(subject)
        .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
    let live: Vec<(i32, &Version)> = all
        .iter()
        .filter(|(_, v)| !v.deleted)
        .map(|(n, v)| (*n, v))
        .collect();
    for n in all.keys() {
        if state.is_referenced(subject, *n) {
            return Err(RegistryError::ReferenceExists(subject.to_string(), *n));
        }
    }
    if permanent {
        if !live.is_empty() {
            return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
        }
        let mut records = vec![watermark(state)];
        records.extend(all.keys().map(|n| tombstone(subject, *n)));
        let versions: Vec<i32> = all.keys().copied().collect();
        return Ok(Plan {
            records,
            response: json!(versions),
            expect: None,
        });
    }
    if live.is_empty() {
        return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
    }
    let records = live
        .iter()
        .map(|(n, v)| rewrite(subject, *n, v, true))
        .collect();
    let versions: Vec<i32> = live.iter().map(|(n, _)| *n).collect();
    Ok(Plan {
        records,
        response: json!(versions),
        expect: None,
    })
}

pub fn plan_delete_version(
    state: &State,
    subject: &str,
    spec: VersionSpec,
    permanent: bool,
) -> Result<Plan> {
    writable(state, subject)?;
    if state.all_versions(subject).is_none() {
        return Err(RegistryError::SubjectNotFound(subject.to_string()));
    }
    // A numbered version is found even when soft-deleted (to say so: 40406); `latest`
    // is the latest live one, except for a permanent delete, which targets soft-deleted
    // versions.
    let include_deleted = permanent || matches!(spec, VersionSpec::Number(_));
    let (n, v) = state.version(subject, spec, include_deleted)?;
    if state.is_referenced(subject, n) {
        return Err(RegistryError::ReferenceExists(subject.to_string(), n));
    }
    let records = match (permanent, v.deleted) {
        (false, true) => return Err(RegistryError::VersionSoftDeleted(subject.to_string(), n)),
        (false, false) => vec![rewrite(subject, n, v, true)],
        (true, false) => return Err(RegistryError::VersionNotSoftDeleted(subject.to_string(), n)),
        (true, true) => vec![watermark(state), tombstone(subject, n)],
    };
    Ok(Plan {
        records,
        response: json!(n),
        expect: None,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigRequest {
    #[serde(default)]
    pub compatibility: Option<String>,
    #[serde(default)]
    pub compatibility_level: Option<String>,
}

pub fn plan_set_config(subject: Option<&str>, req: &ConfigRequest) -> Result<Plan> {
    let level: Compatibility = req
        .compatibility
        .as_deref()
        .or(req.compatibility_level.as_deref())
        .ok_or(RegistryError::InvalidCompatibility)?
        .parse()
        .map_err(|()| RegistryError::InvalidCompatibility)?;
    let key = RecordKey::Config {
        subject: subject.map(str::to_string),
    };
    Ok(Plan {
        records: vec![Record::put(
            key,
            &ConfigValue {
                compatibility_level: level,
            },
        )],
        response: json!({"compatibility": level.name()}),
        expect: None,
    })
}

pub fn plan_delete_config(state: &State, subject: Option<&str>) -> Result<Plan> {
    let previous = match subject {
        Some(s) => state
            .config(Some(s))
            .ok_or_else(|| RegistryError::SubjectNotFound(s.to_string()))?,
        None => state.config(None).unwrap_or_default(),
    };
    let key = RecordKey::Config {
        subject: subject.map(str::to_string),
    };
    Ok(Plan {
        records: vec![Record::tombstone(key)],
        response: json!({"compatibilityLevel": previous.name()}),
        expect: None,
    })
}

#[derive(Debug, Deserialize)]
pub struct ModeRequest {
    pub mode: String,
}

pub fn plan_set_mode(subject: Option<&str>, req: &ModeRequest) -> Result<Plan> {
    let mode: Mode = req.mode.parse().map_err(|()| RegistryError::InvalidMode)?;
    let key = RecordKey::Mode {
        subject: subject.map(str::to_string),
    };
    Ok(Plan {
        records: vec![Record::put(key, &ModeValue { mode })],
        response: json!({"mode": mode.name()}),
        expect: None,
    })
}

pub fn plan_delete_mode(state: &State, subject: &str) -> Result<Plan> {
    let previous = state
        .mode(Some(subject))
        .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
    Ok(Plan {
        records: vec![Record::tombstone(RecordKey::Mode {
            subject: Some(subject.to_string()),
        })],
        response: json!({"mode": previous.name()}),
        expect: None,
    })
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
