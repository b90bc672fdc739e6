//! The server as something an administrator can read back: programs, beneficiaries, vouchers
//! by state, providers, devices, redemptions by status (JSON and CSV), a voucher's timeline;
//! 405 as problem+json; and issuance to listed beneficiaries that never doubles a live voucher.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{request, request_raw, Forger, Says};
use evoucher_server::{AppState, Config};
use serde_json::{json, Value};

const ADMIN: &str = "read-admin-token-0123456789";

async fn state(name: &str) -> AppState {
    let dir = std::env::temp_dir().join(format!("evoucher-read-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    AppState::new(&Config {
        database: common::database(&dir, name).await,
        admin_token: ADMIN.into(),
        master_key: [4; 32],
    })
    .await
    .unwrap()
}

async fn get(s: &AppState, uri: &str) -> Value {
    let (st, _, v) = request(s, "GET", uri, Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::OK, "{uri}: {v}");
    v
}

async fn post(s: &AppState, uri: &str, body: Value) -> (StatusCode, Value) {
    let (st, _, v) = request(s, "POST", uri, Some(ADMIN), Some(body)).await;
    (st, v)
}

async fn import(s: &AppState, program: &str, csv: &str) {
    let (st, _, v) = request_raw(
        s,
        "POST",
        &format!("/api/v1/programs/{program}/beneficiaries"),
        Some(ADMIN),
        Some(("text/csv", csv.as_bytes().to_vec())),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&v));
}

