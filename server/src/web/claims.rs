//! The back office's reimbursement pages: claims (a provider makes and follows its own; a
//! reviewer decides the stage of their role), payables with their PDFs, payment batches and
//! the switch's results. Every action calls the API's own functions (`routes::claims`,
//! `routes::payables`, `routes::payments`): the same rules, the same audit records.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use sqlx::Row;

use super::pages::{api, pager, text, when, PageResult, Pager};
use super::{csrf_ok, render, Page, Posted, Web, WebError};
use crate::auth::{Perm, Scope};
use crate::routes::claims::{self, Decision, LineDecision, NewClaim, Submit, Submitter};
use crate::routes::{payables, payments};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/claims", get(list_page))
        .route("/claims/new", get(new_page).post(make))
        .route("/claims/{id}", get(claim_page))
        .route("/claims/{id}/decision", post(decision))
        .route("/claims/{id}/documents", post(add_documents))
        .route("/claims/{id}/submit", post(resubmit))
        .route("/claims/{id}/withdraw", post(withdraw))
        .route("/payables", get(payables_page))
        .route("/payables/batch", post(batch))
        .route("/payables/results", post(results))
        .route("/payables/{id}/requeue", post(requeue))
        .route("/payables/{id}/reissue", post(reissue))
}

fn money(amount: Option<i64>, currency: &str) -> String {
    match amount {
        Some(a) if !currency.is_empty() => {
            evoucher_core::voucher::format_amount(a.max(0) as u64, currency)
        }
        Some(a) => a.to_string(),
        None => "–".into(),
    }
}

/// A claim's state in words: "waiting for the accountant (stage 1 of 2)" and the like.
fn state_words(w: &Web, c: &serde_json::Value) -> String {
    let tr = w.tr;
    let state = text(&c["state"]);
    if state == "submitted" {
        tr.f(
            "claims.waiting",
            &[
                ("role", tr.t(&format!("role.{}", text(&c["waiting_for"])))),
                ("stage", &text(&c["stage"])),
                (
                    "of",
                    &c["stages"]
                        .as_array()
                        .map(|a| a.len())
                        .unwrap_or(0)
                        .to_string(),
                ),
            ],
        )
    } else {
        tr.t(&format!("claims.state.{state}")).to_owned()
    }
}

// ---- the list ----

struct ClaimRow {
    id: String,
    program: String,
    provider: String,
    state: String,
    state_class: String,
    claimed: String,
    approved: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "claims.html")]
struct ClaimsPage {
    p: Page,
    rows: Vec<ClaimRow>,
    pager: Pager,
    filter: String,
    filters: Vec<(String, String)>,
    can_submit: bool,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    show: Option<String>,
    #[serde(default)]
    offset: i64,
}

