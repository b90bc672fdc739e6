//! What the server benchmarks share: the real server as a process, its CPU and memory, and
//! a few API calls.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

pub const ADMIN: &str = "bench-admin-token-0123456789abcdef";

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(database: &str, dir: &std::path::Path) -> Server {
    let bin = std::env::var("EVOUCHER_BIN").expect("EVOUCHER_BIN: the evoucher binary");
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .current_dir(dir)
        .env("EVOUCHER_ADMIN_TOKEN", ADMIN)
        .env("EVOUCHER_MASTER_KEY", "33".repeat(32))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_owned();
    Server { child, base: addr }
}

/// CPU seconds (user + system) the process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks / hz
}

/// (current RSS, peak RSS) in MiB.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

pub fn post(c: &reqwest::blocking::Client, url: &str, token: &str, body: &Value) -> Value {
    let r = c.post(url).bearer_auth(token).json(body).send().unwrap();
    let st = r.status();
    let j: Value = r.json().unwrap_or(Value::Null);
    assert!(st.is_success(), "{url}: {st} {j}");
    j
}

pub fn issue(
    c: &reqwest::blocking::Client,
    base: &str,
    program: &str,
    ids: &[String],
) -> Vec<Value> {
    let mut out = Vec::new();
    for part in ids.chunks(10_000) {
        let bens: Vec<Value> = part.iter().map(|i| json!({ "id": i })).collect();
        let j = post(
            c,
            &format!("{base}/api/v1/programs/{program}/vouchers"),
            ADMIN,
            &json!({ "beneficiaries": bens }),
        );
        out.extend(j["vouchers"].as_array().unwrap().iter().cloned());
    }
    out
}

/// A fresh database on the PostgreSQL server at `admin` (its URL).
pub fn fresh_pg(admin: &str, name: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Executor;
        let pool = sqlx::PgPool::connect(admin).await.unwrap();
        pool.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .await
        .unwrap();
        pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
    });
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    format!("{base}/{name}")
}

/// An API token of a new account with this role: made by the admin token, signed in with its
/// one-time password, the password changed, a token made.
pub fn person_token(c: &reqwest::blocking::Client, base: &str, name: &str, role: &str) -> String {
    let u = post(
        c,
        &format!("{base}/api/v1/users"),
        ADMIN,
        &json!({"name": name, "role": role}),
    );
    let otp = u["one_time_password"].as_str().unwrap().to_owned();
    let r = c
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"name": name, "password": otp}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "sign-in: {}", r.status());
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let csrf = r.json::<Value>().unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_session = |path: &str, body: Value| {
        let r = c
            .post(format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("origin", base)
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.text().unwrap()
    };
    with_session(
        "/api/v1/me/password",
        json!({"current": otp, "new": format!("{name}-password-123")}),
    );
    let t: Value =
        serde_json::from_str(&with_session("/api/v1/me/tokens", json!({"name": "bench"}))).unwrap();
    t["token"].as_str().unwrap().to_owned()
}

/// Enrol a phone (its device key's public half) with a fresh code of `provider`; its token.
pub fn enrol(c: &reqwest::blocking::Client, base: &str, provider: &str, public: &str) -> String {
    let code = post(
        c,
        &format!("{base}/api/v1/providers/{provider}/enrolment-codes"),
        ADMIN,
        &json!({}),
    );
    let e: Value = c
        .post(format!("{base}/api/v1/devices/enrol"))
        .json(&json!({"code": code["code"], "public_key": public}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    e["token"].as_str().unwrap().to_owned()
}
