//! Reimbursement with the real processes: a phone (the CLI on an enrolled ledger) redeems,
//! syncs and claims with a receipt photo, its submit cut off by a server that is down and
//! resumed as the same claim; people approve through the API; the payable PDF is checked by
//! `evoucher payable verify` and an edited copy refused; the pain.001 batch goes out, a
//! pain.002 comes back, and the phone's `evoucher sync` shows the claim paid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};

use common::*;
use serde_json::{json, Value};

/// An API token for a new account of `role`, made the way a person would: added by the
/// admin, signed in with the one-time password, password changed, token made.
fn person_token(addr: &str, name: &str, role: &str) -> String {
    let (st, u) = call(
        addr,
        "POST",
        "/api/v1/users",
        Some(ADMIN),
        Some(&json!({"name": name, "role": role})),
    );
    assert_eq!(st, 201, "{u}");
    let otp = u["one_time_password"].as_str().unwrap();
    let (st, head, body) = raw(
        addr,
        "POST",
        "/api/v1/session",
        &[],
        &json!({"name": name, "password": otp}).to_string(),
    );
    assert_eq!(st, 200, "{body}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim().split(';').next().unwrap().to_owned())
        })
        .unwrap();
    let csrf = serde_json::from_str::<Value>(&body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let origin = format!("http://{addr}");
    let h = [
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
        ("origin", origin.as_str()),
    ];
    let (st, _, body) = raw(
        addr,
        "POST",
        "/api/v1/me/password",
        &h,
        &json!({"current": otp, "new": format!("{name}-password-123")}).to_string(),
    );
    assert_eq!(st, 204, "{body}");
    let (st, _, body) = raw(
        addr,
        "POST",
        "/api/v1/me/tokens",
        &h,
        &json!({"name": "test"}).to_string(),
    );
    assert_eq!(st, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A request with extra headers; (status, head, body).
fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(s, "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (
        head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        head.to_owned(),
        body.to_owned(),
    )
}

/// Bytes with the answer's raw body (PDFs, files).
fn get_bytes(addr: &str, path: &str, token: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out[..at])
    );
    out[at + 4..].to_vec()
}

