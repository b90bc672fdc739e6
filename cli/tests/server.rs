//! `evoucher serve` as real processes under pressure: stalled and slow clients, two server
//! processes on one database behaving as one (pushes, conflicts, enrolment races, creates), and
//! a bounded load test. Runs on SQLite, and again on PostgreSQL in `scripts/test.sh`'s
//! PostgreSQL pass (`EVOUCHER_TEST_POSTGRES`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use evoucher_core::ledger::{Ledger, RedeemRequest, Redeemer};
use evoucher_core::sync::SyncClient;
use serde_json::{json, Value};

/// Raise this process's open-file limit (the tests hold many sockets).
fn more_files(want: u64) {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < want {
            r.rlim_cur = want.min(r.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// A request that sends `head` and never finishes it.
fn stalled(addr: &str, head: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s
}

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A response (a 408) before the close is fine: keep reading to the close.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// GET /healthz on a fresh connection, with a deadline: whether it was answered 200.
fn healthy(addr: &str, within: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), within) else {
        return false;
    };
    s.set_read_timeout(Some(within)).unwrap();
    if s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

/// Stalled, slow and idle clients are cut by the server's limits, and `/healthz` stays
/// answerable with more than a thousand half-open connections held against it.
#[test]
fn stalled_and_slow_clients_cannot_starve_the_server() {
    more_files(8192);
    let d = tmp("stalled");
    let db = format!("sqlite://{}", d.join("server.db").display());
    // Generous timeouts: the server must stay answerable without waiting for them.
    let (_a, addr) = serve_with(&d, &db, &["--header-timeout", "60"]);
    let held: Vec<TcpStream> = (0..1500)
        .map(|_| stalled(&addr, "GET /healthz HTTP/1.1\r\nhost: x\r\n"))
        .collect();
    assert!(
        healthy(&addr, Duration::from_secs(10)),
        "healthz with 1,500 stalled connections"
    );
    drop(held);

    // Tight limits: a cap of 16 connections, 1 s for a head, 1 s for a body, 1 s idle.
    let (_b, addr) = serve_with(
        &d,
        &format!("sqlite://{}", d.join("server2.db").display()),
        &[
            "--max-connections",
            "16",
            "--header-timeout",
            "1",
            "--body-timeout",
            "1",
            "--idle-timeout",
            "1",
        ],
    );
    // A head never finished: cut after the header timeout.
    let mut s = stalled(&addr, "GET /healthz HTTP/1.1\r\nhost:");
    assert!(
        closed_within(&mut s, Duration::from_secs(5)),
        "header timeout"
    );
    // A body that stops arriving: 408 after the body timeout, then closed.
    let mut s = stalled(
        &addr,
        "POST /api/v1/devices/enrol HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{\"code\":",
    );
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A kept-alive connection left idle: closed after the idle timeout.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut s, Duration::from_secs(5)),
        "idle timeout"
    );
    // Four times the cap in stalled connections: they wait or are cut, and a health check
    // that queues behind them is answered once the stalled ones time out.
    let held: Vec<TcpStream> = (0..64)
        .map(|_| stalled(&addr, "GET /healthz HTTP/1.1\r\nhost:"))
        .collect();
    assert!(
        healthy(&addr, Duration::from_secs(30)),
        "healthz behind 64 stalled, cap 16"
    );
    drop(held);
}

/// The admin token on the command line is visible to every user in the process list: the
/// server says so; from the environment it does not.
#[test]
fn an_admin_token_on_the_command_line_is_warned_about() {
    let d = tmp("token-warning");
    let db = format!("sqlite://{}", d.join("server.db").display());
    for (on_command_line, warned) in [(true, true), (false, false)] {
        let mut cmd = bin();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
            .current_dir(&d)
            .env("EVOUCHER_MASTER_KEY", "11".repeat(32))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if on_command_line {
            cmd.args(["--admin-token", ADMIN]);
        } else {
            cmd.env("EVOUCHER_ADMIN_TOKEN", ADMIN);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.starts_with("listening on"), "{line}");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.contains("process list"), warned, "{err}");
        assert!(!err.contains(ADMIN), "the token itself is never printed");
    }
}

