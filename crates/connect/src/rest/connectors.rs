//! `/connectors` routes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value as J};

use super::{blocking, created, parse_body, props_of};
use crate::error::Error;
use crate::runtime::store::TargetState;
use crate::runtime::Worker;

type W = State<Arc<Worker>>;

/// `GET /connectors[?expand=status][&expand=info]`.
pub(super) async fn list(State(w): W, RawQuery(q): RawQuery) -> Result<Json<J>, Error> {
    let expand: Vec<String> = q
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "expand")
        .map(|(_, v)| v.to_string())
        .collect();
    let names = w.list();
    if expand.is_empty() {
        return Ok(Json(J::from(names)));
    }
    let mut out = Map::new();
    for n in names {
        let mut entry = Map::new();
        if expand.iter().any(|e| e == "status") {
            if let Ok(s) = w.status(&n) {
                entry.insert("status".into(), s);
            }
        }
        if expand.iter().any(|e| e == "info") {
            if let Ok(i) = w.info(&n) {
                entry.insert("info".into(), i);
            }
        }
        out.insert(n, J::Object(entry));
    }
    Ok(Json(J::Object(out)))
}

/// `POST /connectors` with `{"name": ..., "config": {...}}`: 201 and the connector's
/// info; 409 if it exists; 400 with every config error and nothing started.
pub(super) async fn create(State(w): W, body: Bytes) -> Result<Response, Error> {
    let body = parse_body(&body)?;
    let config = props_of(body.get("config").unwrap_or(&J::Null))?;
    let name = body
        .get("name")
        .and_then(J::as_str)
        .map(str::to_string)
        .or_else(|| config.get("name").cloned())
        .ok_or_else(|| Error::BadRequest("Connector name is required".into()))?;
    if name.contains('/') {
        return Err(Error::BadRequest(
            "connector name should not contain '/'".into(),
        ));
    }
    // KIP-980: the state the connector starts in.
    let initial = match body.get("initial_state").and_then(J::as_str) {
        None => None,
        Some(s) if s.eq_ignore_ascii_case("RUNNING") => Some(TargetState::Started),
        Some(s) if s.eq_ignore_ascii_case("PAUSED") => Some(TargetState::Paused),
        Some(s) if s.eq_ignore_ascii_case("STOPPED") => Some(TargetState::Stopped),
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "Invalid initial state {other}: must be one of RUNNING, PAUSED, STOPPED"
            )))
        }
    };
    let (_, info) = blocking(move || w.put(&name, config, false, initial)).await?;
    Ok(created(info))
}

pub(super) async fn info(State(w): W, Path(name): Path<String>) -> Result<Json<J>, Error> {
    w.info(&name).map(Json)
}

pub(super) async fn delete(State(w): W, Path(name): Path<String>) -> Result<StatusCode, Error> {
    blocking(move || w.delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn get_config(State(w): W, Path(name): Path<String>) -> Result<Json<J>, Error> {
    Ok(Json(
        serde_json::to_value(w.config(&name)?).unwrap_or_default(),
    ))
}

/// `PUT /connectors/{name}/config`: 201 when created, 200 when updated.
pub(super) async fn put_config(
    State(w): W,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Error> {
    let config = props_of(&parse_body(&body)?)?;
    let (was_created, info) = blocking(move || w.put(&name, config, true, None)).await?;
    Ok(if was_created {
        created(info)
    } else {
        Json(info).into_response()
    })
}

pub(super) async fn status(State(w): W, Path(name): Path<String>) -> Result<Json<J>, Error> {
    w.status(&name).map(Json)
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `POST /connectors/{name}/restart[?includeTasks=..&onlyFailed=..]`: 204 for the
/// connector alone, else 202 with the status showing what restarts.
pub(super) async fn restart(
    State(w): W,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let (include, only_failed) = (flag(&q, "includeTasks"), flag(&q, "onlyFailed"));
    Ok(
        match blocking(move || w.restart(&name, include, only_failed)).await? {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(status) => (StatusCode::ACCEPTED, Json(status)).into_response(),
        },
    )
}

pub(super) async fn pause(State(w): W, Path(name): Path<String>) -> Result<StatusCode, Error> {
    blocking(move || w.set_target(&name, TargetState::Paused)).await?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn resume(State(w): W, Path(name): Path<String>) -> Result<StatusCode, Error> {
    blocking(move || w.set_target(&name, TargetState::Started)).await?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn stop(State(w): W, Path(name): Path<String>) -> Result<StatusCode, Error> {
    blocking(move || w.set_target(&name, TargetState::Stopped)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn tasks(State(w): W, Path(name): Path<String>) -> Result<Json<J>, Error> {
    w.tasks(&name).map(Json)
}

pub(super) async fn task_status(
    State(w): W,
    Path((name, task)): Path<(String, usize)>,
) -> Result<Json<J>, Error> {
    w.task_status(&name, task).map(Json)
}

/// `POST /connectors/{name}/tasks/{task}/restart[?forward=..]`: 204 once restarted.
/// Distributed mode routes it to the task's worker (`forward::restart_task`).
pub(super) async fn task_restart(
    State(w): W,
    Path((name, task)): Path<(String, usize)>,
    Query(q): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Result<Response, Error> {
    if let Some(c) = w.cluster().cloned() {
        let forward = q.get("forward").map(|v| v.eq_ignore_ascii_case("true"));
        return Ok(super::forward::restart_task(w, c, name, task, uri.path(), forward).await);
    }
    blocking(move || w.restart_one_task(&name, task)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn offsets(State(w): W, Path(name): Path<String>) -> Result<Json<J>, Error> {
    blocking(move || w.offsets(&name)).await.map(Json)
}

pub(super) async fn reset_offsets(State(w): W, Path(name): Path<String>) -> Result<Json<J>, Error> {
    blocking(move || w.reset_offsets(&name)).await.map(Json)
}

pub(super) async fn alter_offsets(
    State(w): W,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<J>, Error> {
    let body = parse_body(&body)?;
    blocking(move || w.alter_offsets(&name, &body))
        .await
        .map(Json)
}