async fn list_page(w: Web, Query(q): Query<ListQuery>) -> PageResult {
    w.need(Perm::ReadClaims)?;
    let tr = w.tr;
    let reviewer = w.can(Perm::ReviewClaims);
    // A reviewer opens on what waits for their role.
    let show = q.show.clone().unwrap_or_else(|| {
        if reviewer {
            "mine".into()
        } else {
            "all".into()
        }
    });
    let mut f = claims::ClaimFilter {
        state: None,
        program: None,
        provider: None,
        waiting_for: None,
        offset: q.offset.max(0),
        limit: 50,
    };
    match show.as_str() {
        "mine" if reviewer => f.waiting_for = Some(w.user.role.as_str().to_owned()),
        "all" => {}
        other => f.state = Some(other.to_owned()),
    }
    let v = claims::list_for(&w.s, w.who.own_provider(), w.who.program_limit(), f)
        .await
        .map_err(|e| api(&w, e))?;
    let rows = v["claims"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let cur = text(&c["currency"]);
                    ClaimRow {
                        id: text(&c["id"]),
                        program: text(&c["program"]),
                        provider: text(&c["provider_name"]),
                        state: state_words(&w, c),
                        state_class: text(&c["state"]),
                        claimed: money(c["claimed"].as_i64(), &cur),
                        approved: money(c["approved"].as_i64(), &cur),
                        updated: when(c["updated_at"].as_i64()),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut filters = Vec::new();
    if reviewer {
        filters.push(("mine".to_owned(), tr.t("claims.show.mine").to_owned()));
    }
    filters.push(("all".to_owned(), tr.t("claims.show.all").to_owned()));
    for st in [
        "submitted",
        "returned",
        "payable",
        "paid",
        "failed",
        "rejected",
    ] {
        filters.push((
            st.to_owned(),
            tr.t(&format!("claims.state.{st}")).to_owned(),
        ));
    }
    let total = v["total"].as_i64().unwrap_or(0);
    Ok(render(&ClaimsPage {
        p: w.page(tr.t("claims.title")),
        pager: pager(
            &format!("/claims?show={show}"),
            q.offset.max(0),
            50,
            total,
            &tr,
        ),
        rows,
        filter: show,
        filters,
        can_submit: w.can(Perm::SubmitClaims) && w.who.own_provider().is_some(),
    }))
}

// ---- a new claim (provider accounts) ----

#[derive(Template)]
#[template(path = "claim_new.html")]
struct NewClaimPage {
    p: Page,
    programs: Vec<(String, i64)>,
}

async fn new_page_with(w: &Web, error: Option<String>) -> PageResult {
    w.need(Perm::SubmitClaims)?;
    let Some(provider) = w.who.own_provider() else {
        return Err(WebError::forbidden(w));
    };
    // The programs in which this provider has something to claim, and how much.
    let rows = sqlx::query(
        "SELECT v.program_id, COUNT(*) AS n FROM redemptions r JOIN devices d ON d.id = r.device_id JOIN vouchers v ON v.id = r.voucher_id \
         WHERE d.provider_id = $1 AND r.kind = 'redeem' AND r.status = 'accepted' \
         AND NOT EXISTS (SELECT 1 FROM claimed c WHERE c.redemption_id = r.id) \
         AND NOT EXISTS (SELECT 1 FROM redemptions x WHERE x.voids = r.id AND x.kind = 'void' AND x.status = 'accepted') \
         GROUP BY v.program_id ORDER BY v.program_id",
    )
    .bind(provider)
    .fetch_all(&w.s.db)
    .await
    .map_err(|e| api(w, e.into()))?;
    let programs = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String, _>("program_id").unwrap_or_default(),
                r.try_get::<i64, _>("n").unwrap_or(0),
            )
        })
        .collect();
    let mut r = render(&NewClaimPage {
        p: w.page(w.tr.t("claims.new")).error(error.clone()),
        programs,
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn new_page(w: Web) -> PageResult {
    new_page_with(&w, None).await
}

/// The fields of a multipart form: text fields, and the files given.
struct Form {
    fields: std::collections::BTreeMap<String, String>,
    files: Vec<(String, Vec<u8>)>,
}

async fn read_form(mut mp: Multipart) -> Result<Form, String> {
    let mut f = Form {
        fields: Default::default(),
        files: Vec::new(),
    };
    loop {
        let field = match mp.next_field().await {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => return Err(e.to_string()),
        };
        let name = field.name().unwrap_or("").to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file) => {
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                if !bytes.is_empty() {
                    f.files.push((file, bytes.to_vec()));
                }
            }
            None => {
                let t = field.text().await.map_err(|e| e.to_string())?;
                f.fields.insert(name, t);
            }
        }
    }
    Ok(f)
}

/// A multipart form from our own page (the same check [`Posted`] makes of other forms).
async fn own_form(w: &Web, headers: &HeaderMap, mp: Multipart) -> Result<Form, WebError> {
    let f = read_form(mp)
        .await
        .map_err(|e| WebError::page(w, StatusCode::BAD_REQUEST, &e))?;
    let token = f.fields.get("csrf").cloned().unwrap_or_default();
    if !csrf_ok(w, headers, &token) {
        return Err(WebError::page(
            w,
            StatusCode::FORBIDDEN,
            "cross-site request refused (origin or CSRF token)",
        ));
    }
    Ok(f)
}

