//! The write path's routing: run on this process if it is the primary, otherwise
//! forward the request over HTTP to the primary announced in the log.
//!
//! A forwarded request carries `x-gregor-forwarded` so it is never forwarded twice: a
//! process that gets one and is not the primary answers 50003 at once, and the
//! forwarder tries again with the primary it learns of next (until its deadline). The
//! primary answers with `x-gregor-offset` (the last offset the write appended), and the
//! forwarding process waits until its own tailer has read past it, so a client that
//! wrote through any process reads its write back from that process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::api::CONTENT_TYPE;
use crate::error::{RegistryError, Result};
use crate::node::Node;
use crate::service::Plan;
use crate::state::State;

pub(crate) type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

pub(crate) fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

const FORWARDED: &str = "x-gregor-forwarded";
const OFFSET: &str = "x-gregor-offset";
/// How long a write waits for a primary to exist and answer (an election after a
/// primary died takes about one session timeout).
const ROUTE_DEADLINE: Duration = Duration::from_secs(30);

/// What a write request needs to be forwarded.
pub struct WriteRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub async fn write(
    node: &Arc<Node>,
    req: WriteRequest,
    plan: impl FnOnce(&State) -> Result<Plan>,
) -> Result<Response> {
    let deadline = Instant::now() + ROUTE_DEADLINE;
    let forwarded = req.headers.contains_key(FORWARDED);
    let mut last = "no primary is elected".to_string();
    loop {
        if node.is_primary() {
            break;
        }
        if forwarded {
            // The forwarder tries again with the primary it sees next.
            return Err(RegistryError::Forward(format!(
                "{} is not the primary",
                node.url
            )));
        }
        if let Some(url) = node.primary_url().filter(|u| *u != node.url) {
            match forward_once(node, &url, &req).await {
                Ok(resp) => return Ok(resp),
                Err(e) => last = format!("{url}: {e}"),
            }
        }
        if Instant::now() > deadline {
            return Err(RegistryError::Forward(last));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (value, offset) = node.execute(plan).await?;
    let mut resp = json_response(StatusCode::OK, value.to_string());
    if let Some(offset) = offset.and_then(|o| HeaderValue::from_str(&o.to_string()).ok()) {
        resp.headers_mut().insert(OFFSET, offset);
    }
    Ok(resp)
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

async fn forward_once(node: &Node, url: &str, req: &WriteRequest) -> Result<Response, String> {
    let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let target: Uri = format!("{}{}", url.trim_end_matches('/'), path)
        .parse()
        .map_err(|e| format!("bad primary URL: {e}"))?;
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(target)
        .header(FORWARDED, "1");
    if let Some(ct) = req.headers.get(header::CONTENT_TYPE) {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    let request = builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(60), node.http.request(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let offset = resp
        .headers()
        .get(OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status == StatusCode::INTERNAL_SERVER_ERROR
        && serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|v| v["error_code"] == 50003)
    {
        // It is not (or no longer) the primary: try again with the next announcement.
        return Err("not the primary".to_string());
    }
    if let Some(offset) = offset {
        node.store
            .wait_applied(offset)
            .await
            .map_err(|e| e.to_string())?;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(json_response(status, body))
}
