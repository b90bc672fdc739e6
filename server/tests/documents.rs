//! Beneficiaries from CSV, issuance to them, and what gets printed: the QR PNG and the voucher
//! letters (PDF), read back by our own scanner from a 150-dpi render made by poppler's pdftoppm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use evoucher_core::scan::{scan_image_bytes, ScanOptions};
use evoucher_core::{verify, TrustStore};
use evoucher_server::{AppState, Config};
use serde_json::{json, Value};

const ADMIN: &str = "test-admin-token-0123456789";

async fn state(name: &str) -> (AppState, std::path::PathBuf) {
    let d = std::env::temp_dir().join(format!("evoucher-docs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let cfg = Config {
        database: common::database(&d, name).await,
        admin_token: ADMIN.into(),
        master_key: [7; 32],
    };
    let s = AppState::new(&cfg).await.unwrap();
    let (st, _, _) = common::request(&s, "POST", "/api/v1/programs", Some(ADMIN), Some(json!({"id": "food", "name": "Food Support 2026", "issuer": "https://food.example", "currency": "KES", "amount": 150000, "validity_days": 30}))).await;
    assert_eq!(st, StatusCode::CREATED);
    (s, d)
}

async fn csv(s: &AppState, body: &str, ct: &str, token: Option<&str>) -> (StatusCode, Value) {
    let (st, _, b) = common::request_raw(
        s,
        "POST",
        "/api/v1/programs/food/beneficiaries",
        token,
        Some((ct, body.as_bytes().to_vec())),
    )
    .await;
    (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// Issue to every imported beneficiary not yet holding a voucher: the status and answer.
async fn issue_imported(s: &AppState) -> (StatusCode, Value) {
    let (st, _, j) = common::request(
        s,
        "POST",
        "/api/v1/programs/food/vouchers",
        Some(ADMIN),
        Some(json!({"imported": true})),
    )
    .await;
    (st, j)
}

async fn count(s: &AppState) -> i64 {
    let (_, j) = issue_imported(s).await;
    // Issuing drains the pending list; callers only use this on an empty program.
    j["vouchers"]
        .as_array()
        .map(|a| a.len() as i64)
        .unwrap_or(-1)
}

/// Import this CSV into the program and issue to everyone imported; the issued vouchers.
async fn import_and_issue(s: &AppState, rows: &str) -> Vec<Value> {
    assert_eq!(
        csv(s, rows, "text/csv", Some(ADMIN)).await.0,
        StatusCode::OK
    );
    let (st, j) = issue_imported(s).await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    assert_eq!(j["remaining"], 0);
    j["vouchers"].as_array().unwrap().clone()
}

const ROWS: &str = "beneficiary_id,name,amount\nB-003,José Ñúñez,\nB-001,Amina Wanjiru,200000\nB-002,\"Otieno, Peter\",\n";

#[tokio::test]
async fn csv_import_is_checked_whole_and_idempotent() {
    let (s, _) = state("csv").await;
    // Refused files store nothing and never echo their content.
    for (body, line) in [
        ("name\nX\n", "line 1"),
        ("beneficiary_id,amount\nB-1,10\nB-2,ten\n", "line 3"),
        ("beneficiary_id,amount\nB-1,10\nB-1,20\n", "line 3"),
        ("beneficiary_id,amount\nB-1,-5\n", "line 2"),
        ("beneficiary_id\n,\n", "line 2"),
        ("beneficiary_id\n", "no rows"),
        (
            "beneficiary_id,items\nB-1,RICE:1\n",
            "line 2: items are set by the program",
        ),
    ] {
        let (st, j) = csv(&s, body, "text/csv", Some(ADMIN)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {j}");
        let detail = j["detail"].as_str().unwrap();
        assert!(detail.contains(line), "{detail}");
        assert!(
            !detail.contains("ten") && !detail.contains("B-1"),
            "{detail}"
        );
    }
    assert_eq!(
        csv(&s, ROWS, "application/json", Some(ADMIN)).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        csv(&s, ROWS, "text/csv", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, _, _) = common::request_raw(
        &s,
        "POST",
        "/api/v1/programs/nope/beneficiaries",
        Some(ADMIN),
        Some(("text/csv", ROWS.into())),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Nothing was stored by any of those.
    assert_eq!(count(&s).await, 0);

    let (st, j) = csv(&s, ROWS, "text/csv; charset=utf-8", Some(ADMIN)).await;
    assert_eq!(st, StatusCode::OK, "{j}");
    assert_eq!(
        (
            j["rows"].as_i64(),
            j["added"].as_i64(),
            j["updated"].as_i64()
        ),
        (Some(3), Some(3), Some(0))
    );
    let (_, j) = csv(&s, ROWS, "text/csv", Some(ADMIN)).await;
    assert_eq!(
        (
            j["added"].as_i64(),
            j["updated"].as_i64(),
            j["total"].as_i64()
        ),
        (Some(0), Some(3), Some(3))
    );
    // The same file saved by a spreadsheet (UTF-8 with a byte-order mark) is the same import.
    let (st, j) = csv(&s, &format!("\u{feff}{ROWS}"), "text/csv", Some(ADMIN)).await;
    assert_eq!(st, StatusCode::OK, "{j}");
    assert_eq!(
        (j["added"].as_i64(), j["total"].as_i64()),
        (Some(0), Some(3))
    );
    // A file bigger than the JSON limit (1 MiB) is fine for CSV: 40,000 rows.
    let mut big = String::from("beneficiary_id,name\n");
    for i in 0..40_000 {
        big.push_str(&format!("X-{i:06},Beneficiary number {i}\n"));
    }
    assert!(big.len() > 1024 * 1024);
    let (st, j) = csv(&s, &big, "text/csv", Some(ADMIN)).await;
    assert_eq!(st, StatusCode::OK, "{j}");
    assert_eq!(j["total"].as_i64(), Some(40_003));
}

/// Render a PDF at 150 dpi with pdftoppm; the pages as PNG bytes, in order.
fn render(pdf: &[u8], dir: &std::path::Path) -> Vec<Vec<u8>> {
    let f = dir.join("letters.pdf");
    std::fs::write(&f, pdf).unwrap();
    let out = std::process::Command::new("pdftoppm")
        .args(["-r", "150", "-png"])
        .arg(&f)
        .arg(dir.join("page"))
        .output()
        .expect("pdftoppm (poppler-utils) is needed; scripts/test.sh installs it");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "poppler complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("page"))
        .collect();
    pages.sort();
    let bytes = pages.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for p in pages {
        std::fs::remove_file(p).unwrap();
    }
    bytes
}

fn text_of(pdf: &[u8], dir: &std::path::Path) -> String {
    let f = dir.join("text.pdf");
    std::fs::write(&f, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&f)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn scan_one(png: &[u8]) -> String {
    let codes = scan_image_bytes(png, &ScanOptions::default()).unwrap();
    assert_eq!(codes.len(), 1, "one QR code on the page");
    codes[0].text.clone().unwrap()
}

#[tokio::test]
async fn vouchers_for_imported_beneficiaries_print_and_scan() {
    let (s, dir) = state("print").await;
    let issued = import_and_issue(&s, ROWS).await;
    let bens: Vec<&str> = issued
        .iter()
        .map(|v| v["beneficiary_id"].as_str().unwrap())
        .collect();
    assert_eq!(bens, ["B-001", "B-002", "B-003"]);
    // Nobody is pending any more.
    let (_, _, again) = common::request(
        &s,
        "POST",
        "/api/v1/programs/food/vouchers",
        Some(ADMIN),
        Some(json!({"imported": true})),
    )
    .await;
    assert_eq!(again["vouchers"].as_array().unwrap().len(), 0);
    let (_, _, jwks) = common::request(&s, "GET", "/api/v1/trust", None, None).await;
    let trust = TrustStore::from_jwks_json(&jwks.to_string()).unwrap();
    let now = evoucher_server::now();
    let v1 = verify(issued[0]["text"].as_str().unwrap(), &trust, now).unwrap();
    assert_eq!(
        v1.voucher.value.as_ref().unwrap().amount,
        200_000,
        "the CSV's amount"
    );
    assert_eq!(
        v1.voucher.beneficiary.name.as_deref(),
        Some("Amina Wanjiru")
    );
    let v2 = verify(issued[1]["text"].as_str().unwrap(), &trust, now).unwrap();
    assert_eq!(
        v2.voucher.value.as_ref().unwrap().amount,
        150_000,
        "the program's default"
    );

    // The PNG scans to the voucher text.
    let id = issued[2]["id"].as_str().unwrap();
    let (st, h, png) = common::request_raw(
        &s,
        "GET",
        &format!("/api/v1/vouchers/{id}/qr.png"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(scan_one(&png), issued[2]["text"].as_str().unwrap());

    // One letter: rendered at 150 dpi, our scanner reads the code, which verifies.
    let (st, h, pdf) = common::request_raw(
        &s,
        "GET",
        &format!("/api/v1/vouchers/{id}/letter.pdf"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "application/pdf");
    let pages = render(&pdf, &dir);
    assert_eq!(pages.len(), 1);
    let text = scan_one(&pages[0]);
    assert_eq!(text, issued[2]["text"].as_str().unwrap());
    assert_eq!(
        verify(&text, &trust, now).unwrap().voucher.beneficiary.id,
        "B-003"
    );
    let words = text_of(&pdf, &dir);
    for want in [
        "Food Support 2026",
        "José Ñúñez",
        "B-003",
        "1500.00 KES",
        " UTC",
        "once, in full",
        id,
    ] {
        assert!(words.contains(want), "{want:?} not on the page: {words}");
    }

    // The program's letters: one page per live voucher, in beneficiary order; a cancelled
    // voucher is left out and cannot be downloaded.
    let cancelled = issued[1]["id"].as_str().unwrap();
    let (st, _, _) = common::request(
        &s,
        "POST",
        &format!("/api/v1/vouchers/{cancelled}/cancel"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    for what in ["qr.png", "letter.pdf"] {
        let (st, _, _) = common::request_raw(
            &s,
            "GET",
            &format!("/api/v1/vouchers/{cancelled}/{what}"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::CONFLICT);
    }
    let (st, h, pdf) = common::request_raw(
        &s,
        "GET",
        "/api/v1/programs/food/letters.pdf",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["x-total-count"], "2");
    let pages = render(&pdf, &dir);
    assert_eq!(pages.len(), 2);
    assert_eq!(scan_one(&pages[0]), issued[0]["text"].as_str().unwrap());
    assert_eq!(scan_one(&pages[1]), issued[2]["text"].as_str().unwrap());
    // Paging, limits, and auth.
    let (st, _, pdf) = common::request_raw(
        &s,
        "GET",
        "/api/v1/programs/food/letters.pdf?offset=1&limit=1",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        scan_one(&render(&pdf, &dir)[0]),
        issued[2]["text"].as_str().unwrap()
    );
    for (uri, want) in [
        (
            "/api/v1/programs/food/letters.pdf?limit=0",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/programs/food/letters.pdf?limit=1001",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/programs/food/letters.pdf?offset=5",
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/programs/none/letters.pdf", StatusCode::NOT_FOUND),
        ("/api/v1/vouchers/00/qr.png", StatusCode::NOT_FOUND),
    ] {
        let (st, h, _) = common::request_raw(&s, "GET", uri, Some(ADMIN), None).await;
        assert_eq!(st, want, "{uri}");
        assert_eq!(h["content-type"], "application/problem+json");
    }
    for uri in [
        format!("/api/v1/vouchers/{id}/qr.png"),
        format!("/api/v1/vouchers/{id}"),
        "/api/v1/programs/food/letters.pdf".into(),
    ] {
        assert_eq!(
            common::request_raw(&s, "GET", &uri, None, None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (_, _, rec) = common::request(
        &s,
        "GET",
        &format!("/api/v1/vouchers/{cancelled}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(rec["cancelled"], true);
}

/// Admin calls at the same moment (on PostgreSQL through several connections): issuing to
/// imported beneficiaries from four calls gives each beneficiary exactly one voucher; two
/// rotations leave one current key; cancellations get distinct, gap-free feed numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admin_calls_stay_consistent() {
    let (s, _) = state("concurrent").await;
    let mut roster = String::from("beneficiary_id\n");
    for i in 0..400 {
        roster.push_str(&format!("C-{i:04}\n"));
    }
    assert_eq!(
        csv(&s, &roster, "text/csv", Some(ADMIN)).await.0,
        StatusCode::OK
    );
    let calls = (0..4).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            common::request(
                &s,
                "POST",
                "/api/v1/programs/food/vouchers",
                Some(ADMIN),
                Some(json!({"imported": true})),
            )
            .await
        })
    });
    let mut issued = Vec::new();
    for c in calls.collect::<Vec<_>>() {
        let (st, _, j) = c.await.unwrap();
        assert_eq!(st, StatusCode::CREATED, "{j}");
        issued.extend(
            j["vouchers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["beneficiary_id"].as_str().unwrap().to_owned()),
        );
    }
    issued.sort();
    let before = issued.len();
    issued.dedup();
    assert_eq!((before, issued.len()), (400, 400), "one voucher each");

    let rotations: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                common::request(
                    &s,
                    "POST",
                    "/api/v1/programs/food/keys/rotate",
                    Some(ADMIN),
                    None,
                )
                .await
            })
        })
        .collect();
    for r in rotations {
        assert_eq!(r.await.unwrap().0, StatusCode::OK);
    }
    let (_, _, jwks) = common::request(&s, "GET", "/api/v1/trust", None, None).await;
    let current = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["exp"].is_null())
        .count();
    assert_eq!(current, 1, "one current key: {jwks}");

    let (_, _, j) = common::request(&s, "POST", "/api/v1/programs/food/vouchers", Some(ADMIN), Some(json!({"beneficiaries": (0..40).map(|i| json!({"id": format!("K-{i}")})).collect::<Vec<_>>()}))).await;
    let cancels: Vec<_> = j["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let (s, id) = (s.clone(), v["id"].as_str().unwrap().to_owned());
            tokio::spawn(async move {
                common::request(
                    &s,
                    "POST",
                    &format!("/api/v1/vouchers/{id}/cancel"),
                    Some(ADMIN),
                    None,
                )
                .await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for c in cancels {
        let (st, _, r) = c.await.unwrap();
        assert_eq!(st, StatusCode::OK, "{r}");
        seqs.push(r["seq"].as_i64().unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
}

const NAMES: [&str; 5] = [
    "Алексей Петров",
    "Ελένη Παπαδοπούλου",
    "محمد علي",
    "አበበ በቀለ",
    "सीता देवी",
];

#[tokio::test]
async fn names_in_other_scripts_print_with_the_configured_fonts() {
    let (plain, dir) = state("scripts").await;
    let s = plain.clone().with_letter_fonts(common::noto(&[
        "Sans",
        "SansArabic",
        "SansEthiopic",
        "SansDevanagari",
    ]));
    let rows: String = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| format!("S-{i},{n}\n"))
        .collect();
    let issued = import_and_issue(&s, &format!("beneficiary_id,name\n{rows}")).await;
    let uri = "/api/v1/programs/food/letters.pdf";
    let (st, _, pdf) = common::request_raw(&s, "GET", uri, Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::OK);

    // The names come back out of the PDF as text (its ToUnicode maps), with nothing lost.
    let text = text_of(&pdf, &dir);
    assert!(!text.contains('?'), "{text}");
    for name in [NAMES[0], NAMES[1], NAMES[3], NAMES[4]] {
        assert!(text.contains(name), "{name} not in:\n{text}");
    }
    // Arabic: shaped into joined forms, drawn right to left; every letter is there.
    for c in NAMES[2].chars().filter(|c| !c.is_whitespace()) {
        assert!(text.contains(c), "{c} not in:\n{text}");
    }
    // Four subsets embedded as CID TrueType fonts, not whole fonts: the five pages stay small.
    let f = dir.join("fonts.pdf");
    std::fs::write(&f, &pdf).unwrap();
    let out = std::process::Command::new("pdffonts")
        .arg(&f)
        .output()
        .unwrap();
    let fonts = String::from_utf8(out.stdout).unwrap();
    // Columns: name, type, encoding, embedded, subset, ToUnicode, object.
    let embedded: Vec<String> = fonts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| l.contains(" CID TrueType Identity-H yes yes yes "))
        .collect();
    assert_eq!(embedded.len(), 4, "{fonts}");
    for name in [
        "NotoSans-Regular",
        "NotoSansArabic",
        "NotoSansEthiopic",
        "NotoSansDevanagari",
    ] {
        assert!(
            embedded.iter().any(|l| l.contains(&format!("+{name}"))),
            "{fonts}"
        );
    }
    assert!(pdf.len() < 150_000, "{} bytes", pdf.len());

    // Every page renders cleanly (render() fails on any poppler complaint) and its code scans.
    let pages = render(&pdf, &dir);
    assert_eq!(pages.len(), NAMES.len());
    for (page, v) in pages.iter().zip(&issued) {
        assert_eq!(scan_one(page), v["text"].as_str().unwrap());
    }

    // Without configured fonts the same letters print those names as '?' (still valid PDF).
    let (_, _, pdf) = common::request_raw(&plain, "GET", uri, Some(ADMIN), None).await;
    let text = text_of(&pdf, &dir);
    assert!(text.contains("?????? ??????"), "{text}");
    assert!(!text.contains(NAMES[0]));
}