async fn make(w: Web, headers: HeaderMap, mp: Multipart) -> PageResult {
    w.need(Perm::SubmitClaims)?;
    let form = own_form(&w, &headers, mp).await?;
    let who = Submitter::of_user(&w.who).map_err(|e| api(&w, e))?;
    let program = form.fields.get("program").cloned().unwrap_or_default();
    let up_to = match form
        .fields
        .get("up_to")
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
    {
        None => None,
        Some(x) => match time_local(x) {
            Some(t) => Some(t),
            None => {
                return new_page_with(&w, Some(format!("up to: {x:?} is not a date and time")))
                    .await
            }
        },
    };
    let key = form
        .fields
        .get("key")
        .cloned()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| crate::secret::random_token(12).unwrap_or_default());
    let n = NewClaim {
        key,
        program,
        redemptions: None,
        up_to,
        note: form.fields.get("note").cloned(),
    };
    let id = match claims::create(&w.s, &who, w.client, n).await {
        Ok((_, v)) => text(&v["id"]),
        Err(e) if e.status_code().is_client_error() && e.status_code() != StatusCode::FORBIDDEN => {
            return new_page_with(&w, Some(e.to_string())).await
        }
        Err(e) => return Err(api(&w, e)),
    };
    for (name, bytes) in &form.files {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        if let Err(e) =
            claims::add_document(&w.s, &who, w.client, &id, &sha, name.clone(), bytes).await
        {
            // The claim stays a draft: the provider sees why and adds a right file.
            return Ok(Redirect::to(&format!(
                "/claims/{id}?error={}",
                super::url_escape(&format!("{name}: {e}"))
            ))
            .into_response());
        }
    }
    claims::submit(&w.s, &who, w.client, &id, Submit::default())
        .await
        .map_err(|e| api(&w, e))?;
    Ok(Redirect::to(&format!("/claims/{id}?done=submitted")).into_response())
}

