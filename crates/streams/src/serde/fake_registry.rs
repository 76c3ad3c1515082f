//! A stand-in schema registry for the registry serdes' tests: the REST routes they use,
//! on a raw socket, counting requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value as J};

use super::RegistrySerdeConfig;

#[derive(Default)]
pub(crate) struct Registered {
    /// (subject, schema text, schema type, id), in registration order.
    pub(crate) versions: Vec<(String, String, &'static str, u32)>,
}

impl Registered {
    fn register(&mut self, subject: &str, text: &str, kind: &'static str) -> u32 {
        if let Some(v) = self.versions.iter().find(|v| v.0 == subject && v.1 == text) {
            return v.3;
        }
        let id = match self.versions.iter().find(|v| v.1 == text) {
            Some(v) => v.3,
            None => 1 + self.versions.iter().map(|v| v.3).max().unwrap_or(0),
        };
        self.versions.push((subject.into(), text.into(), kind, id));
        id
    }

    fn version_body(&self, subject: &str, i: usize) -> J {
        let v = &self.versions[i];
        let version = self.versions[..=i]
            .iter()
            .filter(|w| w.0 == subject)
            .count();
        json!({"subject": subject, "version": version, "id": v.3, "schema": v.1,
               "schemaType": v.2})
    }

    fn answer(&mut self, method: &str, path: &str, body: &J) -> (u16, J) {
        let text = body.get("schema").and_then(J::as_str).unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let not_found = (
            404,
            json!({"error_code": 40403, "message": "Schema not found"}),
        );
        match (method, parts.as_slice()) {
            ("POST", ["subjects", s, "versions"]) => {
                let kind = match body.get("schemaType").and_then(J::as_str) {
                    Some("JSON") => "JSON",
                    _ => "AVRO",
                };
                (200, json!({"id": self.register(s, text, kind)}))
            }
            ("POST", ["subjects", s]) => {
                match self.versions.iter().position(|v| v.0 == *s && v.1 == text) {
                    Some(i) => (200, self.version_body(s, i)),
                    None => not_found,
                }
            }
            ("GET", ["subjects", s, "versions", "latest"]) => {
                match self.versions.iter().rposition(|v| v.0 == *s) {
                    Some(i) => (200, self.version_body(s, i)),
                    None => (
                        404,
                        json!({"error_code": 40401, "message": "Subject not found"}),
                    ),
                }
            }
            ("GET", ["schemas", "ids", id]) => {
                match self.versions.iter().find(|v| id.parse() == Ok(v.3)) {
                    Some(v) => (200, json!({"schema": v.1, "schemaType": v.2})),
                    None => not_found,
                }
            }
            _ => (404, json!({"error_code": 404, "message": "no route"})),
        }
    }
}

pub(crate) struct Fake {
    url: String,
    state: Arc<Mutex<Registered>>,
    hits: Arc<AtomicUsize>,
}

impl Fake {
    pub(crate) fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Registered::default()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (state.clone(), hits.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming().flatten() {
                h.fetch_add(1, Ordering::SeqCst);
                let mut r = BufReader::new(&sock);
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if r.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    let lower = header.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = r.read_exact(&mut body);
                let mut words = line.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let body = serde_json::from_slice(&body).unwrap_or(J::Null);
                let (status, answer) = s.lock().unwrap().answer(method, path, &body);
                let answer = answer.to_string();
                let _ = write!(
                    &sock,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Fake { url, state, hits }
    }

    pub(crate) fn config(&self, extra: &[(&str, &str)]) -> RegistrySerdeConfig {
        let mut props = vec![("schema.registry.url", self.url.as_str())];
        props.extend_from_slice(extra);
        RegistrySerdeConfig::from_props(props).unwrap()
    }

    pub(crate) fn register(&self, subject: &str, text: &str, kind: &'static str) -> u32 {
        self.state.lock().unwrap().register(subject, text, kind)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, Registered> {
        self.state.lock().unwrap()
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
