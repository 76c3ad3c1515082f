//! A real `gregor broker` process for the binary's integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct BrokerProcess {
    child: Option<Child>,
    pub port: u16,
}

impl BrokerProcess {
    pub fn start(dir: &std::path::Path, port: u16) -> Self {
        Self::spawn(dir, &["--listen".into(), format!("127.0.0.1:{port}")]).ready()
    }

    /// Starts `gregor broker --data-dir <dir> <args>` without waiting for it (the nodes
    /// of a cluster become ready only once a quorum of them runs).
    pub fn spawn(dir: &std::path::Path, args: &[String]) -> Starting {
        std::fs::create_dir_all(dir).expect("dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
            .args(["broker", "--data-dir"])
            .arg(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.with_extension("log"))
                    .expect("log file"),
            )
            .spawn()
            .expect("start broker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Starting { child, lines: rx }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM and wait: the broker must exit 0 after flushing.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running broker");
        let pid = child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        // Wait for the exit on a helper thread, with a deadline on the channel.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send((status, child));
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((status, _)) => status.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").arg("-KILL").arg(&pid).status();
                panic!("broker did not stop on SIGTERM")
            }
        }
    }
}

/// A broker process started but not yet ready.
pub struct Starting {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Starting {
    /// Waits (60 s at most) for the ready line, which names the client port.
    pub fn ready(self) -> BrokerProcess {
        let Starting { child, lines } = self;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let port = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = lines.recv_timeout(left).expect("ready line");
            if let Some(rest) = line.split("ready: listening on 127.0.0.1:").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
            }
        };
        BrokerProcess {
            child: Some(child),
            port,
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
