//! Read endpoints: answered from this process's state.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{body, flag, ok, Ctx, Params};
use crate::error::{RegistryError, Result};
use crate::model::{Mode, SchemaType};
use crate::schema;
use crate::service::{self, SchemaRequest};
use crate::state::{Version, VersionSpec};

pub(super) async fn root() -> Response {
    ok(json!({}))
}

/// Gregor's own: who this process is, and which process it takes for the primary.
pub(super) async fn primary(State(node): State<Ctx>) -> Response {
    ok(json!({
        "url": node.url,
        "primary": node.primary_url(),
        "is_primary": node.is_primary(),
    }))
}

pub(super) async fn schema_types() -> Response {
    ok(json!(SchemaType::ALL.map(SchemaType::name)))
}

/// The schema text in the form `?format=` asks for (`serialized`: Protobuf as a base64
/// descriptor; anything else: as stored).
fn schema_text(st: &crate::state::State, v: &Version, q: &Params) -> String {
    match q.get("format").map(String::as_str) {
        Some("serialized") => {
            schema::serialized(v.schema_type, &v.schema, &service::stored_refs(st, v))
        }
        _ => v.schema.clone(),
    }
}

/// A schema's fields as Confluent shows them: `schemaType` only when not Avro,
/// `references` only when there are some.
fn schema_fields(text: String, v: &Version, out: &mut Map<String, Value>) {
    out.insert("schema".into(), json!(text));
    if v.schema_type != SchemaType::Avro {
        out.insert("schemaType".into(), json!(v.schema_type.name()));
    }
    if !v.references.is_empty() {
        out.insert("references".into(), json!(v.references));
    }
}

fn version_json(subject: &str, n: i32, v: &Version, text: String) -> Value {
    let mut m = Map::new();
    m.insert("subject".into(), json!(subject));
    m.insert("version".into(), json!(n));
    m.insert("id".into(), json!(v.id));
    schema_fields(text, v, &mut m);
    Value::Object(m)
}

fn parse_id(id: &str) -> Result<i32> {
    id.parse()
        .map_err(|_| RegistryError::SchemaNotFound(id.to_string()))
}

pub(super) async fn schema_by_id(
    State(node): State<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let st = node.state();
    let v = st
        .by_id(parse_id(&id)?)
        .ok_or(RegistryError::SchemaNotFound(id))?;
    let mut m = Map::new();
    schema_fields(schema_text(&st, v, &q), v, &mut m);
    Ok(ok(Value::Object(m)))
}

pub(super) async fn raw_schema_by_id(
    State(node): State<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let st = node.state();
    let v = st
        .by_id(parse_id(&id)?)
        .ok_or(RegistryError::SchemaNotFound(id))?;
    Ok(super::json_response(
        axum::http::StatusCode::OK,
        schema_text(&st, v, &q),
    ))
}

pub(super) async fn id_versions(
    State(node): State<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let st = node.state();
    let n = parse_id(&id)?;
    st.by_id(n).ok_or(RegistryError::SchemaNotFound(id))?;
    let users: Vec<Value> = st
        .id_users(n, flag(&q, "deleted"))
        .into_iter()
        .map(|(s, v)| json!({"subject": s, "version": v}))
        .collect();
    Ok(ok(json!(users)))
}

pub(super) async fn id_subjects(
    State(node): State<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let st = node.state();
    let n = parse_id(&id)?;
    st.by_id(n).ok_or(RegistryError::SchemaNotFound(id))?;
    let mut subjects: Vec<String> = st
        .id_users(n, flag(&q, "deleted"))
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    subjects.dedup();
    Ok(ok(json!(subjects)))
}

pub(super) async fn subjects(State(node): State<Ctx>, Query(q): Query<Params>) -> Response {
    let prefix = q.get("subjectPrefix").cloned().unwrap_or_default();
    let subjects: Vec<String> = node
        .state()
        .subjects(flag(&q, "deleted"))
        .into_iter()
        .filter(|s| s.starts_with(&prefix))
        .collect();
    ok(json!(subjects))
}

pub(super) async fn versions(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let st = node.state();
    let versions: Vec<i32> = st
        .versions(&subject, flag(&q, "deleted"))?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    Ok(ok(json!(versions)))
}

pub(super) async fn version(
    State(node): State<Ctx>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let spec = VersionSpec::parse(&version)?;
    let st = node.state();
    let (n, v) = st.version(&subject, spec, flag(&q, "deleted"))?;
    Ok(ok(version_json(&subject, n, v, schema_text(&st, v, &q))))
}

pub(super) async fn raw_version(
    State(node): State<Ctx>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let spec = VersionSpec::parse(&version)?;
    let st = node.state();
    let (_, v) = st.version(&subject, spec, flag(&q, "deleted"))?;
    Ok(super::json_response(
        axum::http::StatusCode::OK,
        schema_text(&st, v, &q),
    ))
}

