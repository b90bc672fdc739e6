//! Shared by the CLI's tests: the binary, scratch directories, a bare HTTP client, `serve` as
//! a real process, and the database a server test runs on.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_evoucher"))
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("evoucher-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub fn spawn_serve(mut cmd: Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_owned();
    (child, addr)
}

/// `evoucher serve` as a real process on `database`, with admin token `token`; (child, addr).
pub fn serve_process(dir: &Path, database: &str, token: &str) -> (std::process::Child, String) {
    let mut cmd = bin();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .current_dir(dir)
        .env("EVOUCHER_ADMIN_TOKEN", token)
        .env("EVOUCHER_MASTER_KEY", "11".repeat(32));
    spawn_serve(cmd)
}

/// The server's database for a test: a SQLite file in `dir`, or with `EVOUCHER_TEST_POSTGRES`
/// (the test script's PostgreSQL pass) a fresh database on that server, made with psql.
pub fn server_database(dir: &Path, name: &str) -> String {
    match std::env::var("EVOUCHER_TEST_POSTGRES") {
        Ok(admin) if !admin.is_empty() => {
            let db = format!("cli_{name}_{}", std::process::id());
            for sql in [
                format!("DROP DATABASE IF EXISTS {db}"),
                format!("CREATE DATABASE {db}"),
            ] {
                let o = Command::new("psql")
                    .args([admin.as_str(), "-qc", &sql])
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{db}")
        }
        _ => format!("sqlite://{}", dir.join("server.db").display()),
    }
}

/// Every redemption the server holds for a device, through the status API (paged).
pub fn server_statuses(addr: &str, device_token: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    loop {
        let after = out.last().map(|x: &(i64, String)| x.0).unwrap_or(0);
        let (st, body) = http(
            addr,
            "GET",
            &format!("/api/v1/sync/status?after_seq={after}"),
            Some(device_token),
            None,
        );
        assert_eq!(st, 200, "{body}");
        let j: serde_json::Value = serde_json::from_str(&body).unwrap();
        let page = j["redemptions"].as_array().unwrap();
        if page.is_empty() {
            return out;
        }
        for r in page {
            out.push((
                r["seq"].as_i64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            ));
        }
    }
}

/// The admin token of the servers the tests start.
pub const ADMIN: &str = "server-test-admin-token-0123456789";

/// A child process killed when dropped.
pub struct Killed(pub std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` on `database` with extra flags.
pub fn serve_with(dir: &Path, database: &str, flags: &[&str]) -> (Killed, String) {
    let mut cmd = bin();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .args(flags)
        .current_dir(dir)
        .env("EVOUCHER_ADMIN_TOKEN", ADMIN)
        .env("EVOUCHER_MASTER_KEY", "11".repeat(32));
    let (child, addr) = spawn_serve(cmd);
    (Killed(child), addr)
}

/// JSON request to one of the servers.
pub fn call(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (st, text) = http(addr, method, path, token, body.as_deref());
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