/// Two `evoucher serve` processes on one database behave as one server: concurrent creates of
/// the same id (one 201, the rest 409, never 500), one enrolment code posted by twenty phones
/// (exactly one device), and eight phones pushing the same vouchers through either process
/// (each voucher accepted exactly once).
#[test]
fn two_server_processes_on_one_database_behave_as_one() {
    more_files(4096);
    let d = tmp("scale-out");
    let db = server_database(&d, "scaleout");
    // Twenty phones racing for one code fail 19 times from this address: allow it.
    let flags = ["--max-failed-enrolments", "100"];
    let (_a, a) = serve_with(&d, &db, &flags);
    let (_b, b) = serve_with(&d, &db, &flags);
    let servers = [a.clone(), b.clone()];

    // Creates: 30 ids, each created three times at once, spread over both processes.
    let statuses: Vec<(String, u16)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..90)
            .map(|i| {
                let addr = servers[i % 2].clone();
                sc.spawn(move || {
                    let id = format!("p{}", i % 30);
                    let body = json!({"id": id, "name": "P", "issuer": "https://p.example", "currency": "KES", "amount": 100});
                    let (st, _) = call(&addr, "POST", "/api/v1/programs", Some(ADMIN), Some(&body));
                    let pid = format!("sp{}", i % 30);
                    let (st2, _) = call(&addr, "POST", "/api/v1/providers", Some(ADMIN), Some(&json!({"id": pid, "name": "S"})));
                    vec![(id, st), (pid, st2)]
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    for id in (0..30).flat_map(|i| [format!("p{i}"), format!("sp{i}")]) {
        let mut got: Vec<u16> = statuses
            .iter()
            .filter(|(x, _)| *x == id)
            .map(|x| x.1)
            .collect();
        got.sort();
        assert_eq!(got, [201, 409, 409], "{id}");
    }

    // One enrolment code, twenty phones at once, through both processes: one device.
    let (st, code) = call(
        &a,
        "POST",
        "/api/v1/providers/sp0/enrolment-codes",
        Some(ADMIN),
        None,
    );
    assert_eq!(st, 201, "{code}");
    let won: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..20)
            .map(|i| {
                let addr = servers[i % 2].clone();
                let code = code["code"].clone();
                sc.spawn(move || {
                    let key = evoucher_core::IssuerKey::generate().unwrap();
                    call(
                        &addr,
                        "POST",
                        "/api/v1/devices/enrol",
                        None,
                        Some(&json!({"code": code, "public_key": key.public_jwk().x})),
                    )
                    .0
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(won.iter().filter(|s| **s == 201).count(), 1, "{won:?}");
    assert!(won.iter().all(|s| *s == 201 || *s == 401), "{won:?}");

    // Pushes: 8 phones redeem the same 40 vouchers offline, then push through either process.
    let (st, issued) = call(
        &a,
        "POST",
        "/api/v1/programs/p1/vouchers",
        Some(ADMIN),
        Some(
            &json!({"beneficiaries": (0..40).map(|i| json!({"id": format!("B-{i}")})).collect::<Vec<_>>()}),
        ),
    );
    assert_eq!(st, 201, "{issued}");
    let texts: Vec<String> = issued["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect();
    let (_, jwks) = call(&a, "GET", "/api/v1/trust", None, None);
    let trust = evoucher_core::TrustStore::from_jwks_json(&jwks.to_string()).unwrap();
    let mut tokens = Vec::new();
    let mut outboxes = Vec::new();
    for i in 0..8 {
        let (_, c) = call(
            &a,
            "POST",
            "/api/v1/providers/sp1/enrolment-codes",
            Some(ADMIN),
            None,
        );
        let p = d.join(format!("push{i}.db"));
        let l = Ledger::open(&p).unwrap();
        let e = SyncClient::new(&format!("http://{}", servers[i % 2]), None)
            .unwrap()
            .enrol_ledger(&l, c["code"].as_str().unwrap())
            .unwrap();
        let now = evoucher_core::ledger_now();
        for t in &texts {
            let v = evoucher_core::verify(t, &trust, now).unwrap();
            l.redeem(
                &v,
                &Redeemer {
                    provider: "",
                    category: None,
                    device: "",
                },
                &RedeemRequest::Whole,
                now,
            )
            .unwrap();
        }
        tokens.push(e.token);
        outboxes.push(l.outbox(1000).unwrap());
    }
    let results: Vec<Vec<Value>> = std::thread::scope(|sc| {
        let hs: Vec<_> = outboxes
            .iter()
            .zip(&tokens)
            .enumerate()
            .map(|(i, (out, tok))| {
                let addr = servers[i % 2].clone();
                sc.spawn(move || {
                    let (st, r) = call(
                        &addr,
                        "POST",
                        "/api/v1/sync/redemptions",
                        Some(tok),
                        Some(&json!({"entries": out})),
                    );
                    assert_eq!(st, 200, "{r}");
                    r["results"].as_array().unwrap().clone()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut accepted = std::collections::HashMap::<String, usize>::new();
    for (out, res) in outboxes.iter().zip(&results) {
        assert_eq!(res.len(), 40);
        for (e, r) in out.iter().zip(res) {
            let st = r["status"].as_str().unwrap();
            assert!(st == "accepted" || st == "conflict", "{r}");
            if st == "accepted" {
                *accepted.entry(e.voucher_id.to_hex()).or_default() += 1;
            }
        }
    }
    assert_eq!(accepted.len(), 40, "every voucher accepted once");
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
}

/// The server's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// A bounded load test: 20 devices for 30 s on loopback, each redeeming (some vouchers on two
/// devices, so conflicts happen) and syncing in a loop through the real sync client. No sync
/// fails, the server ends up holding every entry of every ledger exactly once, no voucher is
/// accepted twice, and the server's memory stays flat after warming up.
#[test]
fn twenty_devices_for_thirty_seconds() {
    more_files(4096);
    let d = tmp("load");
    let db = server_database(&d, "load");
    let (server, addr) = serve_with(&d, &db, &[]);
    let pid = server.0.id();
    let base = format!("http://{addr}");
    call(
        &addr,
        "POST",
        "/api/v1/programs",
        Some(ADMIN),
        Some(
            &json!({"id": "load", "name": "Load", "issuer": "https://load.example", "currency": "KES", "amount": 100, "validity_days": 30}),
        ),
    );
    call(
        &addr,
        "POST",
        "/api/v1/providers",
        Some(ADMIN),
        Some(&json!({"id": "SP", "name": "SP"})),
    );
    let mut texts: Vec<String> = Vec::new();
    for part in 0..2 {
        let list: Vec<Value> = (0..5000)
            .map(|i| json!({"id": format!("B-{part}-{i}")}))
            .collect();
        let (st, issued) = call(
            &addr,
            "POST",
            "/api/v1/programs/load/vouchers",
            Some(ADMIN),
            Some(&json!({"beneficiaries": list})),
        );
        assert_eq!(st, 201);
        texts.extend(
            issued["vouchers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["text"].as_str().unwrap().to_owned()),
        );
    }
    let (_, jwks) = call(&addr, "GET", "/api/v1/trust", None, None);
    let trust = evoucher_core::TrustStore::from_jwks_json(&jwks.to_string()).unwrap();
    let texts = std::sync::Arc::new(texts);
    let trust = std::sync::Arc::new(trust);
    let stop_at = Instant::now() + Duration::from_secs(30);
    let samples = std::sync::Mutex::new(Vec::<(Duration, u64)>::new());
    let started = Instant::now();
    let ledgers: Vec<(std::path::PathBuf, String, usize)> = std::thread::scope(|sc| {
        let watcher = sc.spawn(|| {
            while Instant::now() < stop_at {
                samples
                    .lock()
                    .unwrap()
                    .push((started.elapsed(), rss_kib(pid)));
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let hs: Vec<_> = (0..20)
            .map(|i| {
                let (texts, trust, base, addr, d) = (
                    texts.clone(),
                    trust.clone(),
                    base.clone(),
                    addr.clone(),
                    d.clone(),
                );
                sc.spawn(move || {
                    let (_, c) = call(
                        &addr,
                        "POST",
                        "/api/v1/providers/SP/enrolment-codes",
                        Some(ADMIN),
                        None,
                    );
                    let p = d.join(format!("dev{i}.db"));
                    let l = Ledger::open(&p).unwrap();
                    let e = SyncClient::new(&base, None)
                        .unwrap()
                        .enrol_ledger(&l, c["code"].as_str().unwrap())
                        .unwrap();
                    let client = SyncClient::new(&base, Some(e.token.clone())).unwrap();
                    let trust_file = d.join(format!("dev{i}.trust.json"));
                    let who = Redeemer {
                        provider: "",
                        category: None,
                        device: "",
                    };
                    let mut n = 0usize;
                    let mut k = 0usize;
                    while Instant::now() < stop_at {
                        for _ in 0..5 {
                            // Each device works through its own vouchers; every fourth one is
                            // also its neighbour's, so two devices redeem it offline.
                            let idx = if k % 4 == 3 {
                                ((i + 1) % 20) * 500 + k
                            } else {
                                i * 500 + k
                            };
                            k += 1;
                            let now = evoucher_core::ledger_now();
                            let v = evoucher_core::verify(&texts[idx % texts.len()], &trust, now)
                                .unwrap();
                            if l.redeem(&v, &who, &RedeemRequest::Whole, now).is_ok() {
                                n += 1;
                            }
                        }
                        let r = client
                            .sync(&l, &trust_file)
                            .expect("no sync fails under load");
                        assert!(r.rejected.is_none(), "{r:?}");
                    }
                    let r = client.sync(&l, &trust_file).unwrap();
                    assert_eq!(r.remaining, 0);
                    (p, e.token, n)
                })
            })
            .collect();
        let out = hs.into_iter().map(|h| h.join().unwrap()).collect();
        watcher.join().unwrap();
        out
    });
    // Every entry of every ledger is on the server exactly once.
    let mut accepted = std::collections::HashMap::<String, usize>::new();
    let mut total = 0;
    for (p, token, n) in &ledgers {
        let l = Ledger::open(p).unwrap();
        let entries = l.entries(0, 100_000).unwrap();
        assert_eq!(entries.len(), *n);
        let held = server_statuses(&addr, token);
        assert_eq!(held.len(), entries.len(), "{}", p.display());
        let seqs: Vec<i64> = held.iter().map(|x| x.0).collect();
        assert_eq!(
            seqs,
            (1..=entries.len() as i64).collect::<Vec<_>>(),
            "no gap, no duplicate"
        );
        for (e, (_, st)) in entries.iter().zip(&held) {
            assert!(st == "accepted" || st == "conflict", "{st}");
            if st == "accepted" {
                *accepted.entry(e.voucher_id.to_hex()).or_default() += 1;
            }
        }
        total += n;
    }
    assert!(
        total > 200,
        "the devices made progress ({total} redemptions)"
    );
    assert!(
        accepted.values().all(|n| *n == 1),
        "a voucher accepted twice"
    );
    // Flat memory: after the first 10 s, the server's resident size grows by less than a
    // quarter (and less than 64 MiB).
    let s = samples.into_inner().unwrap();
    let warm = s
        .iter()
        .find(|(t, _)| *t >= Duration::from_secs(10))
        .unwrap()
        .1;
    let peak = s.iter().map(|x| x.1).max().unwrap();
    eprintln!("load: {total} redemptions by 20 devices in 30 s; server RSS {warm} KiB at 10 s, peak {peak} KiB");
    assert!(
        peak <= warm + (warm / 4).clamp(16 * 1024, 64 * 1024),
        "memory grew: {warm} -> {peak} KiB"
    );
}

/// Failed enrolments are limited per client address. Behind a trusted reverse proxy the client
/// is the last `X-Forwarded-For` address; from anyone else that header is ignored (a client
/// cannot escape the limit by making addresses up).
#[test]
fn failed_enrolments_are_limited_per_client_even_behind_a_proxy() {
    let d = tmp("proxy");
    let enrol = |addr: &str, forwarded: &str| {
        let body =
            r#"{"code":"not-a-code","public_key":"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik"}"#;
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /api/v1/devices/enrol HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-forwarded-for: {forwarded}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u16>()
            .unwrap()
    };
    let db = |n: &str| format!("sqlite://{}", d.join(n).display());
    let (_p, behind) = serve_with(
        &d,
        &db("a.db"),
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--max-failed-enrolments",
            "2",
        ],
    );
    assert_eq!(enrol(&behind, "192.0.2.9, 10.0.0.1"), 401);
    assert_eq!(enrol(&behind, "10.0.0.1"), 401);
    assert_eq!(
        enrol(&behind, "10.0.0.1"),
        429,
        "this client is over its limit"
    );
    assert_eq!(
        enrol(&behind, "10.0.0.2"),
        401,
        "another client behind the same proxy is not"
    );
    let (_q, direct) = serve_with(&d, &db("b.db"), &["--max-failed-enrolments", "2"]);
    assert_eq!(enrol(&direct, "10.0.0.1"), 401);
    assert_eq!(enrol(&direct, "10.0.0.2"), 401);
    assert_eq!(
        enrol(&direct, "10.0.0.3"),
        429,
        "a made-up header does not help"
    );
}

/// `POST /api/v1/session`: the status and the account the server answered with.
fn sign_in_status(addr: &str, name: &str, password: &str) -> (u16, Value) {
    let (st, body) = call(
        addr,
        "POST",
        "/api/v1/session",
        None,
        Some(&serde_json::json!({"name": name, "password": password})),
    );
    (st, body)
}

/// The operator's side of accounts: the first start makes `admin` with a one-time password in a
/// 0600 file (once: a restart makes no second one); `evoucher user add|list|reset|disable` on the
/// server's database, each audited; `evoucher audit verify` exits 0 on an intact log and 1, naming
/// the record, on one changed behind the database's back.
#[test]
fn people_commands_and_the_first_admin() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("people-commands");
    let db = server_database(&d, "people");
    let start = |d: &Path| {
        let mut cmd = bin();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
            .current_dir(d)
            .env_remove("EVOUCHER_ADMIN_TOKEN")
            .env("EVOUCHER_MASTER_KEY", "11".repeat(32))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("{line}"))
            .to_owned();
        (child, addr)
    };
    let stop = |child: std::process::Child| {
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // First start: the admin account and its one-time password file.
    let (child, addr) = start(&d);
    let file = d.join("evoucher-admin.password");
    let otp = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (st, body) = sign_in_status(&addr, "admin", &otp);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["user"]["must_change"], true, "{body}");
    let err = stop(child);
    assert!(err.contains("made the first account, `admin`"), "{err}");
    assert!(!err.contains(&otp), "the password is never printed");
    // A restart makes no second admin and leaves the file alone.
    let (child, _) = start(&d);
    let err = stop(child);
    assert!(!err.contains("made the first account"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), otp);

    let user = |args: &[&str]| {
        let o = bin()
            .arg("user")
            .args(args)
            .args(["--database", &db])
            .current_dir(&d)
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // Add: a one-time password, printed once; bad input is refused with exit 2, nothing added.
    let (code, out, err) = user(&["add", "acct1", "--role", "accountant", "--json"]);
    assert_eq!(code, 0, "{err}");
    let j: Value = serde_json::from_str(&out).unwrap();
    let acct_otp = j["one_time_password"].as_str().unwrap().to_owned();
    assert_eq!(j["user"]["role"], "accountant");
    for bad in [
        vec!["add", "x1", "--role", "king"],
        vec!["add", "acct1", "--role", "auditor"],
        vec!["add", "has space", "--role", "auditor"],
        vec!["add", "p1", "--role", "provider"],
        vec![
            "add",
            "pm1",
            "--role",
            "program_manager",
            "--program",
            "no-such-program",
        ],
        vec!["disable", "nobody"],
    ] {
        let (code, out, err) = user(&bad);
        assert_eq!(code, 2, "{bad:?}: {out} {err}");
        assert!(!err.trim().is_empty(), "{bad:?} says why");
    }
    let (code, out, _) = user(&["list", "--json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"admin") && names.contains(&"acct1"));
    assert!(!out.contains("hash"), "no password hashes listed: {out}");
    let (code, text, _) = user(&["list"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("acct1") && text.contains("(one-time password)"),
        "{text}"
    );

    let (child, addr) = start(&d);
    assert_eq!(sign_in_status(&addr, "acct1", &acct_otp).0, 200);
    // Reset: the old password stops, the new one works.
    let (code, out, _) = user(&["reset", "acct1", "--json"]);
    assert_eq!(code, 0);
    let new_otp = serde_json::from_str::<Value>(&out).unwrap()["one_time_password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_otp, acct_otp);
    assert_eq!(sign_in_status(&addr, "acct1", &acct_otp).0, 401);
    assert_eq!(sign_in_status(&addr, "acct1", &new_otp).0, 200);
    // Disable: no sign-in, with the same answer as a wrong password.
    let (code, out, _) = user(&["disable", "acct1"]);
    assert_eq!(code, 0, "{out}");
    let (st, body) = sign_in_status(&addr, "acct1", &new_otp);
    assert_eq!(st, 401, "{body}");
    assert_eq!(
        body["detail"],
        sign_in_status(&addr, "acct1", "wrong").1["detail"]
    );
    drop(stop(child));

    // The audit log: every change above recorded by the command line, and the chain intact.
    let verify = || {
        let o = bin()
            .args(["audit", "verify", "--json", "--database", &db])
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            serde_json::from_str::<Value>(&String::from_utf8_lossy(&o.stdout)).unwrap(),
        )
    };
    let (code, v) = verify();
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["intact"], true);
    // admin created, acct1 created, reset, disabled, and the sign-ins (3 good, 4 refused).
    assert!(v["records"].as_i64().unwrap() >= 4, "{v}");
    // Changed behind the database's back (its append-only triggers dropped first).
    if db.starts_with("postgres") {
        let o = Command::new("psql")
            .args([
                db.as_str(),
                "-qc",
                "ALTER TABLE audit DISABLE TRIGGER USER; UPDATE audit SET detail = '{}' WHERE seq = 2",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        let c = rusqlite::Connection::open(d.join("server.db")).unwrap();
        c.execute_batch(
            "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
             UPDATE audit SET detail = '{}' WHERE seq = 2;",
        )
        .unwrap();
    }
    let (code, v) = verify();
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["intact"], false);
    assert_eq!(v["seq"], 2);
}

/// Settings `serve` cannot work with stop it with exit 2 and a reason, before anything is made:
/// a public URL with a path, identity provider settings that are incomplete, not https, or map
/// to an unknown or provider role, and a config file with a misspelt key.
#[test]
fn bad_server_settings_stop_serve_before_anything_is_made() {
    let d = tmp("bad-settings");
    std::fs::write(d.join("secret"), "s3cret").unwrap();
    std::fs::write(d.join("typo.toml"), "listne = \"127.0.0.1:0\"\n").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--public-url", "https://v.example.org/back-office"],
            "public URL",
        ),
        (
            &["--oidc-issuer", "https://id.example.org"],
            "--oidc-client-id",
        ),
        (
            &[
                "--oidc-issuer",
                "https://id.example.org",
                "--oidc-client-id",
                "ev",
            ],
            "secret",
        ),
        (
            &[
                "--oidc-issuer",
                "http://id.example.org",
                "--oidc-client-id",
                "ev",
                "--oidc-client-secret-file",
                "secret",
            ],
            "https",
        ),
        (
            &[
                "--oidc-issuer",
                "https://id.example.org",
                "--oidc-client-id",
                "ev",
                "--oidc-client-secret-file",
                "secret",
                "--oidc-role",
                "g=king",
            ],
            "not an evoucher role",
        ),
        (
            &[
                "--oidc-issuer",
                "https://id.example.org",
                "--oidc-client-id",
                "ev",
                "--oidc-client-secret-file",
                "secret",
                "--oidc-role",
                "shops=provider",
            ],
            "provider",
        ),
        (&["--config", "typo.toml"], "listne"),
    ];
    for (flags, says) in cases {
        let o = bin()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(*flags)
            .current_dir(&d)
            .env_remove("EVOUCHER_ADMIN_TOKEN")
            .env_remove("EVOUCHER_OIDC_CLIENT_SECRET")
            .env("EVOUCHER_MASTER_KEY", "11".repeat(32))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
        assert!(!err.contains("s3cret"), "the secret is never printed");
        assert!(
            !d.join("evoucher-server.db").exists(),
            "{flags:?} made a database"
        );
        assert!(
            !d.join("evoucher-admin.token").exists(),
            "{flags:?} made a token"
        );
    }
}
