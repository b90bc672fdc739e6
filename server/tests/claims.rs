//! Reimbursement: claims made by a phone and by a provider account, documents, staged
//! approval with segregation of duties, the signed payable and its PDF checked and refused when
//! edited, payment batches (pain.001, CSV) and the switch's results (pain.002, CSV). Runs on
//! SQLite and, in the test script's second pass, PostgreSQL (the concurrency cases matter
//! there: several connections).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{request, request_raw, Forger, Says};
use evoucher_server::{AppState, Config};
use serde_json::{json, Value};
use sha2::Digest;

const ADMIN: &str = "claims-admin-token-0123456789";

async fn state(name: &str) -> AppState {
    let dir = std::env::temp_dir().join(format!("evoucher-claims-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    AppState::new(&Config {
        database: common::database(&dir, name).await,
        admin_token: ADMIN.into(),
        master_key: [5; 32],
    })
    .await
    .unwrap()
}

/// An API token for a new account with this role (password step skipped: the token is what
/// the tests act with).
async fn token(s: &AppState, name: &str, role: &str, extra: Value) -> String {
    let mut body = json!({"name": name, "role": role});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (st, _, v) = request(s, "POST", "/api/v1/users", Some(ADMIN), Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["user"]["id"].as_str().unwrap().to_owned();
    let mut c = s.db.acquire().await.unwrap();
    sqlx::query("UPDATE users SET must_change = 0 WHERE id = $1")
        .bind(&id)
        .execute(&mut *c)
        .await
        .unwrap();
    evoucher_server::users::new_token(&mut c, &id, "tests")
        .await
        .unwrap()
        .1
}

fn bank() -> Value {
    json!({"kind": "bank", "holder": "Mama Mboga Ltd", "number": "0123456789012", "bank": "Equity Bank", "bic": "EQBLKENA"})
}

/// A program (KES, 1,000 a voucher; rice at 200 a kg), a provider paid by bank, its phone,
/// `n` vouchers redeemed and accepted. Returns the phone and the redemption ids.
async fn world(s: &AppState, n: usize) -> (Forger, Vec<String>) {
    let (st, _, v) = request(s, "POST", "/api/v1/programs", Some(ADMIN), Some(json!({
        "id": "food", "name": "Food", "issuer": "https://food.example", "currency": "KES", "amount": 1000,
        "item_prices": {"rice": 200},
        "payer": {"name": "Food Program", "account": "KE00PROGRAM0001", "bic": "CBKEKENX"}
    }))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, _, v) = request(
        s,
        "POST",
        "/api/v1/providers",
        Some(ADMIN),
        Some(json!({
            "id": "SP-1", "name": "Mama Mboga Grocers", "category": "grocery", "payout": bank()
        })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let mut phone = Forger::enrol(s, ADMIN, "SP-1").await;
    let ids = if n == 0 {
        Vec::new()
    } else {
        redeem(s, &mut phone, "food", n, 0).await
    };
    (phone, ids)
}

/// Issue `n` vouchers of `program` and redeem each on `phone`; their redemption ids.
async fn redeem(
    s: &AppState,
    phone: &mut Forger,
    program: &str,
    n: usize,
    from: usize,
) -> Vec<String> {
    redeem_texts(s, phone, program, n, from)
        .await
        .into_iter()
        .map(|x| x.0)
        .collect()
}

/// As [`redeem`]: (redemption id, voucher text) each.
async fn redeem_texts(
    s: &AppState,
    phone: &mut Forger,
    program: &str,
    n: usize,
    from: usize,
) -> Vec<(String, String)> {
    let list: Vec<Value> = (from..from + n)
        .map(|i| json!({"id": format!("B-{i}")}))
        .collect();
    let (st, _, v) = request(
        s,
        "POST",
        &format!("/api/v1/programs/{program}/vouchers"),
        Some(ADMIN),
        Some(json!({"beneficiaries": list})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let mut ids = Vec::new();
    let entries: Vec<_> = v["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            phone.entry(Says {
                voucher_text: x["text"].as_str().unwrap().into(),
                amount: Some(1000),
                currency: Some("KES".into()),
                ..Says::default()
            })
        })
        .collect();
    for chunk in entries.chunks(500) {
        for r in phone.push(s, chunk).await {
            assert_eq!(r["status"], "accepted", "{r}");
        }
    }
    ids.extend(
        entries
            .iter()
            .map(|e| (e.id.clone(), e.voucher_text.clone())),
    );
    ids
}

fn jpeg() -> Vec<u8> {
    let img =
        image::GrayImage::from_fn(64, 48, |x, y| image::Luma([((x * 3 + y * 5) % 256) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

async fn put_doc(
    s: &AppState,
    token: &str,
    base: &str,
    claim: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let (st, _, b) = request_raw(
        s,
        "PUT",
        &format!("{base}/{claim}/documents/{}", sha(bytes)),
        Some(token),
        Some(("application/octet-stream", bytes.to_vec())),
    )
    .await;
    (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// A phone's claim of everything unclaimed in `food`, made with `key` and submitted; its id.
async fn submitted_claim(s: &AppState, device: &str, key: &str) -> String {
    let (st, _, c) = request(
        s,
        "POST",
        "/api/v1/sync/claims",
        Some(device),
        Some(json!({"key": key, "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    let (st, _, v) = request(
        s,
        "POST",
        &format!("/api/v1/sync/claims/{id}/submit"),
        Some(device),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    id
}

async fn decide(s: &AppState, token: &str, claim: &str, body: Value) -> (StatusCode, Value) {
    let (st, _, v) = request(
        s,
        "POST",
        &format!("/api/v1/claims/{claim}/decision"),
        Some(token),
        Some(body),
    )
    .await;
    (st, v)
}

/// The whole loop: a phone claims, documents, submits; the accountant lowers a line and
/// approves; the cash manager approves; the payable is signed, its PDF checks and an edited
/// copy does not; a pain.001 batch goes out; a pain.002 marks it paid; the phone sees it.
#[tokio::test]
async fn from_a_phones_claim_to_a_paid_payable() {
    let s = state("loop").await;
    let (phone, ids) = world(&s, 3).await;
    let acct = token(&s, "acct", "accountant", json!({})).await;
    let cash = token(&s, "cash", "cash_manager", json!({})).await;

    // Create: the server values every line; the same key again is the same claim.
    let new = json!({"key": "phone-claim-1", "program": "food", "note": "November"});
    let (st, _, c) = request(
        &s,
        "POST",
        "/api/v1/sync/claims",
        Some(&phone.token),
        Some(new.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            c["state"].as_str(),
            c["claimed"].as_i64(),
            c["line_count"].as_i64()
        ),
        (Some("draft"), Some(3000), Some(3))
    );
    let (st, _, again) = request(
        &s,
        "POST",
        "/api/v1/sync/claims",
        Some(&phone.token),
        Some(new),
    )
    .await;
    assert_eq!(
        (st, again["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );

    // Documents: by content, by hash, once.
    let photo = jpeg();
    assert_eq!(
        put_doc(&s, &phone.token, "/api/v1/sync/claims", &id, &photo)
            .await
            .0,
        StatusCode::CREATED
    );
    let (st, v) = put_doc(&s, &phone.token, "/api/v1/sync/claims", &id, &photo).await;
    assert_eq!((st, v["stored"].as_str()), (StatusCode::OK, Some("before")));
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    assert_eq!(
        put_doc(&s, &phone.token, "/api/v1/sync/claims", &id, &html)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (st, _, _) = request_raw(
        &s,
        "PUT",
        &format!("/api/v1/sync/claims/{id}/documents/{}", "00".repeat(32)),
        Some(&phone.token),
        Some(("image/jpeg", photo.clone())),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "a document whose hash is not its address"
    );

    // Submit (twice: the same).
    for _ in 0..2 {
        let (st, _, v) = request(
            &s,
            "POST",
            &format!("/api/v1/sync/claims/{id}/submit"),
            Some(&phone.token),
            None,
        )
        .await;
        assert_eq!(
            (st, v["state"].as_str(), v["waiting_for"].as_str()),
            (StatusCode::OK, Some("submitted"), Some("accountant")),
            "{v}"
        );
    }
    assert_eq!(
        put_doc(&s, &phone.token, "/api/v1/sync/claims", &id, &jpeg()[..100])
            .await
            .0,
        StatusCode::CONFLICT,
        "no documents added under review"
    );

    // The reviewer's view: lines with beneficiary ids, devices, values; documents served safely.
    let (_, _, full) = request(
        &s,
        "GET",
        &format!("/api/v1/claims/{id}"),
        Some(&acct),
        None,
    )
    .await;
    let lines = full["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert!(lines
        .iter()
        .all(|l| l["beneficiary"].as_str().unwrap().starts_with("B-")
            && l["device"] == phone.device_id.as_str()
            && l["value"] == 1000));
    let (st, h, body) = request_raw(
        &s,
        "GET",
        &format!("/api/v1/claims/{id}/documents/{}", sha(&photo)),
        Some(&acct),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, photo);
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));

    // Stage 1 is the accountant's: the cash manager is refused; the accountant lowers a line.
    let (st, v) = decide(&s, &cash, &id, json!({"stage": 1, "decision": "approve"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let first = lines[0]["redemption"].as_str().unwrap();
    let (st, v) = decide(&s, &acct, &id, json!({"stage": 1, "decision": "approve", "lines": [{"redemption": first, "approved": 1500, "reason": "more than the voucher"}]})).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "a reviewer never raises a line: {v}"
    );
    let (st, v) = decide(&s, &acct, &id, json!({"stage": 1, "decision": "approve", "lines": [{"redemption": first, "approved": 500, "reason": "receipt shows half"}]})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["stage"].as_i64(),
            v["approved"].as_i64(),
            v["waiting_for"].as_str()
        ),
        (Some(2), Some(2500), Some("cash_manager"))
    );
    // A decision on a stage that has moved on: 409.
    let (st, _) = decide(&s, &cash, &id, json!({"stage": 1, "decision": "approve"})).await;
    assert_eq!(st, StatusCode::CONFLICT);
    // The accountant who approved stage 1 is not the one to approve stage 2.
    let (st, v) = decide(&s, &acct, &id, json!({"stage": 2, "decision": "approve"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("you approved an earlier stage"),
        "{v}"
    );
    // The admin token decides nothing.
    let (st, _) = decide(&s, ADMIN, &id, json!({"stage": 2, "decision": "approve"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = decide(&s, &cash, &id, json!({"stage": 2, "decision": "approve"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "payable");
    let pay = v["payable"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["payable"]["amount"], 2500);

    // The payable: signed with the program's payables key; its PDF checks out; edited, not.
    let (_, _, jwks) = request(&s, "GET", "/api/v1/payables/trust", None, None).await;
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["evoucher_use"] == "payable"));
    let trust = evoucher_core::payable::PayableTrust::from_jwks_json(&jwks.to_string()).unwrap();
    assert!(
        evoucher_core::TrustStore::from_jwks_json(&jwks.to_string()).is_err(),
        "a voucher trust store takes no payables key"
    );
    let (st, _, pdf) = request_raw(
        &s,
        "GET",
        &format!("/api/v1/payables/{pay}/pdf"),
        Some(&cash),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let verdict = evoucher_server::payable_pdf::verify(&pdf, &trust).unwrap();
    assert!(verdict.agrees(), "{verdict:?}");
    let p = verdict.payable.unwrap();
    assert_eq!(
        (p.amount, p.currency.as_str(), p.approvals.len()),
        (2500, "KES", 2)
    );
    assert_eq!(p.approvals[0].by, "acct");
    assert_eq!(p.approvals[1].by, "cash");
    let edited = edit_pdf(&pdf, "0123456789012", "9999999999999");
    let verdict = evoucher_server::payable_pdf::verify(&edited, &trust).unwrap();
    assert!(!verdict.agrees());
    assert_eq!(verdict.mismatches.len(), 1, "{verdict:?}");
    assert_eq!(verdict.mismatches[0].field, "Account number");
    assert_eq!(
        verdict.mismatches[0].printed.as_deref(),
        Some("9999999999999")
    );
    let edited = edit_pdf(&pdf, "25.00 KES", "95.00 KES");
    let verdict = evoucher_server::payable_pdf::verify(&edited, &trust).unwrap();
    assert_eq!(verdict.mismatches[0].field, "Amount", "{verdict:?}");

    // The payment file: once; the same key again gives the same batch.
    let batch = json!({"format": "pain.001", "program": "food", "key": "nov-1"});
    let (st, _, b) = request(
        &s,
        "POST",
        "/api/v1/payments/batches",
        Some(&cash),
        Some(batch.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["payables"], json!([pay]));
    let (st, _, again) = request(
        &s,
        "POST",
        "/api/v1/payments/batches",
        Some(&cash),
        Some(batch),
    )
    .await;
    assert_eq!((st, &again["id"]), (StatusCode::OK, &b["id"]));
    let (st, _, _) = request(
        &s,
        "POST",
        "/api/v1/payments/batches",
        Some(&cash),
        Some(json!({"format": "pain.001", "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "nothing left to export");
    let (st, _, xml) = request_raw(&s, "GET", b["file"].as_str().unwrap(), Some(&cash), None).await;
    assert_eq!(st, StatusCode::OK);
    let xml = String::from_utf8(xml).unwrap();
    assert!(
        xml.contains(&format!("<EndToEndId>{pay}</EndToEndId>"))
            && xml.contains("<InstdAmt Ccy=\"KES\">25.00</InstdAmt>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Othr><Id>0123456789012</Id></Othr>")
            && xml.contains("<IBAN>KE00PROGRAM0001</IBAN>"),
        "{xml}"
    );
    let (st, _, _) = request(
        &s,
        "POST",
        "/api/v1/payments/batches",
        Some(&acct),
        Some(json!({"format": "pain.001", "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "payments are the cash manager's");

    // The switch's answer.
    let report = pain_002(b["id"].as_str().unwrap(), &[(&pay, "ACSC", None)]);
    let (st, _, r) = request_raw(
        &s,
        "POST",
        "/api/v1/payments/results",
        Some(&cash),
        Some(("application/xml", report.clone().into_bytes())),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&r));
    let r: Value = serde_json::from_slice(&r).unwrap();
    assert_eq!(r["paid"], 1);
    let (_, _, r) = request_raw(
        &s,
        "POST",
        "/api/v1/payments/results",
        Some(&cash),
        Some(("application/xml", report.into_bytes())),
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&r).unwrap()["unchanged"],
        1,
        "the same file twice changes nothing"
    );
    let (_, _, mine) = request(&s, "GET", "/api/v1/sync/claims", Some(&phone.token), None).await;
    assert_eq!(mine["claims"][0]["state"], "paid", "{mine}");
    // A redemption paid for cannot be voided by the phone afterwards.
    let mut phone = phone;
    let text = {
        let (_, _, v) = request(
            &s,
            "GET",
            &format!("/api/v1/vouchers/{}", lines[1]["voucher"].as_str().unwrap()),
            Some(ADMIN),
            None,
        )
        .await;
        v["text"].as_str().unwrap().to_owned()
    };
    let (_, status, why) = phone
        .says(
            &s,
            Says {
                kind: Some(evoucher_core::ledger::EntryKind::Void),
                voucher_text: text,
                voids: Some(lines[1]["redemption"].as_str().unwrap().into()),
                ..Says::default()
            },
        )
        .await;
    assert_eq!(status, "invalid");
    assert!(why.contains("approved for payment"), "{why}");
    assert_eq!(mine["claims"][0]["payable"]["state"], "paid");

    // Every step in the audit log.
    let (_, _, log) = request(&s, "GET", "/api/v1/audit?limit=200", Some(ADMIN), None).await;
    let actions: Vec<&str> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "claim.create",
        "claim.document",
        "claim.submit",
        "claim.approve",
        "payments.batch",
        "payments.result",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| **a == "claim.approve").count(), 2);
    let _ = ids;
}

/// Replace text in a PDF's page content as a PDF editor would (decompress, change, save).
fn edit_pdf(pdf: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut doc = lopdf::Document::load_mem(pdf).unwrap();
    let page = *doc.get_pages().values().next().unwrap();
    let content = doc.get_page_content(page).unwrap();
    let text = String::from_utf8_lossy(&content).into_owned();
    assert!(text.contains(from), "{from} is on the page");
    doc.change_page_content(page, text.replace(from, to).into_bytes())
        .unwrap();
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// A pain.002.001.10 status report for payables.
fn pain_002(batch: &str, tx: &[(&str, &str, Option<&str>)]) -> String {
    let mut x = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\"><CstmrPmtStsRpt><GrpHdr><MsgId>SW-1</MsgId><CreDtTm>2026-11-26T12:00:00Z</CreDtTm></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>{batch}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><OrgnlPmtInfId>{batch}</OrgnlPmtInfId>");
    for (id, sts, why) in tx {
        x.push_str(&format!(
            "<TxInfAndSts><OrgnlEndToEndId>{id}</OrgnlEndToEndId><TxSts>{sts}</TxSts>"
        ));
        if let Some(w) = why {
            x.push_str(&format!(
                "<StsRsnInf><Rsn><Cd>{w}</Cd></Rsn><AddtlInf>closed account</AddtlInf></StsRsnInf>"
            ));
        }
        x.push_str("</TxInfAndSts>");
    }
    x.push_str("</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>");
    x
}

/// A redemption is reimbursed at most once: twelve claims of "everything unclaimed" sent at
/// the same moment (by the phone and the provider's account) make one claim with every
/// redemption; the rest are refused, and nothing is claimed twice.
#[tokio::test]
async fn a_redemption_is_claimed_once_however_many_claims_arrive_at_once() {
    let s = state("race").await;
    let (phone, ids) = world(&s, 40).await;
    let prov = token(&s, "shop", "provider", json!({"provider": "SP-1"})).await;
    for round in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..12 {
            let s = s.clone();
            let t = if i % 2 == 0 {
                phone.token.clone()
            } else {
                prov.clone()
            };
            let path = if i % 2 == 0 {
                "/api/v1/sync/claims"
            } else {
                "/api/v1/claims"
            };
            tasks.push(tokio::spawn(async move {
                request(
                    &s,
                    "POST",
                    path,
                    Some(&t),
                    Some(json!({"key": format!("r{round}-{i}"), "program": "food"})),
                )
                .await
            }));
        }
        let mut made = 0;
        for t in tasks {
            let (st, _, v) = t.await.unwrap();
            match st {
                StatusCode::CREATED => made += 1,
                StatusCode::CONFLICT | StatusCode::BAD_REQUEST => {}
                other => panic!("{other}: {v}"),
            }
        }
        if round == 0 {
            assert_eq!(made, 1, "one claim takes them all");
        } else {
            assert_eq!(made, 0, "nothing is left to claim");
        }
    }
    let mut c = s.db.acquire().await.unwrap();
    let claimed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM claimed")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM claim_lines")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    let distinct: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT redemption_id) FROM claim_lines")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    assert_eq!(
        (claimed, lines, distinct),
        (ids.len() as i64, ids.len() as i64, ids.len() as i64)
    );
}

/// Two reviewers deciding the same stage at once: one wins, the other is told (409); and one
/// person never approves two stages of a claim, even where both stages are the same role.
#[tokio::test]
async fn one_decision_per_stage_and_one_stage_per_person() {
    let s = state("stages").await;
    let (phone, _) = world(&s, 2).await;
    let (st, _, v) = request(
        &s,
        "PATCH",
        "/api/v1/programs/food",
        Some(ADMIN),
        Some(json!({"stages": ["cash_manager", "cash_manager"]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let c1 = token(&s, "cash1", "cash_manager", json!({})).await;
    let c2 = token(&s, "cash2", "cash_manager", json!({})).await;
    let id = submitted_claim(&s, &phone.token, "k").await;
    let (a, b) = tokio::join!(
        decide(&s, &c1, &id, json!({"stage": 1, "decision": "approve"})),
        decide(&s, &c2, &id, json!({"stage": 1, "decision": "approve"}))
    );
    let mut sts = [a.0, b.0];
    sts.sort();
    assert_eq!(sts, [StatusCode::OK, StatusCode::CONFLICT], "{a:?} {b:?}");
    let winner = if a.0 == StatusCode::OK { &c1 } else { &c2 };
    let other = if a.0 == StatusCode::OK { &c2 } else { &c1 };
    let (st, v) = decide(&s, winner, &id, json!({"stage": 2, "decision": "approve"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("earlier stage"));
    let (st, v) = decide(&s, other, &id, json!({"stage": 2, "decision": "approve"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "payable");
}

/// What cannot be claimed, each with its reason, and nothing made: another provider's, a
/// conflict, a voided one, one already claimed, an item without a price, a provider without a
/// payout account; and the stages a program may have.
#[tokio::test]
async fn what_cannot_be_claimed_is_refused_with_its_reason() {
    let s = state("refusals").await;
    let (mut phone, _) = world(&s, 0).await;
    let redeemed = redeem_texts(&s, &mut phone, "food", 3, 10).await;
    let ids: Vec<String> = redeemed.iter().map(|x| x.0.clone()).collect();
    // A conflict: the same voucher again.
    let text = redeemed[0].1.clone();
    let (conflict, status, _) = phone
        .says(
            &s,
            Says {
                voucher_text: text.clone(),
                amount: Some(1000),
                currency: Some("KES".into()),
                ..Says::default()
            },
        )
        .await;
    assert_eq!(status, "conflict");
    // A voided one.
    let (_, status, _) = phone
        .says(
            &s,
            Says {
                kind: Some(evoucher_core::ledger::EntryKind::Void),
                voucher_text: redeemed[2].1.clone(),
                voids: Some(ids[2].clone()),
                ..Says::default()
            },
        )
        .await;
    assert_eq!(status, "accepted");
    // Another provider's.
    request(
        &s,
        "POST",
        "/api/v1/providers",
        Some(ADMIN),
        Some(json!({"id": "SP-2", "name": "Other", "category": "grocery"})),
    )
    .await;
    let mut other = Forger::enrol(&s, ADMIN, "SP-2").await;
    let theirs = redeem(&s, &mut other, "food", 1, 100).await;
    let claim = |list: Vec<String>, key: &str| {
        let s = s.clone();
        let t = phone.token.clone();
        let key = key.to_owned();
        async move {
            request(
                &s,
                "POST",
                "/api/v1/sync/claims",
                Some(&t),
                Some(json!({"key": key, "program": "food", "redemptions": list})),
            )
            .await
        }
    };
    for (list, says) in [
        (vec![conflict.clone()], "conflict, not accepted"),
        (vec![ids[2].clone()], "was voided"),
        (vec![theirs[0].clone()], "another provider's"),
        (vec!["no-such".to_owned()], "not on the server"),
        (vec![ids[0].clone(), ids[0].clone()], "listed twice"),
    ] {
        let (st, _, v) = claim(list.clone(), "bad").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{list:?}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{says}: {v}");
    }
    // SP-2 has no payout account: its claims wait for one.
    let (st, _, v) = request(
        &s,
        "POST",
        "/api/v1/sync/claims",
        Some(&other.token),
        Some(json!({"key": "x", "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["detail"].as_str().unwrap().contains("payout account"),
        "{v}"
    );
    // Already claimed.
    let (st, _, _) = claim(vec![ids[0].clone()], "one").await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, v) = claim(vec![ids[0].clone(), ids[1].clone()], "two").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["detail"].as_str().unwrap().contains("already in claim"),
        "{v}"
    );
    // Items: valued at the program's price; without one, refused.
    request(&s, "POST", "/api/v1/programs", Some(ADMIN), Some(json!({"id": "kind", "name": "Kind", "issuer": "https://kind.example", "currency": "KES", "items": [{"code": "rice", "quantity": 5, "unit": "kg"}, {"code": "oil", "quantity": 1}]}))).await;
    let (_, _, v) = request(
        &s,
        "POST",
        "/api/v1/programs/kind/vouchers",
        Some(ADMIN),
        Some(json!({"beneficiaries": [{"id": "K-1"}]})),
    )
    .await;
    let ktext = v["vouchers"][0]["text"].as_str().unwrap().to_owned();
    let (kr, status, why) = phone
        .says(
            &s,
            Says {
                voucher_text: ktext,
                items: vec![("rice".into(), 5), ("oil".into(), 1)],
                ..Says::default()
            },
        )
        .await;
    assert_eq!(status, "accepted", "{why}");
    let (st, _, v) = request(
        &s,
        "POST",
        "/api/v1/sync/claims",
        Some(&phone.token),
        Some(json!({"key": "kind-1", "program": "kind"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("\"rice\" has no unit price")
            || v["detail"].as_str().unwrap().contains("has no unit price"),
        "{v}"
    );
    request(
        &s,
        "PATCH",
        "/api/v1/programs/kind",
        Some(ADMIN),
        Some(json!({"item_prices": {"rice": 150, "oil": 900}})),
    )
    .await;
    let (st, _, v) = request(
        &s,
        "POST",
        "/api/v1/sync/claims",
        Some(&phone.token),
        Some(json!({"key": "kind-1", "program": "kind"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["claimed"], 5 * 150 + 900);
    assert_eq!(v["line_count"], 1);
    let _ = kr;
    // Stages: approving roles only, the cash manager last.
    for bad in [
        json!(["auditor", "cash_manager"]),
        json!(["cash_manager", "accountant"]),
        json!([]),
    ] {
        let (st, _, v) = request(
            &s,
            "PATCH",
            "/api/v1/programs/food",
            Some(ADMIN),
            Some(json!({"stages": bad})),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    }
}

/// Returned: the provider adds a document and submits again, back at stage 1. Rejected: the
/// redemptions are free to be claimed again. Withdrawn likewise. Reasons are required.
#[tokio::test]
async fn returned_rejected_and_withdrawn_claims() {
    let s = state("return").await;
    let (_, ids) = world(&s, 3).await;
    let prov = token(&s, "shop", "provider", json!({"provider": "SP-1"})).await;
    let acct = token(&s, "acct", "accountant", json!({})).await;
    let (st, _, c) = request(
        &s,
        "POST",
        "/api/v1/claims",
        Some(&prov),
        Some(json!({"key": "a", "program": "food", "redemptions": [ids[0], ids[1]]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    request(
        &s,
        "POST",
        &format!("/api/v1/claims/{id}/submit"),
        Some(&prov),
        None,
    )
    .await;
    let (st, v) = decide(&s, &prov, &id, json!({"stage": 1, "decision": "approve"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a provider never decides: {v}");
    let (st, _) = decide(&s, &acct, &id, json!({"stage": 1, "decision": "return"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "returning needs the question");
    let (st, v) = decide(
        &s,
        &acct,
        &id,
        json!({"stage": 1, "decision": "return", "reason": "Please add the delivery note."}),
    )
    .await;
    assert_eq!(
        (st, v["state"].as_str(), v["question"].as_str()),
        (
            StatusCode::OK,
            Some("returned"),
            Some("Please add the delivery note.")
        )
    );
    assert_eq!(
        put_doc(&s, &prov, "/api/v1/claims", &id, &jpeg()).await.0,
        StatusCode::CREATED
    );
    let (_, _, v) = request(
        &s,
        "POST",
        &format!("/api/v1/claims/{id}/submit"),
        Some(&prov),
        Some(json!({"note": "Added."})),
    )
    .await;
    assert_eq!(
        (v["state"].as_str(), v["stage"].as_i64()),
        (Some("submitted"), Some(1))
    );
    let (st, _) = decide(&s, &acct, &id, json!({"stage": 1, "decision": "reject"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "rejecting needs the reason");
    let (st, v) = decide(
        &s,
        &acct,
        &id,
        json!({"stage": 1, "decision": "reject", "reason": "Duplicate receipts."}),
    )
    .await;
    assert_eq!(
        (st, v["state"].as_str()),
        (StatusCode::OK, Some("rejected"))
    );
    // Free again; the new claim's lines say they were in a rejected claim.
    let (st, _, c2) = request(
        &s,
        "POST",
        "/api/v1/claims",
        Some(&prov),
        Some(json!({"key": "b", "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c2}");
    assert_eq!(c2["line_count"], 3);
    let (_, _, full) = request(
        &s,
        "GET",
        &format!("/api/v1/claims/{}", c2["id"].as_str().unwrap()),
        Some(&acct),
        None,
    )
    .await;
    let flagged = full["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["flags"].to_string().contains("rejected claim"))
        .count();
    assert_eq!(flagged, 2);
    let id2 = c2["id"].as_str().unwrap();
    let (_, _, v) = request(
        &s,
        "POST",
        &format!("/api/v1/claims/{id2}/withdraw"),
        Some(&prov),
        None,
    )
    .await;
    assert_eq!(v["state"], "withdrawn");
    let (st, _, _) = request(
        &s,
        "POST",
        "/api/v1/claims",
        Some(&prov),
        Some(json!({"key": "c", "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "withdrawn lets go too");
    // Another provider's account sees none of these.
    request(
        &s,
        "POST",
        "/api/v1/providers",
        Some(ADMIN),
        Some(json!({"id": "SP-9", "name": "Nine"})),
    )
    .await;
    let nine = token(&s, "nine", "provider", json!({"provider": "SP-9"})).await;
    let (st, _, _) = request(
        &s,
        "GET",
        &format!("/api/v1/claims/{id}"),
        Some(&nine),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, _, l) = request(&s, "GET", "/api/v1/claims", Some(&nine), None).await;
    assert_eq!(l["total"], 0);
}

/// Payments that fail: a rejection in the switch's report fails the payable and its claim; it
/// is re-queued and goes out in a new batch. An exported payable is put in another batch only
/// by a re-issue with a reason. Mobile money payees go in a CSV; results come back as CSV too.
#[tokio::test]
async fn failed_payments_requeue_and_mobile_money() {
    let s = state("failed").await;
    let (phone, _) = world(&s, 2).await;
    let acct = token(&s, "acct", "accountant", json!({})).await;
    let cash = token(&s, "cash", "cash_manager", json!({})).await;
    let approve = |id: String| {
        let s = s.clone();
        let (acct, cash) = (acct.clone(), cash.clone());
        async move {
            assert_eq!(
                decide(&s, &acct, &id, json!({"stage": 1, "decision": "approve"}))
                    .await
                    .0,
                StatusCode::OK
            );
            let (st, v) = decide(&s, &cash, &id, json!({"stage": 2, "decision": "approve"})).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            v["payable"]["id"].as_str().unwrap().to_owned()
        }
    };
    let id = submitted_claim(&s, &phone.token, "k").await;
    let pay = approve(id.clone()).await;
    let (_, _, b) = request(
        &s,
        "POST",
        "/api/v1/payments/batches",
        Some(&cash),
        Some(json!({"format": "pain.001", "program": "food"})),
    )
    .await;
    let report = pain_002(b["id"].as_str().unwrap(), &[(&pay, "RJCT", Some("AC04"))]);
    let (_, _, r) = request_raw(
        &s,
        "POST",
        "/api/v1/payments/results",
        Some(&cash),
        Some(("application/xml", report.into_bytes())),
    )
    .await;
    assert_eq!(serde_json::from_slice::<Value>(&r).unwrap()["failed"], 1);
    let (_, _, p) = request(
        &s,
        "GET",
        &format!("/api/v1/payables/{pay}"),
        Some(&cash),
        None,
    )
    .await;
    assert_eq!(
        (p["state"].as_str(), p["failure"].as_str()),
        (Some("failed"), Some("AC04: closed account"))
    );
    let (_, _, c) = request(
        &s,
        "GET",
        &format!("/api/v1/sync/claims/{id}"),
        Some(&phone.token),
        None,
    )
    .await;
    assert_eq!(c["state"], "failed");
    let (st, _, _) = request(
        &s,
        "POST",
        &format!("/api/v1/payables/{pay}/reissue"),
        Some(&cash),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "a failed payable is re-queued, not re-issued"
    );
    let (st, _, p) = request(
        &s,
        "POST",
        &format!("/api/v1/payables/{pay}/requeue"),
        Some(&cash),
        None,
    )
    .await;
    assert_eq!((st, p["state"].as_str()), (StatusCode::OK, Some("payable")));
    let (st, _, b2) = request(
        &s,
        "POST",
        "/api/v1/payments/batches",
        Some(&cash),
        Some(json!({"format": "pain.001", "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_ne!(b2["id"], b["id"]);
    // Exported: another batch only after an explicit re-issue with a reason.
    let (st, _, _) = request(
        &s,
        "POST",
        &format!("/api/v1/payables/{pay}/reissue"),
        Some(&cash),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = request(
        &s,
        "POST",
        &format!("/api/v1/payables/{pay}/reissue"),
        Some(&cash),
        Some(json!({"reason": "the switch lost the file"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, b3) = request(
        &s,
        "POST",
        "/api/v1/payments/batches",
        Some(&cash),
        Some(json!({"format": "pain.001", "program": "food"})),
    )
    .await;
    assert_eq!((st, &b3["payables"]), (StatusCode::CREATED, &json!([pay])));

    // Mobile money: a provider paid to a wallet goes in the CSV batch.
    request(&s, "POST", "/api/v1/providers", Some(ADMIN), Some(json!({"id": "SP-M", "name": "Kiosk", "category": "grocery", "payout": {"kind": "mobile", "holder": "Amina K.", "msisdn": "+254712345678", "operator": "M-Pesa"}}))).await;
    let mut m = Forger::enrol(&s, ADMIN, "SP-M").await;
    redeem(&s, &mut m, "food", 1, 50).await;
    let mid = submitted_claim(&s, &m.token, "m").await;
    let mpay = approve(mid.clone()).await;
    let (st, _, bm) = request(
        &s,
        "POST",
        "/api/v1/payments/batches",
        Some(&cash),
        Some(json!({"format": "csv", "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{bm}");
    let (_, _, csv) = request_raw(&s, "GET", bm["file"].as_str().unwrap(), Some(&cash), None).await;
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.starts_with("payable,msisdn,operator,holder,amount,currency,reference\n"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("{mpay},'+254712345678,M-Pesa,Amina K.,10.00,KES,")),
        "{csv}"
    );
    let results = format!("payable,status,reason\n{mpay},paid,\n");
    let (_, _, r) = request_raw(
        &s,
        "POST",
        "/api/v1/payments/results",
        Some(&cash),
        Some(("text/csv", results.into_bytes())),
    )
    .await;
    assert_eq!(serde_json::from_slice::<Value>(&r).unwrap()["paid"], 1);
    let (_, _, r) = request_raw(
        &s,
        "POST",
        "/api/v1/payments/results",
        Some(&cash),
        Some(("text/csv", b"payable,status\nPAY-x,maybe\n".to_vec())),
    )
    .await;
    assert!(String::from_utf8_lossy(&r).contains("not paid or failed"));
}

/// Documents are limited: 10 MiB each (exactly 10 MiB is taken, a byte more is 413 and stores
/// nothing) and 20 per claim (the 21st is refused with the limit named).
#[tokio::test]
async fn documents_are_limited_in_size_and_number() {
    let s = state("doclimits").await;
    let (phone, _) = world(&s, 1).await;
    let (st, _, c) = request(
        &s,
        "POST",
        "/api/v1/sync/claims",
        Some(&phone.token),
        Some(json!({"key": "limits", "program": "food"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    let pdf_of = |len: usize, n: usize| {
        let mut b = format!("%PDF-1.7\n% document {n}\n").into_bytes();
        b.resize(len, b' ');
        b
    };
    let max = evoucher_server::routes::claims::MAX_DOCUMENT;
    let (st, v) = put_doc(
        &s,
        &phone.token,
        "/api/v1/sync/claims",
        &id,
        &pdf_of(max + 1, 0),
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (st, v) = put_doc(
        &s,
        &phone.token,
        "/api/v1/sync/claims",
        &id,
        &pdf_of(max, 1),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "exactly 10 MiB is taken: {v}");
    for n in 2..=20 {
        let (st, v) = put_doc(&s, &phone.token, "/api/v1/sync/claims", &id, &pdf_of(64, n)).await;
        assert_eq!(st, StatusCode::CREATED, "document {n}: {v}");
    }
    let (st, v) = put_doc(
        &s,
        &phone.token,
        "/api/v1/sync/claims",
        &id,
        &pdf_of(64, 21),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().unwrap_or("").contains("at most 20"),
        "{v}"
    );
    let (_, _, full) = request(
        &s,
        "GET",
        &format!("/api/v1/sync/claims/{id}"),
        Some(&phone.token),
        None,
    )
    .await;
    assert_eq!(full["documents"].as_array().unwrap().len(), 20, "{full}");
}
