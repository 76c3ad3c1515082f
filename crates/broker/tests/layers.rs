//! The layers ARCHITECTURE.md promises, checked on the sources: the coordinators and
//! replication see the broker only through `host::Host` (never `Broker`, which owns
//! them), and `gregor-coordinator` never depends on the broker.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("cannot read {}", dir.display());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `line` (code, not a comment) names the `Broker` struct.
fn names_broker(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("Broker").any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + "Broker".len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn coordinators_and_replication_never_name_the_broker() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in ["group", "txn", "share", "replication"] {
        rust_files(&src.join(dir), &mut files);
    }
    files.push(src.join("coordinator_partition.rs"));
    files.push(src.join("host.rs"));
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut offenders = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if names_broker(line) {
                offenders.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "these name `Broker` (use `host::Host` or a narrow trait):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_coordinator_crate_does_not_depend_on_the_broker() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap_or_default();
    assert!(
        text.contains("name = \"gregor-coordinator\""),
        "{}",
        manifest.display()
    );
    assert!(!text.contains("gregor-broker"));
}

#[test]
fn the_check_finds_what_it_looks_for() {
    assert!(names_broker("use crate::broker::Broker;"));
    assert!(names_broker("fn f(b: &Arc<Broker>) {}"));
    assert!(!names_broker("let c = BrokerClient::connect();"));
    assert!(!names_broker("// the Broker owns it"));
    assert!(!names_broker("InterBrokerSecurity"));
    // Its error type is not the broker.
    assert!(!names_broker("use crate::broker::StartError;"));
}
