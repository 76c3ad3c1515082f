//! Distributed mode: writes go to the leader. A write (anything but GET/HEAD and config
//! validation) that reaches a follower is forwarded over HTTP to the leader's URL from
//! the current assignment, as Kafka Connect does, and the leader's answer is returned
//! as is. A forwarded request carries `x-gregor-forwarded` so it is never forwarded
//! twice; while the group has no leader (a rebalance), the request waits for one up to
//! a deadline, then answers 409 as Kafka does.

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
use crate::runtime::Worker;

const FORWARDED: &str = "x-gregor-forwarded";
const LEADER_DEADLINE: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 16 << 20;

type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

fn is_write(method: &Method, uri: &Uri) -> bool {
    !(matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || uri.path().starts_with("/connector-plugins"))
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
    let target: Uri = format!("{}{}", url.trim_end_matches('/'), path)
        .parse()
        .map_err(|e| format!("bad leader URL: {e}"))?;
    let mut builder = axum::http::Request::builder()
        .method(parts.method)
        .uri(target)
        .header(FORWARDED, "1");
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
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
