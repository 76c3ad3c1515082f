//! The REST client. Reads by id and registrations are cached for the life of the client:
//! an id never changes meaning, and a schema registered under a subject keeps its id.
//! `latest` is never cached (a subject's latest version moves).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value as J};

use crate::{Error, RegisteredSchema, Result, Schema, SchemaReference, SchemaType};

/// The registry's media type, sent and accepted.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Path segments keep only unreserved characters (a subject may hold `/` or `%`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where the registry is and how to authenticate.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URLs (`http://host:port[/prefix]`), tried in order until one answers.
    pub urls: Vec<String>,
    /// `user:password` for HTTP basic authentication (`basic.auth.user.info`).
    pub basic_auth: Option<String>,
    /// Deadline of one HTTP request.
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// A config from Confluent's comma-separated `schema.registry.url`.
    pub fn new(urls: &str) -> Self {
        ClientConfig {
            urls: urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            basic_auth: None,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ClientConfig {
    /// Checks the URLs without connecting: at least one, each `http://`.
    pub fn check(&self) -> Result<()> {
        if self.urls.is_empty() {
            return Err(Error::InvalidUrl {
                url: String::new(),
                reason: "no URL given (schema.registry.url)".into(),
            });
        }
        for u in &self.urls {
            let bad = |reason: &str| Error::InvalidUrl {
                url: u.clone(),
                reason: reason.into(),
            };
            let uri: Uri = u.parse().map_err(|e| bad(&format!("{e}")))?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err(bad("only http://host[:port] URLs are supported"));
            }
        }
        Ok(())
    }
}

type Http = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// An async client of one registry (cluster). Cheap to share behind an `Arc`.
pub struct Client {
    urls: Vec<String>,
    auth: Option<HeaderValue>,
    timeout: Duration,
    http: Http,
    by_id: Mutex<HashMap<u32, Arc<Schema>>>,
    registered: Mutex<HashMap<(String, Schema), u32>>,
}

impl Client {
    /// A client; checks the URLs but connects lazily. Needs a tokio runtime to run its
    /// futures on (hyper's connection tasks are spawned there).
    pub fn new(config: ClientConfig) -> Result<Self> {
        config.check()?;
        let urls: Vec<String> = config
            .urls
            .iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        let auth = match &config.basic_auth {
            None => None,
            Some(info) => {
                let token = base64::engine::general_purpose::STANDARD.encode(info);
                Some(
                    HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| {
                        Error::InvalidUrl {
                            url: urls.join(","),
                            reason: format!("invalid basic auth user info: {e}"),
                        }
                    })?,
                )
            }
        };
        Ok(Client {
            urls,
            auth,
            timeout: config.request_timeout,
            http: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
            by_id: Mutex::new(HashMap::new()),
            registered: Mutex::new(HashMap::new()),
        })
    }

    /// The schema with this id (`GET /schemas/ids/{id}`), cached.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>> {
        if let Some(s) = lock(&self.by_id).get(&id) {
            return Ok(s.clone());
        }
        let body = self
            .call(Method::GET, &format!("/schemas/ids/{id}"), None)
            .await?;
        let schema = Arc::new(parse_schema(&body)?);
        lock(&self.by_id).insert(id, schema.clone());
        Ok(schema)
    }

    /// Registers `schema` under `subject` (`POST /subjects/{subject}/versions`) and
    /// returns its id; the registry returns the existing id if it is already there.
    pub async fn register(&self, subject: &str, schema: &Schema) -> Result<u32> {
        let key = (subject.to_string(), schema.clone());
        if let Some(id) = lock(&self.registered).get(&key) {
            return Ok(*id);
        }
        let path = format!("/subjects/{}/versions", segment(subject));
        let body = self
            .call(Method::POST, &path, Some(request_body(schema)))
            .await?;
        let id = get_id(&body)?;
        self.remember(key, id);
        Ok(id)
    }

    /// The registered version of `schema` under `subject` (`POST /subjects/{subject}`),
    /// without registering it; a 404 [`Error::Api`] when it is not registered.
    pub async fn lookup(&self, subject: &str, schema: &Schema) -> Result<RegisteredSchema> {
        let path = format!("/subjects/{}", segment(subject));
        let body = self
            .call(Method::POST, &path, Some(request_body(schema)))
            .await?;
        let found = parse_registered(subject, &body)?;
        self.remember((subject.to_string(), schema.clone()), found.id);
        Ok(found)
    }

    /// The id of `schema` under `subject`: registered if `auto_register`, else looked
    /// up. Cached either way.
    pub async fn id_for(&self, subject: &str, schema: &Schema, auto_register: bool) -> Result<u32> {
        if let Some(id) = lock(&self.registered).get(&(subject.to_string(), schema.clone())) {
            return Ok(*id);
        }
        if auto_register {
            self.register(subject, schema).await
        } else {
            Ok(self.lookup(subject, schema).await?.id)
        }
    }

    /// The latest version under `subject` (never cached).
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema> {
        self.fetch_version(subject, "latest").await
    }

    /// Version `version` of `subject` (`GET /subjects/{subject}/versions/{version}`).
    pub async fn version(&self, subject: &str, version: i32) -> Result<RegisteredSchema> {
        self.fetch_version(subject, &version.to_string()).await
    }

    async fn fetch_version(&self, subject: &str, version: &str) -> Result<RegisteredSchema> {
        let path = format!(
            "/subjects/{}/versions/{}",
            segment(subject),
            segment(version)
        );
        let body = self.call(Method::GET, &path, None).await?;
        let found = parse_registered(subject, &body)?;
        lock(&self.by_id)
            .entry(found.id)
            .or_insert_with(|| Arc::new(found.schema.clone()));
        Ok(found)
    }

    fn remember(&self, key: (String, Schema), id: u32) {
        lock(&self.by_id)
            .entry(id)
            .or_insert_with(|| Arc::new(key.1.clone()));
        lock(&self.registered).insert(key, id);
    }

    /// One request, to each URL in turn until one answers; the JSON body of a 2xx.
    /// A transport failure (not a timeout) is retried once per URL: a pooled keep-alive connection the
    /// server closed while idle (which a [`BlockingClient`]'s runtime, idle between
    /// calls, may not have noticed yet) must not fail a record. Every request the client
    /// makes is idempotent (registering an existing schema returns its id).
    async fn call(&self, method: Method, path: &str, body: Option<J>) -> Result<J> {
        let mut last = None;
        for base in &self.urls {
            for _attempt in 0..2 {
                match self
                    .call_one(base, method.clone(), path, body.as_ref())
                    .await
                {
                    Err(e @ Error::Transport { .. }) => last = Some(e),
                    Err(e @ Error::Timeout { .. }) => {
                        last = Some(e);
                        break;
                    }
                    other => return other,
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Transport {
            url: String::new(),
            reason: "no URL".into(),
        }))
    }

    async fn call_one(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<&J>,
    ) -> Result<J> {
        let url = format!("{base}{path}");
        let transport = |reason: String| Error::Transport {
            url: base.to_string(),
            reason,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header(ACCEPT, MEDIA_TYPE)
            .header(CONTENT_TYPE, MEDIA_TYPE);
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let payload = body.map(J::to_string).unwrap_or_default();
        let req = req
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| Error::InvalidUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| transport(e.to_string()))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| transport(e.to_string()))?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                url: base.to_string(),
                timeout: self.timeout,
            })??;
        let doc: J = serde_json::from_slice(&bytes).unwrap_or(J::Null);
        if (200..300).contains(&status) {
            return Ok(doc);
        }
        Err(Error::Api {
            status,
            error_code: doc
                .get("error_code")
                .and_then(J::as_i64)
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(i32::from(status)),
            message: doc.get("message").and_then(J::as_str).map_or_else(
                || String::from_utf8_lossy(&bytes).into_owned(),
                str::to_string,
            ),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

fn request_body(schema: &Schema) -> J {
    let mut body = json!({ "schema": schema.schema });
    if schema.schema_type != SchemaType::Avro {
        body["schemaType"] = json!(schema.schema_type);
    }
    if !schema.references.is_empty() {
        body["references"] = json!(schema
            .references
            .iter()
            .map(|r| json!({"name": r.name, "subject": r.subject, "version": r.version}))
            .collect::<Vec<_>>());
    }
    body
}

fn get_id(body: &J) -> Result<u32> {
    body.get("id")
        .and_then(J::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| Error::Decode(format!("no schema id in {body}")))
}

fn parse_schema(body: &J) -> Result<Schema> {
    let text = body
        .get("schema")
        .and_then(J::as_str)
        .ok_or_else(|| Error::Decode(format!("no schema in {body}")))?;
    let schema_type = match body.get("schemaType") {
        None | Some(J::Null) => SchemaType::Avro,
        Some(t) => serde_json::from_value(t.clone())
            .map_err(|e| Error::Decode(format!("schemaType {t}: {e}")))?,
    };
    let references = match body.get("references") {
        None | Some(J::Null) => Vec::new(),
        Some(r) => serde_json::from_value::<Vec<SchemaReference>>(r.clone())
            .map_err(|e| Error::Decode(format!("references {r}: {e}")))?,
    };
    Ok(Schema {
        schema_type,
        schema: text.to_string(),
        references,
    })
}

fn parse_registered(subject: &str, body: &J) -> Result<RegisteredSchema> {
    Ok(RegisteredSchema {
        subject: body
            .get("subject")
            .and_then(J::as_str)
            .unwrap_or(subject)
            .to_string(),
        version: body
            .get("version")
            .and_then(J::as_i64)
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| Error::Decode(format!("no version in {body}")))?,
        id: get_id(body)?,
        schema: parse_schema(body)?,
    })
}

/// [`Client`] for code on plain threads: every call blocks on the client's own
/// current-thread runtime. Must not be called from inside an async task (tokio refuses
/// to block a runtime thread); async code uses [`Client`].
pub struct BlockingClient {
    /// Always `Some` until the client is dropped.
    rt: Option<tokio::runtime::Runtime>,
    inner: Client,
}

/// Dropping a runtime blocks on its tasks, which tokio refuses inside another runtime
/// (a client dropped in async code): the runtime is shut down in the background
/// instead, which is allowed anywhere.
impl Drop for BlockingClient {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl BlockingClient {
    /// A blocking client with its own runtime.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Transport {
                url: config.urls.join(","),
                reason: format!("cannot start the client runtime: {e}"),
            })?;
        let inner = {
            let _in_runtime = rt.enter();
            Client::new(config)?
        };
        Ok(BlockingClient {
            rt: Some(rt),
            inner,
        })
    }

    fn run<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => Err(Error::Transport {
                url: String::new(),
                reason: "the client is shut down".into(),
            }),
        }
    }

    /// See [`Client::schema_by_id`].
    pub fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>> {
        self.run(self.inner.schema_by_id(id))
    }

    /// See [`Client::register`].
    pub fn register(&self, subject: &str, schema: &Schema) -> Result<u32> {
        self.run(self.inner.register(subject, schema))
    }

    /// See [`Client::lookup`].
    pub fn lookup(&self, subject: &str, schema: &Schema) -> Result<RegisteredSchema> {
        self.run(self.inner.lookup(subject, schema))
    }

    /// See [`Client::id_for`].
    pub fn id_for(&self, subject: &str, schema: &Schema, auto_register: bool) -> Result<u32> {
        self.run(self.inner.id_for(subject, schema, auto_register))
    }

    /// See [`Client::latest`].
    pub fn latest(&self, subject: &str) -> Result<RegisteredSchema> {
        self.run(self.inner.latest(subject))
    }

    /// See [`Client::version`].
    pub fn version(&self, subject: &str, version: i32) -> Result<RegisteredSchema> {
        self.run(self.inner.version(subject, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_up_front() {
        assert!(matches!(
            Client::new(ClientConfig::new("")),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            BlockingClient::new(ClientConfig::new("https://x:1")),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(
            BlockingClient::new(ClientConfig::new("http://127.0.0.1:1, http://h:2/p/")).is_ok()
        );
    }

    #[test]
    fn an_unreachable_registry_is_a_transport_error() {
        let mut cfg = ClientConfig::new("http://127.0.0.1:1");
        cfg.request_timeout = Duration::from_secs(5);
        let c = BlockingClient::new(cfg);
        assert!(matches!(
            c.map(|c| c.schema_by_id(1)),
            Ok(Err(Error::Transport { .. }))
        ));
    }

    /// A stand-in registry on a raw socket: answers by request line, counts requests.
    async fn fake_registry() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                let (head_end, length) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break (buf.len(), 0);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let request = String::from_utf8_lossy(&buf);
                let line = request.lines().next().unwrap_or_default().to_string();
                let (status, body) = if line.starts_with("POST /subjects/t-value/versions ") {
                    ("200 OK", r#"{"id":7}"#)
                } else if line.starts_with("GET /schemas/ids/9 ") {
                    (
                        "200 OK",
                        r#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#,
                    )
                } else {
                    (
                        "404 Not Found",
                        r#"{"error_code":40403,"message":"Schema not found"}"#,
                    )
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn registrations_and_schemas_by_id_are_cached() {
        use std::sync::atomic::Ordering;
        let (url, hits) = fake_registry().await;
        let c = Client::new(ClientConfig::new(&url)).unwrap();
        let s = Schema::new(SchemaType::Avro, "\"string\"");
        assert_eq!(c.register("t-value", &s).await.unwrap(), 7);
        assert_eq!(c.id_for("t-value", &s, true).await.unwrap(), 7);
        // The id's schema is known from the registration: no request.
        assert_eq!(*c.schema_by_id(7).await.unwrap(), s);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let p = c.schema_by_id(9).await.unwrap();
        assert_eq!(p.schema_type, SchemaType::Protobuf);
        assert_eq!(c.schema_by_id(9).await.unwrap(), p);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        let missing = c.schema_by_id(10).await.unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        assert!(
            matches!(
                missing,
                Error::Api {
                    error_code: 40403,
                    ..
                }
            ),
            "{missing}"
        );
        // Unregistered and auto-registration off: a lookup, answered 404.
        let other = Schema::new(SchemaType::Avro, "\"int\"");
        assert!(c
            .id_for("t-value", &other, false)
            .await
            .unwrap_err()
            .is_not_found());
    }

    /// Streams builds its serdes' clients outside any runtime and may drop them inside
    /// one (an app shut down from async code): that must not panic.
    #[tokio::test]
    async fn a_blocking_client_may_be_dropped_inside_a_runtime() {
        let c = std::thread::spawn(|| BlockingClient::new(ClientConfig::new("http://127.0.0.1:1")))
            .join()
            .unwrap()
            .unwrap();
        drop(c);
    }

    #[test]
    fn bodies_follow_the_rest_api() {
        let s = Schema::new(SchemaType::Avro, "\"int\"");
        assert_eq!(request_body(&s), json!({"schema": "\"int\""}));
        let mut p = Schema::new(SchemaType::Protobuf, "syntax = \"proto3\";");
        p.references.push(SchemaReference {
            name: "a.proto".into(),
            subject: "a".into(),
            version: 1,
        });
        assert_eq!(
            request_body(&p),
            json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF",
                   "references": [{"name": "a.proto", "subject": "a", "version": 1}]})
        );
        let got = parse_registered(
            "s",
            &json!({"subject": "s", "version": 2, "id": 9,
            "schema": "{}", "schemaType": "JSON"}),
        );
        assert_eq!(
            got.ok().map(|r| (r.id, r.version, r.schema.schema_type)),
            Some((9, 2, SchemaType::Json))
        );
        assert!(parse_schema(&json!({"id": 1})).is_err());
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