fn evoucher(args: &[&str]) -> (i32, String, String) {
    let o = bin().args(args).output().unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_phone_claims_and_is_paid() {
    let d = tmp("reimbursement");
    let db = server_database(&d, "reimbursement");
    let (server, addr) = serve_with(&d, &db, &[]);
    let base = format!("http://{addr}");
    // The program (KES, with its paying account) and the provider (paid by bank).
    let (st, v) = call(
        &addr,
        "POST",
        "/api/v1/programs",
        Some(ADMIN),
        Some(
            &json!({"id": "food", "name": "Food", "issuer": "https://food.example", "currency": "KES", "amount": 1000, "payer": {"name": "Food Program", "account": "KE00PROGRAM0001"}}),
        ),
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = call(
        &addr,
        "POST",
        "/api/v1/providers",
        Some(ADMIN),
        Some(
            &json!({"id": "SP-1", "name": "Mama Mboga", "category": "grocery", "payout": {"kind": "bank", "holder": "Mama Mboga Ltd", "number": "0123456789012", "bank": "Equity Bank"}}),
        ),
    );
    assert_eq!(st, 201, "{v}");
    let (_, c) = call(
        &addr,
        "POST",
        "/api/v1/providers/SP-1/enrolment-codes",
        Some(ADMIN),
        None,
    );
    let ledger = d.join("phone.db");
    let ledger = ledger.to_str().unwrap();
    assert_eq!(
        evoucher(&[
            "enrol",
            "--server",
            &base,
            "--code",
            c["code"].as_str().unwrap(),
            "--ledger",
            ledger
        ])
        .0,
        0
    );
    assert_eq!(evoucher(&["sync", "--ledger", ledger]).0, 0);
    let (_, issued) = call(
        &addr,
        "POST",
        "/api/v1/programs/food/vouchers",
        Some(ADMIN),
        Some(&json!({"beneficiaries": [{"id": "B-1"}, {"id": "B-2"}]})),
    );
    for v in issued["vouchers"].as_array().unwrap() {
        let (code, out, err) =
            evoucher(&["redeem", "--ledger", ledger, v["text"].as_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
    }
    assert_eq!(evoucher(&["sync", "--ledger", ledger]).0, 0);

    // The claim, with a receipt photo. First the server is down: nothing is lost, and running
    // it again later resumes the same claim.
    let photo = d.join("receipt.jpg");
    let img =
        image::GrayImage::from_fn(80, 60, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]));
    img.save(&photo).unwrap();
    let txt = d.join("notes.txt");
    std::fs::write(&txt, "not a photo").unwrap();
    let (code, _, err) = evoucher(&[
        "claim",
        "submit",
        "--ledger",
        ledger,
        "--program",
        "food",
        "--doc",
        txt.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "a text file is not a supporting document");
    assert!(err.contains("JPEG or PNG photo or a PDF"), "{err}");
    drop(server);
    let (code, _, err) = evoucher(&[
        "claim",
        "submit",
        "--ledger",
        ledger,
        "--program",
        "food",
        "--doc",
        photo.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing lost"), "{err}");
    assert!(std::path::Path::new(&format!("{ledger}.claim.json")).exists());
    let (server, addr2) = serve_with(&d, &db, &[]);
    let base2 = format!("http://{addr2}");
    let (code, out, err) = evoucher(&[
        "claim",
        "submit",
        "--ledger",
        ledger,
        "--server",
        &base2,
        "--program",
        "food",
        "--doc",
        photo.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("resuming"), "{err}");
    let claim: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            claim["state"].as_str(),
            claim["claimed"].as_i64(),
            claim["documents"].as_array().unwrap().len()
        ),
        (Some("submitted"), Some(2000), 1)
    );
    let id = claim["id"].as_str().unwrap().to_owned();
    // Again: nothing new to claim, and the same claim stays the only one.
    let (code, _, err) = evoucher(&[
        "claim",
        "submit",
        "--ledger",
        ledger,
        "--server",
        &base2,
        "--program",
        "food",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to claim"), "{err}");
    let (code, out, _) = evoucher(&[
        "claim", "list", "--ledger", ledger, "--server", &base2, "--json",
    ]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["claims"].as_array().unwrap().len(), 1);

    // The accountant lowers a line and approves; the cash manager approves.
    let acct = person_token(&addr2, "acct", "accountant");
    let cash = person_token(&addr2, "cash", "cash_manager");
    let (_, full) = call(
        &addr2,
        "GET",
        &format!("/api/v1/claims/{id}"),
        Some(&acct),
        None,
    );
    let line = full["lines"][0]["redemption"].as_str().unwrap();
    // First the accountant returns it with a question; the phone sees it and answers with a
    // delivery note, and the claim is back at stage 1 with both documents.
    let (st, v) = call(
        &addr2,
        "POST",
        &format!("/api/v1/claims/{id}/decision"),
        Some(&acct),
        Some(&json!({"stage": 1, "decision": "return", "reason": "please add the delivery note"})),
    );
    assert_eq!(st, 200, "{v}");
    let (code, out, _) = evoucher(&["sync", "--ledger", ledger, "--server", &base2]);
    assert_eq!(code, 0);
    assert!(
        out.contains("RETURNED with a question: please add the delivery note")
            && out.contains(&format!("evoucher claim answer {id}")),
        "{out}"
    );
    let (code, _, err) = evoucher(&[
        "claim", "answer", &id, "--ledger", ledger, "--server", &base2,
    ]);
    assert_eq!(
        code, 2,
        "an answer with nothing in it is refused before anything is sent"
    );
    assert!(err.contains("--note, --doc or both"), "{err}");
    let delivery = d.join("delivery.png");
    image::GrayImage::from_fn(40, 30, |x, y| image::Luma([((x * 5 + y) % 256) as u8]))
        .save(&delivery)
        .unwrap();
    let (code, out, err) = evoucher(&[
        "claim",
        "answer",
        &id,
        "--ledger",
        ledger,
        "--server",
        &base2,
        "--doc",
        delivery.to_str().unwrap(),
        "--note",
        "delivery note attached",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let answered: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (answered["state"].as_str(), answered["stage"].as_i64()),
        (Some("submitted"), Some(1)),
        "{answered}"
    );
    let (_, full) = call(
        &addr2,
        "GET",
        &format!("/api/v1/claims/{id}"),
        Some(&acct),
        None,
    );
    assert_eq!(full["documents"].as_array().unwrap().len(), 2, "{full}");
    assert!(
        full.to_string().contains("delivery note attached"),
        "the answer is in the claim's history: {full}"
    );
    let (st, v) = call(
        &addr2,
        "POST",
        &format!("/api/v1/claims/{id}/decision"),
        Some(&acct),
        Some(
            &json!({"stage": 1, "decision": "approve", "lines": [{"redemption": line, "approved": 800, "reason": "receipt shows 8.00"}]}),
        ),
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = call(
        &addr2,
        "POST",
        &format!("/api/v1/claims/{id}/decision"),
        Some(&cash),
        Some(&json!({"stage": 2, "decision": "approve"})),
    );
    assert_eq!(st, 200, "{v}");
    let pay = v["payable"]["id"].as_str().unwrap().to_owned();
    let (code, out, _) = evoucher(&["sync", "--ledger", ledger, "--server", &base2]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("claim {id}")) && out.contains("approved, 18.00 KES to be paid"),
        "{out}"
    );

    // The switch's check of the account-payable PDF, and of an edited copy.
    let pdf = get_bytes(&addr2, &format!("/api/v1/payables/{pay}/pdf"), &cash);
    std::fs::write(d.join("payable.pdf"), &pdf).unwrap();
    let (_, jwks) = call(&addr2, "GET", "/api/v1/payables/trust", None, None);
    std::fs::write(d.join("payables.jwks"), jwks.to_string()).unwrap();
    let trust = d.join("payables.jwks");
    let (code, out, err) = evoucher(&[
        "payable",
        "verify",
        d.join("payable.pdf").to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("VALID") && out.contains("pay 18.00 KES to Mama Mboga"),
        "{out}"
    );
    let mut doc = lopdf::Document::load_mem(&pdf).unwrap();
    let page = *doc.get_pages().values().next().unwrap();
    let content = String::from_utf8_lossy(&doc.get_page_content(page).unwrap())
        .replace("0123456789012", "0123456789999");
    doc.change_page_content(page, content.into_bytes()).unwrap();
    doc.save(d.join("edited.pdf")).unwrap();
    let (code, out, _) = evoucher(&[
        "payable",
        "verify",
        d.join("edited.pdf").to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["mismatches"][0]["field"], "Account number");
    let (code, _, err) = evoucher(&[
        "payable",
        "verify",
        "/no/such.pdf",
        "--trust",
        trust.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");

    // Paid: the batch out, the report back, the phone told.
    let (st, b) = call(
        &addr2,
        "POST",
        "/api/v1/payments/batches",
        Some(&cash),
        Some(&json!({"format": "pain.001", "program": "food"})),
    );
    assert_eq!(st, 201, "{b}");
    let report = format!("<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\"><CstmrPmtStsRpt><GrpHdr><MsgId>S</MsgId><CreDtTm>2026-11-26T12:00:00Z</CreDtTm></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>{}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><OrgnlPmtInfId>x</OrgnlPmtInfId><TxInfAndSts><OrgnlEndToEndId>{pay}</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>", b["id"].as_str().unwrap());
    let (st, _, body) = raw(
        &addr2,
        "POST",
        "/api/v1/payments/results",
        &[("authorization", &format!("Bearer {cash}"))],
        &report,
    );
    assert_eq!(st, 200, "{body}");
    let (code, out, _) = evoucher(&["sync", "--ledger", ledger, "--server", &base2]);
    assert_eq!(code, 0);
    assert!(out.contains("PAID 18.00 KES"), "{out}");
    let (_, out, _) = evoucher(&["sync", "--json", "--ledger", ledger, "--server", &base2]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["claims"][0]["state"], "paid");
    drop(server);
}
