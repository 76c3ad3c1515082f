//! The REST API, wire-compatible with Confluent Schema Registry's: the routes, and the
//! helpers the handlers share. Reads are answered from this process's state; writes
//! go through `forward::write` to the primary.
//!
//! Layout: `read` (GET and look-up/compatibility POSTs), `write` (register, delete,
//! config and mode changes).

mod read;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{RegistryError, Result};
use crate::forward::json_response;
use crate::node::Node;

/// What the registry answers in: Confluent's versioned media type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

pub type Ctx = Arc<Node>;
pub type Params = HashMap<String, String>;

pub fn router(node: Ctx) -> Router {
    Router::new()
        .route("/", get(read::root).post(read::root))
        .route("/schemas/types", get(read::schema_types))
        .route("/v1/metadata/primary", get(read::primary))
        .route("/schemas/ids/{id}", get(read::schema_by_id))
        .route("/schemas/ids/{id}/schema", get(read::raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(read::id_versions))
        .route("/schemas/ids/{id}/subjects", get(read::id_subjects))
        .route("/subjects", get(read::subjects))
        .route(
            "/subjects/{subject}",
            post(read::lookup).delete(write::delete_subject),
        )
        .route(
            "/subjects/{subject}/versions",
            get(read::versions).post(write::register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(read::version).delete(write::delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(read::raw_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(read::referenced_by),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(read::compatibility_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(read::compatibility),
        )
        .route(
            "/config",
            get(read::global_config)
                .put(write::set_global_config)
                .delete(write::delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(read::subject_config)
                .put(write::set_subject_config)
                .delete(write::delete_subject_config),
        )
        .route("/mode", get(read::global_mode).put(write::set_global_mode))
        .route(
            "/mode/{subject}",
            get(read::subject_mode)
                .put(write::set_subject_mode)
                .delete(write::delete_subject_mode),
        )
        .fallback(|| async { RegistryError::NoSuchEndpoint })
        .with_state(node)
}

/// A query flag: present and not false (clients send `true`, `True` or nothing).
fn flag(params: &Params, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("true"))
}

fn ok(value: Value) -> Response {
    json_response(StatusCode::OK, value.to_string())
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::BadRequest(e.to_string()))
}