#[tokio::test]
async fn listed_beneficiaries_get_their_imported_values_and_never_two_live_vouchers() {
    let s = state("listed").await;
    post(&s, "/api/v1/programs", json!({"id": "food", "name": "Food", "issuer": "https://food.example", "currency": "KES", "amount": 1000})).await;
    import(
        &s,
        "food",
        "beneficiary_id,name,amount\nBEN-1001,Amina K.,2500\nBEN-1002,Juma O.,4000\n",
    )
    .await;
    // Listed by id only: the imported name and amount are used.
    let (st, v) = post(
        &s,
        "/api/v1/programs/food/vouchers",
        json!({"beneficiaries": [{"id": "BEN-1002"}]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let text = v["vouchers"][0]["text"].as_str().unwrap();
    let voucher = evoucher_core::verify::inspect(text).claims.unwrap();
    assert_eq!(voucher.beneficiary.name.as_deref(), Some("Juma O."));
    assert_eq!(voucher.value.unwrap().amount, 4000);
    let first = v["vouchers"][0]["id"].as_str().unwrap().to_owned();
    // Again: the beneficiary holds a live voucher, named in the refusal; nothing is issued.
    let (st, e) = post(
        &s,
        "/api/v1/programs/food/vouchers",
        json!({"beneficiaries": [{"id": "BEN-1001"}, {"id": "BEN-1002"}]}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("BEN-1002") && detail.contains(&first) && detail.contains("reissue"),
        "{detail}"
    );
    assert_eq!(
        get(&s, "/api/v1/programs/food").await["counts"]["vouchers_issued"],
        1
    );
    // Nor through the import path.
    let (st, v) = post(
        &s,
        "/api/v1/programs/food/vouchers",
        json!({"imported": true}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let ids: Vec<&str> = v["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["beneficiary_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["BEN-1001"]);
    // An explicit reissue cancels the live voucher (it joins the revocation feed) and issues
    // a new one, in one transaction.
    let (st, v) = post(
        &s,
        "/api/v1/programs/food/vouchers",
        json!({"beneficiaries": [{"id": "BEN-1002"}], "reissue": true}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["cancelled"], json!([first]));
    let (_, _, feed) = request(&s, "GET", "/api/v1/revocations", None, None).await;
    assert_eq!(feed["revocations"][0]["voucher_id"], first.as_str());
    let live = get(&s, "/api/v1/programs/food/vouchers?state=live").await;
    assert_eq!(live["total"], 2);
    // A beneficiary who was not imported gets the program's default.
    let (_, v) = post(
        &s,
        "/api/v1/programs/food/vouchers",
        json!({"beneficiaries": [{"id": "WALK-IN"}]}),
    )
    .await;
    let voucher = evoucher_core::verify::inspect(v["vouchers"][0]["text"].as_str().unwrap())
        .claims
        .unwrap();
    assert_eq!(
        (voucher.beneficiary.name, voucher.value.unwrap().amount),
        (None, 1000)
    );
}

#[tokio::test]
async fn what_was_created_can_be_read_back() {
    let s = state("read").await;
    post(&s, "/api/v1/programs", json!({"id": "food", "name": "Food", "issuer": "https://food.example", "currency": "KES", "amount": 1000, "categories": ["grocery"]})).await;
    post(&s, "/api/v1/programs/food/keys/rotate", json!({})).await;
    let rows: String = (0..250).map(|i| format!("B-{i:03},Name {i},\n")).collect();
    import(&s, "food", &format!("beneficiary_id,name,amount\n{rows}")).await;
    let (_, v) = post(
        &s,
        "/api/v1/programs/food/vouchers",
        json!({"imported": true}),
    )
    .await;
    let vouchers: Vec<String> = v["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["text"].as_str().unwrap().to_owned())
        .collect();
    let vid = |i: usize| v["vouchers"][i]["id"].as_str().unwrap().to_owned();
    post(
        &s,
        "/api/v1/providers",
        json!({"id": "SP-1", "name": "Shop", "category": "grocery", "payout_account": "KE-BANK-1"}),
    )
    .await;
    post(
        &s,
        "/api/v1/providers",
        json!({"id": "SP-2", "name": "Other"}),
    )
    .await;

    // Programs: settings, both keys (one current), counts.
    let list = get(&s, "/api/v1/programs").await;
    assert_eq!(list["programs"].as_array().unwrap().len(), 1);
    let p = get(&s, "/api/v1/programs/food").await;
    assert_eq!(
        (
            p["name"].as_str(),
            p["amount"].as_i64(),
            p["categories"][0].as_str()
        ),
        (Some("Food"), Some(1000), Some("grocery"))
    );
    let keys = p["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k["current"] == true).count(), 1);
    assert_eq!(p["counts"]["beneficiaries"], 250);
    assert_eq!(p["counts"]["vouchers_live"], 250);
    let (st, _, e) = request(&s, "GET", "/api/v1/programs/none", Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");

    // Beneficiaries, paged.
    let (st, h, page) = request(
        &s,
        "GET",
        "/api/v1/programs/food/beneficiaries?offset=200&limit=100",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["x-total-count"], "250");
    let b = page["beneficiaries"].as_array().unwrap();
    assert_eq!((b.len(), b[0]["id"].as_str()), (50, Some("B-200")));
    assert!(b[0]["live_voucher"].is_string());
    let (st, _, _) = request(
        &s,
        "GET",
        "/api/v1/programs/food/beneficiaries?limit=5000",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // A device redeems two vouchers, one of them twice (a conflict); one voucher is cancelled,
    // one has expired.
    let mut phone = Forger::enrol(&s, ADMIN, "SP-1").await;
    let whole = |t: &str| Says {
        voucher_text: t.into(),
        amount: Some(1000),
        currency: Some("KES".into()),
        ..Says::default()
    };
    let (r0, st0, _) = phone.says(&s, whole(&vouchers[0])).await;
    assert_eq!(st0, "accepted");
    phone.says(&s, whole(&vouchers[1])).await;
    let (_, st2, _) = phone.says(&s, whole(&vouchers[1])).await;
    assert_eq!(st2, "conflict");
    post(
        &s,
        &format!("/api/v1/vouchers/{}/cancel", vid(2)),
        json!({}),
    )
    .await;
    sqlx::query("UPDATE vouchers SET exp = 1 WHERE id = $1")
        .bind(vid(3))
        .execute(&s.db)
        .await
        .unwrap();

    // Vouchers by state.
    for (state, n) in [
        ("redeemed", 2),
        ("cancelled", 1),
        ("expired", 1),
        ("live", 246),
    ] {
        let v = get(
            &s,
            &format!("/api/v1/programs/food/vouchers?state={state}&limit=1000"),
        )
        .await;
        assert_eq!(v["total"], n, "{state}");
        assert!(v["vouchers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == state));
    }
    assert_eq!(
        get(&s, "/api/v1/programs/food/vouchers").await["total"],
        250
    );
    let (st, _, _) = request(
        &s,
        "GET",
        "/api/v1/programs/food/vouchers?state=spent",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // A voucher's timeline.
    let v = get(&s, &format!("/api/v1/vouchers/{}", vid(1))).await;
    assert_eq!(v["state"], "redeemed");
    let t: Vec<&str> = v["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(t, ["accepted", "conflict"]);
    assert_eq!(v["redemptions"][1]["provider_id"], "SP-1");
    assert!(get(&s, &format!("/api/v1/vouchers/{}", vid(2))).await["cancelled_at"].is_i64());

    // Providers and devices.
    let (_, c) = post(&s, "/api/v1/providers/SP-2/enrolment-codes", json!({})).await;
    assert!(c["code"].is_string());
    let providers = get(&s, "/api/v1/providers").await;
    let sp: Vec<(&str, i64, i64)> = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap(),
                p["devices"].as_i64().unwrap(),
                p["pending_codes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sp, [("SP-1", 1, 0), ("SP-2", 0, 1)]);
    assert_eq!(
        get(&s, "/api/v1/providers/SP-1").await["payout_account"],
        "KE-BANK-1"
    );
    let devices = get(&s, "/api/v1/devices?provider=SP-1").await;
    let d = &devices["devices"][0];
    assert_eq!(d["id"], phone.device_id.as_str());
    assert_eq!(
        (
            d["last_seq"].as_i64(),
            d["redemptions"]["accepted"].as_i64(),
            d["redemptions"]["conflict"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert!(d["last_seen_at"].is_i64() && d["revoked_at"].is_null());

    // Redemptions by status, by provider; as CSV.
    let r = get(&s, "/api/v1/redemptions?status=conflict").await;
    assert_eq!(r["total"], 1);
    // `review`: conflicts and suspect entries together, with the other filters still applied.
    let suspect = get(&s, "/api/v1/redemptions?status=suspect").await["total"]
        .as_i64()
        .unwrap();
    assert_eq!(
        get(&s, "/api/v1/redemptions?status=review").await["total"],
        1 + suspect
    );
    assert_eq!(
        get(&s, "/api/v1/redemptions?status=review&provider=SP-2").await["total"],
        0
    );
    assert_eq!(
        get(&s, "/api/v1/redemptions?status=review&provider=SP-1").await["total"],
        1 + suspect
    );
    assert_eq!(r["redemptions"][0]["program_id"], "food");
    assert_eq!(
        get(&s, "/api/v1/redemptions?provider=SP-1").await["total"],
        3
    );
    assert_eq!(
        get(&s, "/api/v1/redemptions?provider=SP-2").await["total"],
        0
    );
    assert_eq!(
        get(&s, &format!("/api/v1/redemptions?voucher={}", vid(0))).await["redemptions"][0]["id"],
        r0.as_str()
    );
    let (st, _, _) = request(
        &s,
        "GET",
        "/api/v1/redemptions?status=paid",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let req = axum::http::Request::builder()
        .uri("/api/v1/redemptions")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("accept", "text/csv")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(evoucher_server::app(s.clone()), req)
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let mut rd = csv::Reader::from_reader(body.as_ref());
    assert_eq!(rd.headers().unwrap().iter().next(), Some("id"));
    assert_eq!(rd.records().count(), 3);

    // Revoking the phone stops its token at once; what it synced stays.
    let (st, v) = post(
        &s,
        &format!("/api/v1/devices/{}/revoke", phone.device_id),
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["revoked_at"].is_i64());
    let (st, _, _) = request(&s, "GET", "/api/v1/sync/status", Some(&phone.token), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&s, "/api/v1/redemptions").await["total"], 3);
    assert!(get(&s, "/api/v1/devices").await["devices"][0]["revoked_at"].is_i64());
    let (st, _, _) = request(
        &s,
        "POST",
        "/api/v1/devices/dev-nope/revoke",
        Some(ADMIN),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reading_needs_the_admin_and_a_wrong_method_is_a_problem_405() {
    let s = state("auth").await;
    for uri in [
        "/api/v1/programs",
        "/api/v1/providers",
        "/api/v1/devices",
        "/api/v1/redemptions",
        "/api/v1/programs/p/vouchers",
        "/api/v1/programs/p/beneficiaries",
    ] {
        let (st, h, _) = request(&s, "GET", uri, None, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(h["content-type"], "application/problem+json");
    }
    for (method, uri) in [
        ("DELETE", "/api/v1/programs"),
        ("PUT", "/api/v1/trust"),
        ("GET", "/api/v1/devices/enrol"),
        ("POST", "/healthz"),
    ] {
        let (st, h, v) = request(&s, method, uri, Some(ADMIN), None).await;
        assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(h["content-type"], "application/problem+json");
        assert_eq!(v["status"], 405);
    }
}

/// Editing a program: the settings given change, the rest stay; vouchers issued afterwards
/// carry the new terms and those issued before keep theirs (they are signed); the issuer and
/// the currency are fixed once vouchers exist (409); invalid settings are refused whole (400)
/// and unknown fields too; each save is one audit record with only what changed.
#[tokio::test]
async fn a_program_is_edited_for_vouchers_issued_from_then_on() {
    let s = state("edit").await;
    post(&s, "/api/v1/programs", json!({"id": "food", "name": "Food", "issuer": "https://food.example", "currency": "KES", "amount": 1000, "validity_days": 30})).await;
    let patch = |body: Value| {
        let s = s.clone();
        async move {
            let (st, _, v) = request(
                &s,
                "PATCH",
                "/api/v1/programs/food",
                Some(ADMIN),
                Some(body),
            )
            .await;
            (st, v)
        }
    };
    // Before any voucher, even the issuer and the currency may change.
    let (st, v) = patch(json!({"issuer": "https://food.example.org", "currency": "UGX"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["changed"], json!(["currency", "issuer"]));
    let (_, v) = post(
        &s,
        "/api/v1/programs/food/vouchers",
        json!({"beneficiaries": [{"id": "B-1"}]}),
    )
    .await;
    let first = v["vouchers"][0]["text"].as_str().unwrap().to_owned();
    // Now they are fixed.
    for body in [
        json!({"issuer": "https://other.example"}),
        json!({"currency": "KES"}),
    ] {
        let (st, v) = patch(body.clone()).await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}: {v}");
        assert!(v["detail"].as_str().unwrap().contains("fixed"), "{v}");
    }
    // Invalid settings, refused whole: nothing changes.
    for body in [
        json!({"name": "New name", "validity_days": 0}),
        json!({"amount": 0}),
        json!({"items": [{"code": "rice", "quantity": 0}]}),
        json!({"providers": [""]}),
        json!({"name": " "}),
        json!({"colour": "blue"}),
    ] {
        let (st, v) = patch(body.clone()).await;
        assert!(
            st == StatusCode::BAD_REQUEST || st == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {st} {v}"
        );
    }
    let p = get(&s, "/api/v1/programs/food").await;
    assert_eq!(p["name"], "Food");
    assert_eq!(p["validity_days"], 30);
    // A real edit.
    let (st, v) = patch(json!({"name": "Food 2027", "amount": 2500, "validity_days": 60, "partial": true, "categories": ["grocery"], "items": [{"code": "rice", "quantity": 5, "unit": "kg"}]})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let p = get(&s, "/api/v1/programs/food").await;
    assert_eq!(p["name"], "Food 2027");
    assert_eq!(p["amount"], 2500);
    assert_eq!(p["partial"], true);
    assert_eq!(p["issuer"], "https://food.example.org");
    // Saving the same settings again changes nothing and records nothing.
    let (st, v) = patch(json!({"name": "Food 2027"})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["changed"], json!([]));
    let (_, v) = post(
        &s,
        "/api/v1/programs/food/vouchers",
        json!({"beneficiaries": [{"id": "B-2"}]}),
    )
    .await;
    let second = v["vouchers"][0]["text"].as_str().unwrap().to_owned();
    let jwks = get(&s, "/api/v1/trust").await;
    let trust = evoucher_core::TrustStore::from_jwks_json(&jwks.to_string()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let old = evoucher_core::verify(&first, &trust, now).unwrap().voucher;
    let new = evoucher_core::verify(&second, &trust, now).unwrap().voucher;
    assert_eq!(old.value.as_ref().unwrap().amount, 1000);
    assert!(old.items.is_empty());
    assert_eq!(new.value.as_ref().unwrap().amount, 2500);
    assert_eq!(new.value.as_ref().unwrap().currency, "UGX");
    assert_eq!(new.items[0].code, "rice");
    assert_eq!(new.categories, vec!["grocery".to_owned()]);
    assert!(new.exp - new.iat > 59 * 86_400 && old.exp - old.iat < 31 * 86_400);
    // The audit log: one record per saving edit, with only what changed.
    let log = get(&s, "/api/v1/audit?action=program.update").await;
    let records = log["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{log}");
    let last = records
        .iter()
        .find(|r| r["detail"]["after"]["name"] == "Food 2027")
        .unwrap();
    assert_eq!(last["detail"]["before"]["name"], "Food");
    assert_eq!(last["detail"]["before"]["amount"], 1000);
    assert!(last["detail"]["after"].get("issuer").is_none(), "{last}");
    // Unknown program: 404.
    let (st, _, _) = request(
        &s,
        "PATCH",
        "/api/v1/programs/nope",
        Some(ADMIN),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
