//! Distributed mode: writes go to the leader. A write (anything but GET/HEAD and config
//! validation) that reaches a follower is forwarded over HTTP to the leader's URL from
//! the current assignment, as Kafka Connect does, and the leader's answer is returned
//! as is. A forwarded request carries `x-gregor-forwarded` so it is never forwarded
//! twice; while the group has no leader (a rebalance), the request waits for one up to
//! a deadline, then answers 409 as Kafka does.
//!
//! `POST /connectors/{name}/tasks/{task}/restart` is routed to the task's worker
//! instead (Kafka's `DistributedHerder.restartTask` with `completeOrForwardRequest`): a
//! worker running the task restarts it; otherwise a follower forwards to the leader and
//! the leader to the task's worker (from its assignment), at most two hops, marked with
//! Kafka's `forward` query parameter (absent: first worker; `true`: may forward once
//! more; `false`: must answer). Unlike other writes it does not wait out a rebalance:
//! without a current assignment it cannot be routed, so it answers 409 at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::Error;
use crate::runtime::distributed::cluster::Cluster;
use crate::runtime::Worker;

const FORWARDED: &str = "x-gregor-forwarded";
const LEADER_DEADLINE: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 16 << 20;

type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A write the leader handles. Task restarts are routed by their handler.
fn is_write(method: &Method, uri: &Uri) -> bool {
    let path = uri.path();
    let task_restart =
        path.starts_with("/connectors/") && path.contains("/tasks/") && path.ends_with("/restart");
    !(matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || path.starts_with("/connector-plugins")
        || task_restart)
}

pub(crate) async fn forward(State(w): State<Arc<Worker>>, req: Request, next: Next) -> Response {
    let Some(cluster) = w.cluster().cloned() else {
        return next.run(req).await;
    };
    if !is_write(req.method(), req.uri()) {
        return next.run(req).await;
    }
    let forwarded = req.headers().contains_key(FORWARDED);
    let deadline = tokio::time::Instant::now() + LEADER_DEADLINE;
    let url = loop {
        // Registered before the leader is read, so a change in between is not missed.
        let changed = cluster.leader_changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if cluster.is_leader() {
            return next.run(req).await;
        }
        // A forwarded request waits out a rebalance here (the sender thought this
        // worker led); once another worker leads, the sender must retry: 409.
        match cluster.leader_url() {
            Some(url) if !forwarded => break url,
            Some(_) => return rebalancing(),
            None => {
                if tokio::time::timeout_at(deadline, changed).await.is_err() {
                    return rebalancing();
                }
            }
        }
    };
    match to_leader(&url, req).await {
        Ok(r) => r,
        Err(e) => Error::Internal(format!(
            "Error trying to forward REST request to {url}: {e}"
        ))
        .into_response(),
    }
}

/// Restarts the task here if this worker runs it, else forwards the request one hop
/// closer to the worker that does. `path` is the request's (still percent-encoded) path.
pub(crate) async fn restart_task(
    w: Arc<Worker>,
    cluster: Arc<Cluster>,
    name: String,
    task: usize,
    path: &str,
    forward: Option<bool>,
) -> Response {
    let local = {
        let (w, name) = (w.clone(), name.clone());
        super::blocking(move || w.restart_assigned_task(&name, task)).await
    };
    match local {
        Err(e) => return e.into_response(),
        Ok(true) => return axum::http::StatusCode::NO_CONTENT.into_response(),
        Ok(false) => {}
    }
    if forward == Some(false) {
        tracing::warn!(
            "POST {path} found no worker running the task within two hops (a rebalance?)"
        );
        return rebalancing();
    }
    let target = if cluster.is_leader() {
        i32::try_from(task)
            .ok()
            .and_then(|t| cluster.owner_url(&name, t))
    } else {
        cluster.leader_url()
    };
    let Some(url) = target else {
        return Error::Conflict(
            "Cannot complete request momentarily due to no known leader URL, \
             likely because a rebalance was underway."
                .into(),
        )
        .into_response();
    };
    let target = format!(
        "{}{path}?forward={}",
        url.trim_end_matches('/'),
        forward.is_none()
    );
    match send(Method::POST, &target, None, Bytes::new(), false).await {
        Ok(r) => r,
        Err(e) => Error::Internal(format!(
            "Error trying to forward REST request to {target}: {e}"
        ))
        .into_response(),
    }
}

fn rebalancing() -> Response {
    Error::Conflict(
        "Cannot complete request because of a conflicting operation (e.g. worker rebalance)".into(),
    )
    .into_response()
}

async fn to_leader(url: &str, req: Request) -> Result<Response, String> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| e.to_string())?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let target = format!("{}{}", url.trim_end_matches('/'), path);
    let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    send(parts.method, &target, content_type, body, true).await
}

/// One HTTP request to another worker; its answer is returned as is.
async fn send(
    method: Method,
    target: &str,
    content_type: Option<header::HeaderValue>,
    body: Bytes,
    mark_forwarded: bool,
) -> Result<Response, String> {
    let target: Uri = target
        .parse()
        .map_err(|e| format!("bad worker URL {target}: {e}"))?;
    let mut builder = axum::http::Request::builder().method(method).uri(target);
    if mark_forwarded {
        builder = builder.header(FORWARDED, "1");
    }
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    let client: Client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let resp = tokio::time::timeout(Duration::from_secs(90), client.request(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_restarts_are_routed_by_their_handler_not_sent_to_the_leader() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(!is_write(
            &Method::POST,
            &uri("/connectors/a/tasks/0/restart")
        ));
        assert!(!is_write(
            &Method::POST,
            &uri("/connectors/a/tasks/0/restart?forward=true")
        ));
        assert!(is_write(&Method::POST, &uri("/connectors/a/restart")));
        assert!(is_write(&Method::PUT, &uri("/connectors/a/pause")));
        assert!(!is_write(&Method::GET, &uri("/connectors/a/status")));
    }
}
