//! docs/server.md's walk-through, run as written: every `sh` block between its markers, in
//! order, in one bash, against a real `evoucher serve` it starts itself. The document cannot go
//! stale without this test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// The `sh` blocks of the walk-through, joined.
fn walkthrough() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/server.md")).unwrap();
    let part = doc
        .split("<!-- walk-through -->")
        .nth(1)
        .expect("the walk-through's start marker")
        .split("<!-- /walk-through -->")
        .next()
        .unwrap();
    let blocks: Vec<&str> = part
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    blocks.join("\n")
}

#[test]
fn the_curl_walk_through_in_server_md_runs_as_written() {
    for tool in ["curl", "python3", "bash"] {
        assert!(
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{tool} is needed (scripts/test.sh installs it)"
        );
    }
    let d = tmp("walkthrough");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_evoucher"))
        .parent()
        .unwrap()
        .to_owned();
    let script = format!("set -euo pipefail\n{}", walkthrough());
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&d)
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("BASE", format!("http://127.0.0.1:{port}"))
        .env_remove("EVOUCHER_ADMIN_TOKEN")
        .env_remove("EVOUCHER_MASTER_KEY")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the walk-through failed:\n{out}\n{err}");
    // What a reader is told to expect, seen in the output.
    for want in [
        "\"kid\"",                            // the program and its key
        "\"added\":3",                        // three beneficiaries imported
        "2 more issued",                      // the other imported beneficiaries
        "holds live voucher",                 // no second live voucher
        r#"{\"imported\": true}"#,            // the shape error says what is expected
        "enrolled device dev-",               // the phone enrolled
        "REDEEMED voucher",                   // offline
        "1 accepted",                         // synced
        "\"state\":\"redeemed\"",             // read back
        "redeemed [('accepted', 'SP-0042')]", // the timeline
    ] {
        assert!(out.contains(want), "expected {want:?} in:\n{out}\n{err}");
    }
    assert!(std::fs::read(d.join("letters.pdf"))
        .unwrap()
        .starts_with(b"%PDF-"));
}