/// `YYYY-MM-DDTHH:MM` (a datetime-local field, taken as UTC) to seconds.
fn time_local(s: &str) -> Option<i64> {
    let full = if s.len() == 16 {
        format!("{s}:00Z")
    } else {
        format!("{s}Z")
    };
    time::OffsetDateTime::parse(&full, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

// ---- one claim ----

struct LineRow {
    redemption: String,
    voucher: String,
    voucher_short: String,
    beneficiary: String,
    device: String,
    at: String,
    what: String,
    value: String,
    approved: String,
    note: String,
    flags: String,
}

struct DocRow {
    url: String,
    name: String,
    image: bool,
    size: String,
}

#[derive(Template)]
#[template(path = "claim.html")]
struct ClaimPage {
    p: Page,
    id: String,
    facts: Vec<(String, String)>,
    question: String,
    reason: String,
    docs: Vec<DocRow>,
    lines: Vec<LineRow>,
    pager: Pager,
    steps: Vec<(String, String, String, String)>,
    /// The reviewer may decide this stage.
    decide: bool,
    stage: i64,
    /// The provider may add documents, submit again, or withdraw.
    provider_actions: bool,
    payable: Option<(String, String)>,
}

#[derive(Deserialize)]
struct ClaimQuery {
    #[serde(default)]
    offset: i64,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn claim_page(w: Web, Path(id): Path<String>, Query(q): Query<ClaimQuery>) -> PageResult {
    w.permit(Perm::ReadClaims, Scope::Claim, &id).await?;
    let tr = w.tr;
    let c = claims::claim_json(&w.s, &id, false)
        .await
        .map_err(|e| api(&w, e))?;
    let cur = text(&c["currency"]);
    let mut conn = w.s.db.acquire().await.map_err(|e| api(&w, e.into()))?;
    let limit = 200;
    let lines_json = claims::claim_lines(&mut conn, &id, q.offset.max(0), limit)
        .await
        .map_err(|e| api(&w, e))?;
    drop(conn);
    let lines = lines_json
        .iter()
        .map(|l| {
            let mut what = Vec::new();
            if let Some(a) = l["amount"].as_i64().filter(|a| *a != 0) {
                what.push(money(Some(a), l["currency"].as_str().unwrap_or("")));
            }
            for it in l["items"].as_array().into_iter().flatten() {
                what.push(format!("{} × {}", text(&it["quantity"]), text(&it["code"])));
            }
            let voucher = text(&l["voucher"]);
            LineRow {
                redemption: text(&l["redemption"]),
                voucher_short: format!("{}…", voucher.chars().take(8).collect::<String>()),
                voucher,
                beneficiary: text(&l["beneficiary"]),
                device: text(&l["device"]),
                at: when(l["at"].as_i64()),
                what: what.join(", "),
                value: money(l["value"].as_i64(), &cur),
                approved: l["approved"]
                    .as_i64()
                    .map(|a| money(Some(a), &cur))
                    .unwrap_or_default(),
                note: text(&l["note"]),
                flags: l["flags"]
                    .as_array()
                    .map(|f| f.iter().map(text).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default(),
            }
        })
        .collect();
    let docs = c["documents"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| DocRow {
                    url: format!("/api/v1/claims/{id}/documents/{}", text(&d["sha256"])),
                    name: text(&d["name"]),
                    image: text(&d["media_type"]).starts_with("image/"),
                    size: format!("{} KB", (d["size"].as_i64().unwrap_or(0) + 1023) / 1024),
                })
                .collect()
        })
        .unwrap_or_default();
    let steps = c["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        when(s["at"].as_i64()),
                        tr.t(&format!("claims.step.{}", text(&s["action"])))
                            .to_owned(),
                        format!(
                            "{} ({})",
                            text(&s["by"]),
                            tr.t(&format!("role.{}", text(&s["role"])))
                        ),
                        [
                            s["amount"].as_i64().map(|a| money(Some(a), &cur)),
                            s["text"].as_str().map(str::to_owned),
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" · "),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let state = text(&c["state"]);
    let facts = vec![
        (tr.t("claims.program").to_owned(), text(&c["program"])),
        (
            tr.t("claims.provider").to_owned(),
            format!("{} ({})", text(&c["provider_name"]), text(&c["provider"])),
        ),
        (tr.t("claims.state").to_owned(), state_words(&w, &c)),
        (
            tr.t("claims.redemptions").to_owned(),
            text(&c["line_count"]),
        ),
        (
            tr.t("claims.claimed").to_owned(),
            money(c["claimed"].as_i64(), &cur),
        ),
        (
            tr.t("claims.approved").to_owned(),
            money(c["approved"].as_i64(), &cur),
        ),
        (
            tr.t("claims.period").to_owned(),
            format!(
                "{} – {}",
                when(c["period"]["from"].as_i64()),
                when(c["period"]["to"].as_i64())
            ),
        ),
        (tr.t("claims.note").to_owned(), text(&c["note"])),
    ];
    let waiting = text(&c["waiting_for"]);
    let decide =
        state == "submitted" && w.can(Perm::ReviewClaims) && waiting == w.user.role.as_str();
    let provider_actions = w.can(Perm::SubmitClaims)
        && w.who.own_provider() == c["provider"].as_str()
        && (state == "draft" || state == "returned");
    let payable = c["payable"]["id"].as_str().map(|p| {
        (
            p.to_owned(),
            format!(
                "{} · {}",
                money(c["payable"]["amount"].as_i64(), &cur),
                tr.t(&format!("payables.state.{}", text(&c["payable"]["state"])))
            ),
        )
    });
    let flash = q.done.map(|d| tr.t(&format!("claims.done.{d}")).to_owned());
    let total = c["line_count"].as_i64().unwrap_or(0);
    Ok(render(&ClaimPage {
        p: w.page(&format!("{} {id}", tr.t("claims.one")))
            .flash(flash)
            .error(q.error),
        facts,
        question: text(&c["question"]),
        reason: text(&c["reason"]),
        docs,
        lines,
        pager: pager(&format!("/claims/{id}"), q.offset.max(0), limit, total, &tr),
        steps,
        decide,
        stage: c["stage"].as_i64().unwrap_or(0),
        provider_actions,
        payable,
        id,
    }))
}

/// The decision form: `stage`, `decision`, `reason`, and for each lowered line
/// `lower.<redemption>` (major units, as printed) with `why.<redemption>`.
async fn decision(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> PageResult {
    let Posted { w, form } = <Posted<Vec<(String, String)>> as axum::extract::FromRequest<
        AppState,
    >>::from_request(req, &s)
    .await
    .map_err(WebError::from_response)?;
    w.permit(Perm::ReviewClaims, Scope::Claim, &id).await?;
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let currency: String = sqlx::query("SELECT currency FROM claims WHERE id = $1")
        .bind(&id)
        .fetch_optional(&s.db)
        .await
        .map_err(|e| api(&w, e.into()))?
        .map(|r| r.try_get("currency").unwrap_or_default())
        .unwrap_or_default();
    let e = evoucher_core::voucher::currency_exponent(&currency);
    let mut lines = Vec::new();
    for (k, v) in &form {
        let (Some(r), false) = (k.strip_prefix("lower."), v.trim().is_empty()) else {
            continue;
        };
        let Some(minor) = parse_major(v.trim(), e) else {
            return Ok(Redirect::to(&format!(
                "/claims/{id}?error={}",
                super::url_escape(&format!("{v:?} is not an amount"))
            ))
            .into_response());
        };
        lines.push(LineDecision {
            redemption: r.to_owned(),
            approved: minor,
            reason: get(&format!("why.{r}")),
        });
    }
    let d = Decision {
        stage: get("stage").parse().unwrap_or(0),
        decision: get("decision"),
        reason: Some(get("reason")).filter(|x| !x.is_empty()),
        lines,
    };
    match claims::decide_as(&s, &w.who, w.client, &id, d).await {
        Ok(v) => {
            Ok(Redirect::to(&format!("/claims/{id}?done={}", text(&v["state"]))).into_response())
        }
        Err(e) if e.status_code() == StatusCode::FORBIDDEN => Err(api(&w, e)),
        Err(e) => Ok(Redirect::to(&format!(
            "/claims/{id}?error={}",
            super::url_escape(&e.to_string())
        ))
        .into_response()),
    }
}

/// `12.50` in a currency with 2 decimals → 1250 minor units.
fn parse_major(s: &str, exponent: u32) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > exponent as usize || whole.is_empty() && frac.is_empty() {
        return None;
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<width$}", width = exponent as usize)
            .parse()
            .ok()?
    };
    w.checked_mul(10u64.pow(exponent))?.checked_add(f)
}

async fn add_documents(
    w: Web,
    Path(id): Path<String>,
    headers: HeaderMap,
    mp: Multipart,
) -> PageResult {
    w.permit(Perm::SubmitClaims, Scope::Claim, &id).await?;
    let form = own_form(&w, &headers, mp).await?;
    let who = Submitter::of_user(&w.who).map_err(|e| api(&w, e))?;
    for (name, bytes) in &form.files {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        if let Err(e) =
            claims::add_document(&w.s, &who, w.client, &id, &sha, name.clone(), bytes).await
        {
            return Ok(Redirect::to(&format!(
                "/claims/{id}?error={}",
                super::url_escape(&format!("{name}: {e}"))
            ))
            .into_response());
        }
    }
    Ok(Redirect::to(&format!("/claims/{id}?done=documents")).into_response())
}

#[derive(Deserialize)]
struct NoteForm {
    #[serde(default)]
    note: String,
}

async fn resubmit(Path(id): Path<String>, Posted { w, form }: Posted<NoteForm>) -> PageResult {
    w.permit(Perm::SubmitClaims, Scope::Claim, &id).await?;
    let who = Submitter::of_user(&w.who).map_err(|e| api(&w, e))?;
    let b = Submit {
        note: Some(form.note).filter(|n| !n.trim().is_empty()),
    };
    match claims::submit(&w.s, &who, w.client, &id, b).await {
        Ok(_) => Ok(Redirect::to(&format!("/claims/{id}?done=submitted")).into_response()),
        Err(e) => Ok(Redirect::to(&format!(
            "/claims/{id}?error={}",
            super::url_escape(&e.to_string())
        ))
        .into_response()),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn withdraw(Path(id): Path<String>, Posted { w, .. }: Posted<Empty>) -> PageResult {
    w.permit(Perm::SubmitClaims, Scope::Claim, &id).await?;
    let who = Submitter::of_user(&w.who).map_err(|e| api(&w, e))?;
    claims::withdraw(&w.s, &who, w.client, &id)
        .await
        .map_err(|e| api(&w, e))?;
    Ok(Redirect::to(&format!("/claims/{id}?done=withdrawn")).into_response())
}

// ---- payables, batches, results ----

struct PayableRow {
    id: String,
    claim: String,
    provider: String,
    amount: String,
    kind: String,
    state: String,
    state_class: String,
    failure: String,
}

#[derive(Template)]
#[template(path = "payables.html")]
struct PayablesPage {
    p: Page,
    rows: Vec<PayableRow>,
    pager: Pager,
    filter: String,
    filters: Vec<(String, String)>,
    programs: Vec<String>,
    batches: Vec<(String, String, String, String)>,
    can_pay: bool,
}

#[derive(Deserialize)]
struct PayablesQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    offset: i64,
    #[serde(default)]
    flash: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn payables_page(w: Web, Query(q): Query<PayablesQuery>) -> PageResult {
    w.need(Perm::ReadClaims)?;
    if w.who.own_provider().is_some() {
        return Err(WebError::forbidden(&w));
    }
    let tr = w.tr;
    let state = q.state.clone().unwrap_or_default();
    let f = payables::PayableFilter {
        state: Some(state.clone()).filter(|x| !x.is_empty()),
        program: None,
        offset: q.offset.max(0),
        limit: 100,
    };
    let v = payables::list_for(&w.s, &w.who, &f)
        .await
        .map_err(|e| api(&w, e))?;
    let rows = v["payables"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let st = text(&p["state"]);
                    PayableRow {
                        id: text(&p["id"]),
                        claim: text(&p["claim"]),
                        provider: text(&p["provider_name"]),
                        amount: money(p["amount"].as_i64(), &text(&p["currency"])),
                        kind: tr
                            .t(&format!("payables.kind.{}", text(&p["account_kind"])))
                            .to_owned(),
                        state: tr.t(&format!("payables.state.{st}")).to_owned(),
                        state_class: st,
                        failure: text(&p["failure"]),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut filters = vec![(String::new(), tr.t("claims.show.all").to_owned())];
    for st in ["payable", "exported", "paid", "failed"] {
        filters.push((
            st.to_owned(),
            tr.t(&format!("payables.state.{st}")).to_owned(),
        ));
    }
    let programs: Vec<String> =
        sqlx::query("SELECT DISTINCT program_id FROM payables ORDER BY program_id")
            .fetch_all(&w.s.db)
            .await
            .map_err(|e| api(&w, e.into()))?
            .iter()
            .filter_map(|r| r.try_get("program_id").ok())
            .filter(|p: &String| w.user.sees_program(p))
            .collect();
    let batches = sqlx::query("SELECT id, format, total, currency, created_at FROM payment_batches ORDER BY created_at DESC, id LIMIT 20")
        .fetch_all(&w.s.db)
        .await
        .map_err(|e| api(&w, e.into()))?
        .iter()
        .map(|r| {
            (
                r.try_get::<String, _>("id").unwrap_or_default(),
                r.try_get::<String, _>("format").unwrap_or_default(),
                money(r.try_get("total").ok(), &r.try_get::<String, _>("currency").unwrap_or_default()),
                when(r.try_get("created_at").ok()),
            )
        })
        .collect();
    let total = v["total"].as_i64().unwrap_or(0);
    Ok(render(&PayablesPage {
        p: w.page(tr.t("payables.title")).flash(q.flash).error(q.error),
        pager: pager(
            &format!("/payables?state={state}"),
            q.offset.max(0),
            100,
            total,
            &tr,
        ),
        rows,
        filter: state,
        filters,
        programs,
        batches,
        can_pay: w.can(Perm::ManagePayments),
    }))
}

#[derive(Deserialize)]
struct BatchForm {
    program: String,
    format: String,
}

async fn batch(Posted { w, form }: Posted<BatchForm>) -> PageResult {
    w.need(Perm::ManagePayments)?;
    let b = payments::NewBatch {
        format: form.format,
        program: form.program,
        payables: None,
        key: None,
    };
    match payments::make_batch(&w.s, &w.who, w.client, b).await {
        Ok((_, v)) => {
            let flash = w.tr.f(
                "payables.batch_made",
                &[
                    ("id", &text(&v["id"])),
                    (
                        "n",
                        &v["payables"]
                            .as_array()
                            .map(|a| a.len())
                            .unwrap_or(0)
                            .to_string(),
                    ),
                ],
            );
            Ok(
                Redirect::to(&format!("/payables?flash={}", super::url_escape(&flash)))
                    .into_response(),
            )
        }
        Err(e) if e.status_code() == StatusCode::FORBIDDEN => Err(api(&w, e)),
        Err(e) => Ok(Redirect::to(&format!(
            "/payables?error={}",
            super::url_escape(&e.to_string())
        ))
        .into_response()),
    }
}

async fn results(w: Web, headers: HeaderMap, mp: Multipart) -> PageResult {
    w.need(Perm::ManagePayments)?;
    let form = own_form(&w, &headers, mp).await?;
    let Some((name, bytes)) = form.files.first() else {
        return Ok(Redirect::to("/payables?error=no%20file").into_response());
    };
    let mut h = HeaderMap::new();
    let ctype = if name.to_ascii_lowercase().ends_with(".csv") {
        "text/csv"
    } else {
        "application/xml"
    };
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(ctype),
    );
    match payments::apply_results(&w.s, &w.who, w.client, &h, bytes).await {
        Ok(v) => {
            let flash = w.tr.f(
                "payables.results_applied",
                &[
                    ("paid", &text(&v["paid"])),
                    ("failed", &text(&v["failed"])),
                    ("unchanged", &text(&v["unchanged"])),
                ],
            );
            Ok(
                Redirect::to(&format!("/payables?flash={}", super::url_escape(&flash)))
                    .into_response(),
            )
        }
        Err(e) => Ok(Redirect::to(&format!(
            "/payables?error={}",
            super::url_escape(&e.to_string())
        ))
        .into_response()),
    }
}

#[derive(Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn requeue(Path(id): Path<String>, Posted { w, .. }: Posted<Empty>) -> PageResult {
    w.permit(Perm::ManagePayments, Scope::Payable, &id).await?;
    back(&w, &id, "failed", "payable.requeue", None).await
}

async fn reissue(Path(id): Path<String>, Posted { w, form }: Posted<ReasonForm>) -> PageResult {
    w.permit(Perm::ManagePayments, Scope::Payable, &id).await?;
    back(&w, &id, "exported", "payable.reissue", Some(form.reason)).await
}

async fn back(
    w: &Web,
    id: &str,
    from: &str,
    action: &'static str,
    reason: Option<String>,
) -> PageResult {
    match payables::back_to_payable(&w.s, &w.who, w.client, id, from, action, reason).await {
        Ok(_) => Ok(Redirect::to("/payables").into_response()),
        Err(ApiError::Forbidden(m)) => Err(WebError::page(w, StatusCode::FORBIDDEN, &m)),
        Err(e) => Ok(Redirect::to(&format!(
            "/payables?error={}",
            super::url_escape(&e.to_string())
        ))
        .into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_major;

    #[test]
    fn amounts_typed_by_people() {
        assert_eq!(parse_major("12.50", 2), Some(1250));
        assert_eq!(parse_major("12.5", 2), Some(1250));
        assert_eq!(parse_major("12", 2), Some(1200));
        assert_eq!(parse_major(".5", 2), Some(50));
        assert_eq!(parse_major("12.505", 2), None);
        assert_eq!(parse_major("1x", 2), None);
        assert_eq!(parse_major("", 2), None);
        assert_eq!(parse_major("500", 0), Some(500));
        assert_eq!(parse_major("99999999999999999999", 2), None);
    }
}
