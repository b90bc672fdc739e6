//! `/openapi.json` is true to the code: it names every route the routers register (read from
//! the source), every operation it names answers (not the "no such endpoint" fallback, not
//! 405), every error is problem+json, and the schemas of the sync entries match what a real
//! phone ledger sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use evoucher_server::{AppState, Config};
use serde_json::Value;

async fn state(name: &str) -> AppState {
    let d = std::env::temp_dir().join(format!("evoucher-openapi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    AppState::new(&Config {
        database: common::database(&d, name).await,
        admin_token: "openapi-admin-token-0123456789".into(),
        master_key: [2; 32],
    })
    .await
    .unwrap()
}

/// (method, path) of every `.route("PATH", method(handler))` in `src/routes/*.rs`, including
/// chained `.get(…).post(…)` and those wrapped in `body_limit(…)`.
fn routes_in_source() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let src = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for part in src.split(".route(").skip(1) {
            // The arguments of this call: up to its closing parenthesis.
            let mut depth = 1;
            let end = part
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .unwrap()
                .0;
            let part = &part[..end];
            let path = part.split('"').nth(1).unwrap().to_owned();
            let rest = part.split_once(',').unwrap().1;
            // Every method router in the route's arguments, however wrapped (who may call it,
            // its body limit) or merged: `need(P, S, body_limit(post(h), MAX)).merge(…get(h)…)`.
            for m in ["get", "post", "put", "patch", "delete"] {
                let call = format!("{m}(");
                let found = rest.match_indices(&call).any(|(i, _)| {
                    !rest[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if found {
                    out.push((m.to_owned(), path.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_document_names_every_route_and_every_named_route_answers() {
    let s = state("routes").await;
    let (st, h, doc) = common::request(&s, "GET", "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            documented.push((method.clone(), path.clone()));
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(op["responses"].is_object(), "{method} {path}");
        }
    }
    documented.sort();
    let in_source = routes_in_source();
    assert!(in_source.len() >= 19, "{in_source:?}");
    assert_eq!(documented, in_source, "openapi.json and the routers differ");

    for (method, path) in &documented {
        let uri = path.replace("{id}", "does-not-exist");
        let body = (method == "post").then(|| serde_json::json!({}));
        let (st, h, j) = common::request(&s, &method.to_uppercase(), &uri, None, body).await;
        assert_ne!(st, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(j["detail"], "no such endpoint", "{method} {path}");
        if !st.is_success() {
            assert_eq!(
                h["content-type"], "application/problem+json",
                "{method} {path}: {st}"
            );
            assert_eq!(j["status"], st.as_u16(), "{method} {path}");
            let documented_codes = doc["paths"][path][method]["responses"].as_object().unwrap();
            assert!(
                documented_codes.contains_key(st.as_str()),
                "{method} {path} answered {st}, not in the document"
            );
        }
    }
    // Anything else is a problem+json 404.
    let (st, h, j) = common::request(&s, "GET", "/api/v1/nothing-here", None, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(j["detail"], "no such endpoint");
}

#[tokio::test]
async fn the_entry_schema_matches_a_real_ledger_entry() {
    use evoucher_core::ledger::{Ledger, RedeemRequest, Redeemer};
    let s = state("entry").await;
    let (_, _, doc) = common::request(&s, "GET", "/openapi.json", None, None).await;
    let schema = &doc["components"]["schemas"]["Entry"];
    let d = std::env::temp_dir().join(format!("evoucher-openapi-{}-ledger", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let key = evoucher_core::IssuerKey::generate().unwrap();
    let now = evoucher_core::ledger_now();
    let v = evoucher_core::VoucherBuilder::new("https://i.example", "p", "B-1")
        .times(now, None, now + 3600)
        .value(100, "KES")
        .build()
        .unwrap();
    let text = evoucher_core::encode::encode(&v, &key).unwrap().text;
    let trust = evoucher_core::TrustStore::from_jwks_json(
        &serde_json::json!({"keys": [key.public_jwk()]}).to_string(),
    )
    .unwrap();
    let l = Ledger::open(&d.join("l.db")).unwrap();
    let verified = evoucher_core::verify(&text, &trust, now).unwrap();
    let who = Redeemer {
        provider: "SP",
        category: None,
        device: "d",
    };
    l.redeem(&verified, &who, &RedeemRequest::Whole, now)
        .unwrap();
    let entry = serde_json::to_value(&l.outbox(1).unwrap()[0]).unwrap();
    let keys: std::collections::BTreeSet<&String> = entry.as_object().unwrap().keys().collect();
    let props: std::collections::BTreeSet<&String> =
        schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, props, "Entry properties");
    for r in schema["required"].as_array().unwrap() {
        assert!(!entry[r.as_str().unwrap()].is_null(), "{r}");
    }
    for (k, p) in schema["properties"].as_object().unwrap() {
        let t = &p["type"];
        let ok =
            |name: &str| t == name || t.as_array().is_some_and(|a| a.iter().any(|x| x == name));
        let kind = match &entry[k] {
            Value::Null => "null",
            Value::String(_) => "string",
            Value::Number(_) => "integer",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Bool(_) => "boolean",
        };
        assert!(ok(kind), "{k}: {kind} vs {t}");
    }
}
