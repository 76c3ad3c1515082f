//! Write endpoints: each decodes its request here (so a malformed one is refused by
//! whichever process got it), then hands a plan to `forward::write`, which runs it on
//! the primary.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use super::{body, flag, Ctx, Params};
use crate::error::Result;
use crate::forward::{self, WriteRequest};
use crate::service::{self, ConfigRequest, ModeRequest, SchemaRequest};
use crate::state::VersionSpec;

fn request(method: Method, uri: Uri, h: &HeaderMap, body: Bytes) -> WriteRequest {
    WriteRequest {
        method,
        uri,
        headers: h.clone(),
        body,
    }
}

pub(super) async fn register(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    bytes: Bytes,
) -> Result<Response> {
    let req: SchemaRequest = body(&bytes)?;
    let normalize = flag(&q, "normalize");
    let wr = request(method, uri, &h, bytes);
    forward::write(&node, wr, |st| {
        service::plan_register(st, &subject, &req, normalize)
    })
    .await
}

pub(super) async fn delete_subject(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
) -> Result<Response> {
    let permanent = flag(&q, "permanent");
    let wr = request(method, uri, &h, Bytes::new());
    forward::write(&node, wr, |st| {
        service::plan_delete_subject(st, &subject, permanent)
    })
    .await
}

pub(super) async fn delete_version(
    State(node): State<Ctx>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<Params>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
) -> Result<Response> {
    let spec = VersionSpec::parse(&version)?;
    let permanent = flag(&q, "permanent");
    let wr = request(method, uri, &h, Bytes::new());
    forward::write(&node, wr, |st| {
        service::plan_delete_version(st, &subject, spec, permanent)
    })
    .await
}

async fn set_config(
    node: Ctx,
    subject: Option<String>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    bytes: Bytes,
) -> Result<Response> {
    let req: ConfigRequest = body(&bytes)?;
    // Refuse a bad level before routing, as any process can tell.
    service::plan_set_config(subject.as_deref(), &req)?;
    let wr = request(method, uri, &h, bytes);
    forward::write(&node, wr, |_| {
        service::plan_set_config(subject.as_deref(), &req)
    })
    .await
}

pub(super) async fn set_global_config(
    State(node): State<Ctx>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    bytes: Bytes,
) -> Result<Response> {
    set_config(node, None, method, uri, h, bytes).await
}

pub(super) async fn set_subject_config(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    bytes: Bytes,
) -> Result<Response> {
    set_config(node, Some(subject), method, uri, h, bytes).await
}

pub(super) async fn delete_global_config(
    State(node): State<Ctx>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
) -> Result<Response> {
    let wr = request(method, uri, &h, Bytes::new());
    forward::write(&node, wr, |st| service::plan_delete_config(st, None)).await
}

pub(super) async fn delete_subject_config(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
) -> Result<Response> {
    let wr = request(method, uri, &h, Bytes::new());
    forward::write(&node, wr, |st| {
        service::plan_delete_config(st, Some(&subject))
    })
    .await
}

async fn set_mode(
    node: Ctx,
    subject: Option<String>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    bytes: Bytes,
) -> Result<Response> {
    let req: ModeRequest = body(&bytes)?;
    service::plan_set_mode(subject.as_deref(), &req)?;
    let wr = request(method, uri, &h, bytes);
    forward::write(&node, wr, |_| {
        service::plan_set_mode(subject.as_deref(), &req)
    })
    .await
}

pub(super) async fn set_global_mode(
    State(node): State<Ctx>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    bytes: Bytes,
) -> Result<Response> {
    set_mode(node, None, method, uri, h, bytes).await
}

pub(super) async fn set_subject_mode(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    bytes: Bytes,
) -> Result<Response> {
    set_mode(node, Some(subject), method, uri, h, bytes).await
}

pub(super) async fn delete_subject_mode(
    State(node): State<Ctx>,
    Path(subject): Path<String>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
) -> Result<Response> {
    let wr = request(method, uri, &h, Bytes::new());
    forward::write(&node, wr, |st| service::plan_delete_mode(st, &subject)).await
}
