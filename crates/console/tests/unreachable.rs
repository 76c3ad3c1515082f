//! A cluster that is down: every page is an error page with a 502, the server keeps
//! serving, and shutdown is clean. (The pages against a live broker are tested in a
//! real browser: tests/python/test_console.py.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rdkafka::config::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    let status = body
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_down_gives_error_pages_not_panics() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("log_level", "0");
    let opts = gregor_console::Options {
        listen: "127.0.0.1:0".into(),
        client,
        lag_sample_interval: Duration::from_millis(200),
        timeout: Duration::from_millis(500),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gregor_console::run(
        opts,
        move |addr| {
            let _ = ready_tx.send(addr);
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let addr = ready_rx.await.unwrap();
    for path in [
        "/",
        "/topics",
        "/topics/orders",
        "/topics/orders/messages",
        "/groups",
        "/groups/g1",
        "/transactions",
    ] {
        let (status, body) = get(addr, path).await;
        assert_eq!(status, 502, "{path}: {body}");
        assert!(body.contains("id=\"error\""), "{path}: {body}");
    }
    // Bad input is a 400 page, before the cluster is asked.
    let (status, body) = get(addr, "/topics/orders/messages?offset=abc").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("offset: &quot;abc&quot; is not a number"),
        "{body}"
    );
    // Unknown pages are 404s.
    assert_eq!(get(addr, "/nope").await.0, 404);
    // The lag history of a group never seen is empty, not an error.
    let (status, body) = get(addr, "/api/groups/g1/lag").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"{"group":"g1","samples":[]}"#), "{body}");
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