pub(super) async fn referenced_by(
    State(node): State<Ctx>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Response> {
    let spec = VersionSpec::parse(&version)?;
    let st = node.state();
    let (n, _) = st.version(&subject, spec, false)?;
    let mut ids: Vec<i32> = st
        .subjects(false)
        .iter()
        .flat_map(|s| st.versions(s, false).unwrap_or_default())
        .filter(|(_, v)| {
            v.references
                .iter()
                .any(|r| r.subject == subject && r.version == n)
        })
        .map(|(_, v)| v.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ok(json!(ids)))
}

/// `POST /subjects/{s}`: is this schema registered under the subject, and as what.
pub(super) async fn lookup(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
    bytes: Bytes,
) -> Result<Response> {
    let req: SchemaRequest = body(&bytes)?;
    let st = node.state();
    let deleted = flag(&q, "deleted");
    let versions = st.versions(&subject, deleted)?;
    let (kind, parsed, resolved) = service::parse_request(&st, &req)?;
    let refs = req.refs();
    let identity = schema::identity(kind, &req.schema, &resolved);
    let normalized = schema::identity(
        kind,
        &schema::normalize(kind, &req.schema, &parsed, !refs.is_empty()),
        &resolved,
    );
    let found = versions.iter().rev().find(|(_, v)| {
        v.same_as(kind, &identity, &refs)
            || (flag(&q, "normalize") && v.same_as(kind, &normalized, &refs))
    });
    let (n, v) = found.ok_or_else(|| RegistryError::SchemaNotFound(String::new()))?;
    Ok(ok(version_json(&subject, *n, v, schema_text(&st, v, &q))))
}

fn compat_answer(messages: Vec<String>, verbose: bool) -> Response {
    let mut m = Map::new();
    m.insert("is_compatible".into(), json!(messages.is_empty()));
    if verbose {
        m.insert("messages".into(), json!(messages));
    }
    ok(Value::Object(m))
}

/// `POST /compatibility/subjects/{s}/versions/{v}`: against one version, or with
/// `latest` as registration would check (every live version for transitive levels).
pub(super) async fn compatibility(
    State(node): State<Ctx>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<Params>,
    bytes: Bytes,
) -> Result<Response> {
    let spec = VersionSpec::parse(&version)?;
    check(&node, &subject, Some(spec), &q, &bytes)
}

/// `POST /compatibility/subjects/{s}/versions`: as registration would check.
pub(super) async fn compatibility_all(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
    bytes: Bytes,
) -> Result<Response> {
    check(&node, &subject, None, &q, &bytes)
}

fn check(
    node: &Ctx,
    subject: &str,
    spec: Option<VersionSpec>,
    q: &Params,
    bytes: &Bytes,
) -> Result<Response> {
    let req: SchemaRequest = body(bytes)?;
    let st = node.state();
    let (_, parsed, _) = service::parse_request(&st, &req)?;
    let level = st.effective_config(subject);
    let verbose = flag(q, "verbose");
    let messages = match spec {
        Some(VersionSpec::Number(n)) => {
            let (_, v) = st.version(subject, VersionSpec::Number(n), false)?;
            // One version named: the level's directions, against it alone.
            service::incompatibilities(&st, non_transitive(level), &parsed, &[v])
        }
        // `latest` or no version: what registering would check; nothing to check
        // against when the subject has no live version.
        _ => {
            let live: Vec<&Version> = st
                .versions(subject, false)
                .map(|vs| vs.into_iter().map(|(_, v)| v).collect())
                .unwrap_or_default();
            service::incompatibilities(&st, level, &parsed, &live)
        }
    };
    Ok(compat_answer(messages, verbose))
}

fn non_transitive(level: crate::model::Compatibility) -> crate::model::Compatibility {
    use crate::model::Compatibility as C;
    match level {
        C::BackwardTransitive => C::Backward,
        C::ForwardTransitive => C::Forward,
        C::FullTransitive => C::Full,
        other => other,
    }
}

pub(super) async fn global_config(State(node): State<Ctx>) -> Response {
    let level = node.state().config(None).unwrap_or_default();
    ok(json!({"compatibilityLevel": level.name()}))
}

pub(super) async fn subject_config(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let st = node.state();
    let level = match st.config(Some(&subject)) {
        Some(level) => level,
        None if flag(&q, "defaultToGlobal") => st.config(None).unwrap_or_default(),
        None => return Err(RegistryError::SubjectConfigNotFound(subject)),
    };
    Ok(ok(json!({"compatibilityLevel": level.name()})))
}

pub(super) async fn global_mode(State(node): State<Ctx>) -> Response {
    let mode = node.state().mode(None).unwrap_or(Mode::Readwrite);
    ok(json!({"mode": mode.name()}))
}

pub(super) async fn subject_mode(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response> {
    let st = node.state();
    let mode = match st.mode(Some(&subject)) {
        Some(mode) => mode,
        None if flag(&q, "defaultToGlobal") => st.mode(None).unwrap_or_default(),
        None => return Err(RegistryError::SubjectModeNotFound(subject)),
    };
    Ok(ok(json!({"mode": mode.name()})))
}
