//! The `gregor` client commands against a real broker process: every command's JSON
//! output, a produce → consume round trip through the CLI alone, group lag, and the
//! error paths (unreachable broker, unknown topic, bad config).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::BrokerProcess;
use serde_json::Value;

fn gregor(bootstrap: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .args(["-b", bootstrap])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gregor");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

/// Runs a command that must succeed and returns its stdout.
fn ok(bootstrap: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = gregor(bootstrap, args, stdin);
    assert!(
        out.status.success(),
        "gregor {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(bootstrap: &str, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    serde_json::from_str(ok(bootstrap, &a, None).trim()).expect("json output")
}

#[test]
fn topics_produce_consume_groups_and_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("broker"), 0);
    let b = &broker.bootstrap();

    let created = json(
        b,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "2",
            "-c",
            "retention.ms=3600000",
        ],
    );
    assert_eq!(created["created"], "orders");
    let list = json(b, &["topic", "list"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "orders" && t["partitions"] == 2));
    // Connection options may also come before the command, as users type them.
    let before = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["-b", b, "--output", "json", "topic", "list"])
        .output()
        .unwrap();
    assert!(
        before.status.success(),
        "{}",
        String::from_utf8_lossy(&before.stderr)
    );
    let before: Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(before, list);

    // Produce through the CLI: keys, a header, an explicit partition.
    let input = "k1:one\nk2:two\nk3:three\n";
    let produced = ok(
        b,
        &["produce", "orders", "-K", ":", "-H", "src=cli", "-p", "0"],
        Some(input),
    );
    assert!(produced.contains("delivered 3 of 3"), "{produced}");

    // Consume it back, as JSON lines and as a template.
    let lines = ok(
        b,
        &[
            "consume",
            "orders",
            "--from",
            "beginning",
            "-e",
            "--output",
            "json",
        ],
        None,
    );
    let recs: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["key"], "k1");
    assert_eq!(recs[2]["value"], "three");
    assert_eq!(recs[1]["headers"][0][0], "src");
    let templ = ok(
        b,
        &[
            "consume",
            "orders",
            "--from",
            "1",
            "-e",
            "-f",
            "%p/%o %k=%s\\n",
        ],
        None,
    );
    assert_eq!(templ, "0/1 k2=two\n0/2 k3=three\n");

    let desc = json(b, &["topic", "describe", "orders"]);
    assert_eq!(desc["partitions"][0]["end_offset"], 3);
    assert_eq!(desc["configs"]["retention.ms"], "3600000");
    ok(
        b,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "segment.bytes=1048576",
            "--delete",
            "retention.ms",
        ],
        None,
    );
    let desc = json(b, &["topic", "describe", "orders"]);
    assert_eq!(desc["configs"]["segment.bytes"], "1048576");
    assert!(desc["configs"].get("retention.ms").is_none());
    ok(
        b,
        &["topic", "add-partitions", "orders", "--count", "4"],
        None,
    );
    assert_eq!(
        json(b, &["topic", "describe", "orders"])["partitions"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // A group reads everything and commits; its lag is what is produced after.
    let read = ok(
        b,
        &[
            "consume",
            "orders",
            "--group",
            "billing",
            "--from",
            "beginning",
            "-e",
        ],
        None,
    );
    assert_eq!(read.lines().count(), 3);
    let g = json(b, &["group", "describe", "billing"]);
    let lag: i64 = g["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 0, "{g}");
    ok(b, &["produce", "orders", "-p", "0"], Some("a\nb\n"));
    let g = json(b, &["group", "describe", "billing"]);
    let p0 = g["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["partition"] == 0)
        .unwrap()
        .clone();
    assert_eq!(
        (
            p0["committed"].as_i64(),
            p0["end"].as_i64(),
            p0["lag"].as_i64()
        ),
        (Some(3), Some(5), Some(2))
    );
    let groups = json(b, &["group", "list"]);
    assert!(groups
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["group"] == "billing"));
    // reset-offsets: a dry run changes nothing; --execute moves the group, and a real
    // group consumer resumes there.
    let committed_p0 = |g: &Value| {
        g["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["partition"] == 0)
            .unwrap()["committed"]
            .clone()
    };
    let args = [
        "group",
        "reset-offsets",
        "billing",
        "--topic",
        "orders",
        "--to-offset",
        "1",
    ];
    assert_eq!(json(b, &args)["executed"], false);
    assert_eq!(committed_p0(&json(b, &["group", "describe", "billing"])), 3);
    let mut exec = args.to_vec();
    exec.push("--execute");
    ok(b, &exec, None);
    let resumed = ok(
        b,
        &[
            "consume", "orders", "--group", "billing", "-e", "-f", "%p/%o\\n",
        ],
        None,
    );
    assert_eq!(resumed, "0/1\n0/2\n0/3\n0/4\n");
    let earliest = json(
        b,
        &[
            "group",
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(earliest["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["new"] == 0));
    // delete-offsets removes just the named partition's commit.
    let del = json(
        b,
        &[
            "group",
            "delete-offsets",
            "billing",
            "--topic",
            "orders",
            "-p",
            "0",
        ],
    );
    assert_eq!(del["failed"].as_array().unwrap().len(), 0, "{del}");
    let left = json(b, &["group", "describe", "billing"]);
    assert!(
        left["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["partition"] != 0),
        "{left}"
    );
    ok(b, &["group", "delete", "billing"], None);
    let groups = json(b, &["group", "list"]);
    assert!(!groups
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["group"] == "billing"));

    // --from @timestamp: records at or after that time only.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    let future = format!("@{now_ms}");
    let none = ok(b, &["consume", "orders", "--from", &future, "-e"], None);
    assert_eq!(none, "", "nothing is newer than a minute from now");

    // The load generator, with JSON reports (and the raw-protocol mode).
    let p = json(
        b,
        &[
            "bench", "produce", "--topic", "bench", "--count", "2000", "--quiet",
        ],
    );
    assert_eq!(
        (p["messages"].as_u64(), p["errors"].as_u64()),
        (Some(2000), Some(0))
    );
    assert!(p["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let c = json(
        b,
        &[
            "bench", "consume", "--topic", "bench", "--count", "2000", "--quiet",
        ],
    );
    assert_eq!(c["messages"].as_u64(), Some(2000));
    let r = json(
        b,
        &[
            "bench",
            "produce-raw",
            "--topic",
            "bench",
            "--count",
            "16000",
        ],
    );
    assert_eq!(
        (r["messages"].as_u64(), r["errors"].as_u64()),
        (Some(16000), Some(0))
    );

    let info = json(b, &["cluster", "info"]);
    assert_eq!(info["brokers"].as_array().unwrap().len(), 1);
    assert_eq!(info["controller"], 1);
    assert_eq!(info["topics"], 2);
    ok(b, &["topic", "delete", "orders", "bench"], None);
    assert!(json(b, &["topic", "list"]).as_array().unwrap().is_empty());
}

#[test]
fn errors_are_one_clear_line_and_a_non_zero_exit() {
    // Nothing listens on port 1.
    let out = gregor("127.0.0.1:1", &["topic", "list"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "gregor: cannot reach 127.0.0.1:1: connection refused"
    );

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("broker"), 0);
    let b = &broker.bootstrap();
    // Each failure is exactly one line naming the problem (librdkafka's error code and
    // its description where the broker answered with one).
    let out = gregor(b, &["topic", "describe", "nope"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "gregor: topic nope: UnknownTopicOrPartition (Broker: Unknown topic or partition)\n"
    );
    let out = gregor(b, &["topic", "create", "t", "-c", "no.such.config=1"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "gregor: cannot create topic t: InvalidConfig (Broker: Configuration is invalid)\n"
    );
    let out = gregor(b, &["consume", "nope", "-e"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "gregor: unknown topic nope\n"
    );
}
