//! The sync client of evoucher-core against the real server on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use evoucher_core::ledger::{Ledger, RedeemError, RedeemRequest, Redeemer, Refusal};
use evoucher_core::sync::SyncClient;
use evoucher_core::{verify, TrustStore};
use evoucher_server::{app, AppState, Config};
use serde_json::{json, Value};

const ADMIN: &str = "test-admin-token-0123456789";

/// Serve the app on 127.0.0.1:0 on its own runtime thread; returns the base URL.
fn serve(name: &str) -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("evoucher-client-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (d, n) = (dir.clone(), name.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let db = common::database(&d, &n).await;
            let state = AppState::new(&Config {
                database: db,
                admin_token: ADMIN.into(),
                master_key: [3; 32],
            })
            .await
            .unwrap();
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}", l.local_addr().unwrap()))
                .unwrap();
            axum::serve(l, app(state)).await.unwrap();
        });
    });
    (rx.recv().unwrap(), dir)
}

fn admin(base: &str, path: &str, body: Value) -> Value {
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().unwrap_or(Value::Null)
}

#[test]
fn enrol_redeem_offline_sync_and_revocations_reach_the_phone() {
    let (base, dir) = serve("loop");
    admin(
        &base,
        "/api/v1/programs",
        json!({"id": "food", "name": "Food", "issuer": "https://food.example", "currency": "KES", "amount": 1000}),
    );
    let issued = admin(
        &base,
        "/api/v1/programs/food/vouchers",
        json!({"beneficiaries": [{"id": "B-1"}, {"id": "B-2"}, {"id": "B-3"}]}),
    );
    let texts: Vec<String> = issued["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect();
    admin(
        &base,
        "/api/v1/providers",
        json!({"id": "SP-1", "name": "Shop"}),
    );
    let code = admin(&base, "/api/v1/providers/SP-1/enrolment-codes", json!({}))["code"]
        .as_str()
        .unwrap()
        .to_owned();

    // The phone: ledger, enrolment, first sync (gets the trust list).
    let ledger = Ledger::open(&dir.join("phone.db")).unwrap();
    let e = SyncClient::new(&base, None)
        .unwrap()
        .enrol_ledger(&ledger, &code)
        .unwrap();
    assert_eq!(e.provider_id, "SP-1");
    let client = SyncClient::new(&base, Some(e.token.clone())).unwrap();
    let trust_path = dir.join("trust.json");
    let r = client.sync(&ledger, &trust_path).unwrap();
    assert!(r.trust_updated && r.trust_keys == 1 && r.pushed == 0);

    // The beneficiaries got their vouchers as the server's PNGs; the phone scans them.
    let scanned: Vec<String> = issued["vouchers"].as_array().unwrap()[..2]
        .iter()
        .map(|v| {
            let png = reqwest::blocking::Client::new()
                .get(format!(
                    "{base}/api/v1/vouchers/{}/qr.png",
                    v["id"].as_str().unwrap()
                ))
                .bearer_auth(ADMIN)
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            let codes = evoucher_core::scan::scan_image_bytes(&png, &Default::default()).unwrap();
            codes[0].text.clone().unwrap()
        })
        .collect();
    assert_eq!(scanned, texts[..2]);

    // Offline: redeem the two scanned vouchers.
    let trust = TrustStore::read(&trust_path).unwrap();
    let now = evoucher_server::now();
    let who = Redeemer {
        provider: "SP-1",
        category: None,
        device: "", // the enrolled device
    };
    for t in &scanned {
        ledger
            .redeem(
                &verify(t, &trust, now).unwrap(),
                &who,
                &RedeemRequest::Whole,
                now,
            )
            .unwrap();
    }
    // Meanwhile the program cancels the third.
    let third = verify(&texts[2], &trust, now).unwrap();
    admin(
        &base,
        &format!("/api/v1/vouchers/{}/cancel", third.voucher.id),
        json!({}),
    );

    // Back online.
    let r = client.sync(&ledger, &trust_path).unwrap();
    assert_eq!(
        (r.pushed, r.accepted, r.remaining, r.revocations_added),
        (2, 2, 0, 1)
    );
    assert!(!r.trust_updated, "ETag: trust list unchanged");
    assert!(r.rejected.is_none());
    // The cancelled voucher is now refused on the phone.
    match ledger.redeem(&third, &who, &RedeemRequest::Whole, now) {
        Err(RedeemError::Refused(Refusal::Revoked { .. })) => {}
        other => panic!("{other:?}"),
    }
    // Syncing again is a no-op.
    let r = client.sync(&ledger, &trust_path).unwrap();
    assert_eq!((r.pushed, r.revocations_added), (0, 0));

    // A wrong token is refused with a clear error, and nothing is marked synced.
    let phone2 = Ledger::open(&dir.join("phone2.db")).unwrap();
    phone2
        .redeem(
            &verify(&texts[0], &trust, now).unwrap(),
            &who,
            &RedeemRequest::Whole,
            now,
        )
        .unwrap();
    let bad = SyncClient::new(&base, Some("wrong".into())).unwrap();
    let err = bad.sync(&phone2, &dir.join("t2.json")).unwrap_err();
    assert!(
        matches!(err, evoucher_core::sync::SyncError::Status(401, _)),
        "{err}"
    );
    assert_eq!(phone2.outbox(10).unwrap().len(), 1);
}

#[test]
fn an_unreachable_server_is_a_clear_error_after_retries() {
    let dir = std::env::temp_dir().join(format!("evoucher-client-{}-down", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = Ledger::open(&dir.join("phone.db")).unwrap();
    // A port nobody listens on (bound then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = SyncClient::new(&format!("http://127.0.0.1:{port}"), Some("t".into())).unwrap();
    let err = c.sync(&ledger, &dir.join("trust.json")).unwrap_err();
    assert!(
        matches!(err, evoucher_core::sync::SyncError::Http(_)),
        "{err}"
    );
    assert!(!dir.join("trust.json").exists());
}

/// A claim made offline with a photo waits in the ledger's outbox; the next sync sends it
/// whole (create, upload, submit) and reads the provider's claims back; a claim the server
/// refuses ends with its reason; a run cut off after the upload finishes on the next one.
#[test]
fn the_claim_outbox_is_sent_by_the_next_sync() {
    use evoucher_core::claims::{queue_claim, ClaimRequest, ClaimRun};
    let (base, dir) = serve("claims");
    admin(
        &base,
        "/api/v1/programs",
        json!({"id": "food", "name": "Food", "issuer": "https://food.example", "currency": "KES", "amount": 1000}),
    );
    admin(
        &base,
        "/api/v1/providers",
        json!({"id": "SP-1", "name": "Shop", "payout": {"kind": "bank", "holder": "Shop", "number": "0123 4567 8901", "bank": "Equity Bank"}}),
    );
    let code = admin(&base, "/api/v1/providers/SP-1/enrolment-codes", json!({}))["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let issued = admin(
        &base,
        "/api/v1/programs/food/vouchers",
        json!({"beneficiaries": [{"id": "B-1"}, {"id": "B-2"}]}),
    );
    let ledger = Ledger::open(&dir.join("phone.db")).unwrap();
    let e = SyncClient::new(&base, None)
        .unwrap()
        .enrol_ledger(&ledger, &code)
        .unwrap();
    let token = e.token.clone();
    let client = SyncClient::new(&base, Some(e.token)).unwrap();
    let trust_path = dir.join("trust.json");
    client.sync(&ledger, &trust_path).unwrap();
    let trust = TrustStore::read(&trust_path).unwrap();
    let now = evoucher_server::now();
    let who = Redeemer {
        provider: "",
        category: None,
        device: "",
    };
    let mut ids = Vec::new();
    for v in issued["vouchers"].as_array().unwrap() {
        let t = verify(v["text"].as_str().unwrap(), &trust, now).unwrap();
        ids.push(
            ledger
                .redeem(&t, &who, &RedeemRequest::Whole, now)
                .unwrap()
                .entry
                .id,
        );
    }
    client.sync(&ledger, &trust_path).unwrap();

    // Offline: a claim for the first redemption, with a photo of the receipt.
    let photo = dir.join("receipt.png");
    std::fs::write(
        &photo,
        b"\x89PNG\r\n\x1a\nnot really a picture, but a PNG by its first bytes",
    )
    .unwrap();
    let req = ClaimRequest {
        key: "phone-claim-1".into(),
        program: "food".into(),
        redemptions: Some(vec![ids[0].clone()]),
        up_to: None,
        note: Some("week 48".into()),
    };
    let docs = [("receipt.png".to_owned(), photo.display().to_string())];
    queue_claim(&ledger, &req, &docs, now).unwrap();
    // A text file is not a document.
    std::fs::write(dir.join("x.txt"), b"hello").unwrap();
    assert!(queue_claim(
        &ledger,
        &ClaimRequest {
            key: "bad".into(),
            ..req.clone()
        },
        &[("x.txt".into(), dir.join("x.txt").display().to_string())],
        now
    )
    .is_err());

    // A run cut off after the upload (the phone lost its network)...
    let mut run = ClaimRun::new();
    let mut steps = 0;
    while let Some(r) = run.next(&ledger).unwrap() {
        let answer = reqwest::blocking::Client::new()
            .request(r.method.parse().unwrap(), format!("{base}{}", r.path))
            .bearer_auth(&token)
            .header(
                "content-type",
                if r.body_file.is_some() {
                    "application/octet-stream"
                } else {
                    "application/json"
                },
            )
            .body(match (&r.body, &r.body_file) {
                (_, Some(f)) => std::fs::read(f).unwrap(),
                (Some(b), None) => b.clone().into_bytes(),
                _ => Vec::new(),
            })
            .send()
            .unwrap();
        let status = answer.status().as_u16();
        let body = answer.text().unwrap();
        run.answer(
            &ledger,
            evoucher_core::sync::Answer {
                status,
                etag: None,
                date: None,
                body: &body,
            },
        )
        .unwrap();
        steps += 1;
        if steps == 2 {
            break; // created and uploaded; not submitted
        }
    }
    let q = &ledger.claim_outbox().unwrap()[0];
    assert!(
        q.claim_id.is_some() && q.done_at.is_none() && q.documents[0].sent,
        "{q:?}"
    );

    // ...and the next sync finishes it.
    let mut run = ClaimRun::new();
    client.drive(&ledger, &mut run).unwrap();
    assert_eq!((run.sent, run.refused), (1, 0));
    let q = &ledger.claim_outbox().unwrap()[0];
    assert!(q.done_at.is_some() && q.error.is_none());
    let seen = ledger.claims_seen().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["state"], "submitted");
    assert_eq!(seen[0]["id"].as_str(), q.claim_id.as_deref());
    assert_eq!(seen[0]["documents"].as_array().unwrap().len(), 1);
    assert_eq!(seen[0]["claimed"], 1000);

    // The same redemption claimed again under another key: refused, with the reason kept.
    queue_claim(
        &ledger,
        &ClaimRequest {
            key: "phone-claim-2".into(),
            ..req
        },
        &[],
        now,
    )
    .unwrap();
    let mut run = ClaimRun::new();
    client.drive(&ledger, &mut run).unwrap();
    assert_eq!((run.sent, run.refused), (0, 1));
    let refused = ledger
        .claim_outbox()
        .unwrap()
        .into_iter()
        .find(|q| q.key == "phone-claim-2")
        .unwrap();
    assert!(refused.done_at.is_some());
    assert!(refused.error.is_some(), "{refused:?}");

    // "Everything up to now": the phone learns which redemptions it holds from its lines.
    let state = |id: &str| {
        ledger
            .history_page(&Default::default())
            .unwrap()
            .rows
            .into_iter()
            .find(|r| r.entry.id == id)
            .unwrap()
            .state
    };
    assert_eq!(state(&ids[0]), "claimed");
    assert_eq!(state(&ids[1]), "accepted");
    queue_claim(
        &ledger,
        &ClaimRequest {
            key: "phone-claim-3".into(),
            program: "food".into(),
            redemptions: None,
            up_to: Some(evoucher_server::now()),
            note: None,
        },
        &[],
        now,
    )
    .unwrap();
    let mut run = ClaimRun::new();
    client.drive(&ledger, &mut run).unwrap();
    assert_eq!((run.sent, run.refused), (1, 0));
    assert_eq!(state(&ids[1]), "claimed");
    assert_eq!(ledger.claims_seen().unwrap().len(), 2);
}
