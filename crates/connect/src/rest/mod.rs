//! The REST API, wire-compatible with Kafka Connect's: routes, JSON shapes and error
//! bodies. Handlers are thin: parse, call the worker (mutations on a blocking thread,
//! since they may join task threads), shape the answer. Errors become HTTP answers in
//! one place, `Error::into_response`.

mod connectors;
mod forward;
mod plugins;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use gregor_connect_api::Props;
use serde_json::{json, Value as J};

use crate::error::Error;
use crate::runtime::Worker;

/// The Kafka Connect REST API level this worker implements (what `GET /` reports as
/// `version`; tools such as kcctl gate features on it).
pub const KAFKA_CONNECT_VERSION: &str = "3.9.0";

/// The router for a worker.
pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route("/", get(root))
        .route(
            "/connectors",
            get(connectors::list).post(connectors::create),
        )
        .route(
            "/connectors/{name}",
            get(connectors::info).delete(connectors::delete),
        )
        .route(
            "/connectors/{name}/config",
            get(connectors::get_config).put(connectors::put_config),
        )
        .route("/connectors/{name}/status", get(connectors::status))
        .route("/connectors/{name}/restart", post(connectors::restart))
        .route("/connectors/{name}/pause", put(connectors::pause))
        .route("/connectors/{name}/resume", put(connectors::resume))
        .route("/connectors/{name}/stop", put(connectors::stop))
        .route("/connectors/{name}/tasks", get(connectors::tasks))
        .route(
            "/connectors/{name}/tasks/{task}/status",
            get(connectors::task_status),
        )
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(connectors::task_restart),
        )
        .route(
            "/connectors/{name}/offsets",
            get(connectors::offsets)
                .delete(connectors::reset_offsets)
                .patch(connectors::alter_offsets),
        )
        .route("/connector-plugins", get(plugins::list))
        .route(
            "/connector-plugins/{plugin}/config",
            get(plugins::config_def),
        )
        .route(
            "/connector-plugins/{plugin}/config/validate",
            put(plugins::validate),
        )
        .fallback(|| async { Error::NotFoundRoute.into_response() })
        .layer(axum::middleware::from_fn_with_state(
            worker.clone(),
            forward::forward,
        ))
        .with_state(worker)
}

async fn root(axum::extract::State(w): axum::extract::State<Arc<Worker>>) -> Json<J> {
    Json(json!({
        "version": KAFKA_CONNECT_VERSION,
        "commit": concat!("gregor-", env!("CARGO_PKG_VERSION")),
        "kafka_cluster_id": w.cluster_id,
    }))
}

/// Runs a worker operation on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("worker operation failed: {e}")))?
}

/// A JSON request body, with Kafka Connect's 400 on malformed JSON.
pub(crate) fn parse_body(body: &[u8]) -> Result<J, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("Invalid JSON in request body: {e}")))
}

/// A config object as string properties (numbers and booleans are accepted and kept
/// as their text, as Kafka's Jackson mapping does; nulls are dropped).
pub(crate) fn props_of(j: &J) -> Result<Props, Error> {
    let obj = j
        .as_object()
        .ok_or_else(|| Error::BadRequest("Connector config must be a JSON object".into()))?;
    let mut props = Props::new();
    for (k, v) in obj {
        match v {
            J::Null => {}
            J::String(s) => {
                props.insert(k.clone(), s.clone());
            }
            J::Number(_) | J::Bool(_) => {
                props.insert(k.clone(), v.to_string());
            }
            _ => {
                return Err(Error::BadRequest(format!(
                    "Invalid value for configuration {k}: expected a string"
                )))
            }
        }
    }
    Ok(props)
}

pub(crate) fn created(j: J) -> axum::response::Response {
    (StatusCode::CREATED, Json(j)).into_response()
}
