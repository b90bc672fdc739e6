//! The back office's pages. Each action calls the JSON API's handler (same rules, same audit
//! records); each page reads through the same handlers or the same tables.

use askama::Template;
use axum::extract::{FromRequest, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use sqlx::Row;

use super::i18n::{self, Tr};
use super::{chart, csrf_ok, render, Page, Posted, Web, WebError};
use crate::auth::{Perm, Scope};
use crate::error::{ApiBytes, ApiJson};
use crate::limits::ClientAddr;
use crate::routes::{beneficiaries, devices, documents, people, programs, redemptions, vouchers};
use crate::{now, ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(css))
        .route("/static/issue.js", get(js))
        .route("/lang/{code}", get(language))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-in/oidc", get(oidc_begin))
        .route("/sign-in/oidc/callback", get(oidc_callback))
        .route("/sign-out", post(sign_out))
        .route("/password", get(password_page).post(password))
        .route("/dashboard", get(dashboard))
        .route("/programs", get(programs_page).post(create_program))
        .route("/programs/{id}", get(program_page))
        .route("/programs/{id}/rotate", post(rotate_key))
        .route("/programs/{id}/edit", post(edit_program))
        .route(
            "/programs/{id}/beneficiaries",
            get(beneficiaries_page).post(upload_beneficiaries),
        )
        .route("/programs/{id}/issue", get(issue_page).post(issue))
        .route("/vouchers", get(vouchers_page))
        .route("/vouchers/{id}", get(voucher_page))
        .route("/vouchers/{id}/cancel", post(cancel_voucher))
        .route("/providers", get(providers_page).post(create_provider))
        .route("/providers/{id}", get(provider_page))
        .route("/providers/{id}/code", post(enrolment_code))
        .route("/providers/{id}/payout", post(provider_payout))
        .route("/devices/{id}/revoke", post(revoke_device))
        .route("/redemptions", get(redemptions_page))
        .route("/audit", get(audit_page))
        .route("/audit/export.csv", get(audit_csv))
        .route("/audit/export.json", get(audit_json))
        .route("/users", get(users_page).post(add_user))
        .route("/users/{id}/disable", post(disable_user))
        .route("/users/{id}/reset", post(reset_user))
        .route("/tokens", get(tokens_page).post(make_token))
        .route("/tokens/{id}/revoke", post(revoke_token))
}

pub(super) type PageResult = Result<Response, WebError>;

// ---- templates ----

/// An audit record on the page: seq, when, who, role, action, on what, the changes.
type AuditRow = (i64, String, String, String, String, String, Vec<String>);
/// An account on the page: id, name, role, programs, provider, disabled, signs in externally.
type UserRow = (String, String, String, String, String, String, bool);

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub p: Page,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignIn {
    p: Page,
    next: String,
    /// The identity provider's button, when one is configured.
    oidc: Option<String>,
}

#[derive(Template)]
#[template(path = "continue.html")]
struct Continue {
    p: Page,
    to: String,
    name: String,
}

#[derive(Template)]
#[template(path = "password.html")]
struct Password {
    p: Page,
    must: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    p: Page,
    programs: Vec<(String, String)>,
    program: String,
    issued: i64,
    redeemed: i64,
    redeemed_value: String,
    outstanding: i64,
    cancelled: i64,
    to_review: i64,
    chart: String,
    silent: Vec<(String, String, String)>,
}

struct ProgramRow {
    id: String,
    name: String,
    currency: String,
    issued: i64,
    live: i64,
}

#[derive(Template)]
#[template(path = "programs.html")]
struct Programs {
    p: Page,
    programs: Vec<ProgramRow>,
    can_manage: bool,
}

#[derive(Template)]
#[template(path = "program.html")]
struct ProgramPage {
    p: Page,
    id: String,
    edit: EditValues,
    settings: Vec<(String, String)>,
    counts: Vec<(String, String)>,
    keys: Vec<(String, String)>,
    can_manage: bool,
    can_names: bool,
}

/// A program's settings as the edit form shows them.
struct EditValues {
    name: String,
    issuer: String,
    currency: String,
    amount: String,
    validity_days: String,
    partial: bool,
    categories: String,
    providers: String,
    items: String,
    /// Vouchers are issued: the issuer and the currency can no longer change.
    fixed: bool,
    stages: String,
    item_prices: String,
    payer_name: String,
    payer_account: String,
    payer_bic: String,
}

/// Previous and next page links.
pub struct Pager {
    pub(super) prev: Option<String>,
    pub(super) next: Option<String>,
    pub(super) label: String,
}

#[derive(Template)]
#[template(path = "beneficiaries.html")]
struct Beneficiaries {
    p: Page,
    id: String,
    rows: Vec<(String, String, String, String)>,
    errors: Vec<String>,
    can_manage: bool,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "issue.html")]
struct IssuePage {
    p: Page,
    id: String,
    total: i64,
    done: i64,
    remaining: i64,
    status: String,
}

#[derive(Template)]
#[template(path = "vouchers.html")]
struct Vouchers {
    p: Page,
    q: String,
    program: String,
    state: String,
    states: Vec<(String, String)>,
    rows: Vec<(String, String, String, String, String, String, String)>,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "voucher.html")]
struct VoucherPage {
    p: Page,
    id: String,
    facts: Vec<(String, String)>,
    timeline: Vec<(String, String, String, String)>,
    can_cancel: bool,
    can_names: bool,
}

#[derive(Template)]
#[template(path = "providers.html")]
struct Providers {
    p: Page,
    rows: Vec<(String, String, String, i64, i64)>,
    can_manage: bool,
    /// The new provider form's payout fields (empty).
    payout: PayoutForm,
}

#[derive(Template)]
#[template(path = "provider.html")]
struct ProviderPage {
    p: Page,
    id: String,
    facts: Vec<(String, String)>,
    devices: Vec<(String, String, String, i64, i64, String)>,
    /// (instructions, QR SVG, code) right after a code was made: shown once.
    code: Option<(String, String, String)>,
    can_manage: bool,
    payout: PayoutForm,
}

#[derive(Template)]
#[template(path = "redemptions.html")]
struct Redemptions {
    p: Page,
    program: String,
    status: String,
    statuses: Vec<(String, String)>,
    #[allow(clippy::type_complexity)]
    rows: Vec<(
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    )>,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct Audit {
    p: Page,
    rows: Vec<AuditRow>,
    chain_ok: Option<String>,
    chain_broken: Option<String>,
    f_actor: String,
    f_action: String,
    f_object: String,
    query: String,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "users.html")]
struct Users {
    p: Page,
    me: String,
    rows: Vec<UserRow>,
    roles: Vec<(String, String)>,
    programs: Vec<String>,
    providers: Vec<String>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct Tokens {
    p: Page,
    made: Option<String>,
    rows: Vec<(String, String, String, String, String)>,
}

// ---- helpers ----

/// The JSON body of an API handler's answer.
pub(super) async fn json_of<R: IntoResponse>(
    r: Result<R, ApiError>,
) -> Result<serde_json::Value, ApiError> {
    let resp = r?.into_response();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if bytes.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(e.to_string()))
}

pub(super) fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn when(t: Option<i64>) -> String {
    t.map(|t| {
        evoucher_core::time::rfc3339(t)
            .replace('T', " ")
            .replace('Z', " UTC")
    })
    .unwrap_or_default()
}

pub(super) fn pager(base: &str, offset: i64, limit: i64, total: i64, tr: &Tr) -> Pager {
    let sep = if base.contains('?') { '&' } else { '?' };
    Pager {
        prev: (offset > 0).then(|| format!("{base}{sep}offset={}", (offset - limit).max(0))),
        next: (offset + limit < total).then(|| format!("{base}{sep}offset={}", offset + limit)),
        label: tr.f(
            "common.page",
            &[("page", &(offset / limit.max(1) + 1).to_string())],
        ),
    }
}

/// A local path to go back to after signing in (never another site).
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

pub(super) fn api(w: &Web, e: ApiError) -> WebError {
    WebError::api(w, e)
}

/// The admin-facing address of this server, for the enrolment QR code.
fn base_url(s: &AppState, headers: &HeaderMap) -> String {
    if let Some(public) = &s.public_url {
        return public.to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!(
        "{}://{host}",
        if s.secure_cookies { "https" } else { "http" }
    )
}

// ---- assets, language, home ----

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/issue.js"),
    )
}

#[derive(Deserialize)]
struct Next {
    #[serde(default)]
    next: String,
}

/// Choose the language (a cookie) and go back.
async fn language(Path(code): Path<String>, Query(q): Query<Next>) -> Response {
    let tr = Tr::new(&code);
    let mut r = Redirect::to(safe_next(&q.next)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "lang={}; Path=/; SameSite=Lax; Max-Age=31536000",
        tr.lang
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn home(w: Result<Web, Response>) -> Response {
    match w {
        Ok(w) if w.can(Perm::ReadPrograms) => Redirect::to("/dashboard").into_response(),
        Ok(w) => match w.who.own_provider() {
            Some(p) => Redirect::to(&format!("/providers/{p}")).into_response(),
            None => Redirect::to("/tokens").into_response(),
        },
        Err(r) => r,
    }
}

// ---- signing in and out, password ----

#[derive(Deserialize)]
struct SignInQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
}

async fn sign_in_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let tr = i18n::of_request(&headers);
    let p = Page::anonymous(tr, tr.t("sign_in.title"), "/sign-in").flash(
        q.signed_out
            .is_some()
            .then(|| tr.t("sign_in.signed_out").to_owned()),
    );
    render(&SignIn {
        p,
        next: safe_next(&q.next).to_owned(),
        oidc: oidc_label(&s),
    })
}

fn oidc_label(s: &AppState) -> Option<String> {
    s.oidc.as_ref().map(|o| o.config.label.clone())
}

/// An identity provider failure in the person's language.
fn oidc_message(tr: i18n::Tr, e: &crate::oidc::OidcError) -> String {
    use crate::oidc::OidcError as E;
    match e {
        E::Provider(_) => tr.t("oidc.provider").to_owned(),
        E::Refused(_) => tr.t("oidc.refused").to_owned(),
        E::State => tr.t("oidc.state").to_owned(),
        E::Token(why) => tr.f("oidc.token", &[("why", why)]),
        E::NoRole => tr.t("oidc.no_role").to_owned(),
        E::SeveralRoles(r) => tr.f("oidc.several_roles", &[("roles", r)]),
        E::Name(n) => tr.f("oidc.name", &[("name", n)]),
        E::Disabled => tr.t("oidc.disabled").to_owned(),
        E::Api(_) => tr.t("error.title").to_owned(),
    }
}

/// The sign-in page with an error, for the identity provider's flow.
fn oidc_failed(s: &AppState, headers: &HeaderMap, status: StatusCode, message: String) -> Response {
    let tr = i18n::of_request(headers);
    let p = Page::anonymous(tr, tr.t("sign_in.title"), "/sign-in").error(Some(message));
    let mut r = render(&SignIn {
        p,
        next: "/".into(),
        oidc: oidc_label(s),
    });
    *r.status_mut() = status;
    r
}

/// Sign in through the identity provider: off to its sign-in page.
async fn oidc_begin(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let Some(o) = s.oidc.clone() else {
        let m = i18n::of_request(&headers).t("oidc.none").to_owned();
        return oidc_failed(&s, &headers, StatusCode::NOT_FOUND, m);
    };
    match o
        .begin(&s, &base_url(&s, &headers), safe_next(&q.next))
        .await
    {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => {
            tracing::warn!("OIDC sign-in could not start: {e}");
            let m = oidc_message(i18n::of_request(&headers), &e);
            oidc_failed(&s, &headers, StatusCode::BAD_GATEWAY, m)
        }
    }
}

#[derive(Deserialize)]
struct OidcCallback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Back from the identity provider: the code exchanged, the person signed in. The session
/// cookie is set on a page of ours that then moves on: a cookie set on a redirect that began
/// at another site would not be sent on the next request (`SameSite=Strict`).
async fn oidc_callback(
    State(s): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Query(q): Query<OidcCallback>,
) -> Response {
    let Some(o) = s.oidc.clone() else {
        let m = i18n::of_request(&headers).t("oidc.none").to_owned();
        return oidc_failed(&s, &headers, StatusCode::NOT_FOUND, m);
    };
    let result = match (&q.code, &q.state, &q.error) {
        (_, _, Some(err)) => Err(crate::oidc::OidcError::Refused(
            err.chars().take(64).collect(),
        )),
        (Some(code), Some(state), None) => {
            o.finish(&s, &base_url(&s, &headers), code, state, client)
                .await
        }
        _ => Err(crate::oidc::OidcError::State),
    };
    match result {
        Ok((user, sid, _, next)) => {
            let tr = i18n::of_request(&headers);
            let to = safe_next(&next).to_owned();
            let mut r = render(&Continue {
                p: Page::anonymous(tr, tr.t("sign_in.title"), "/sign-in"),
                to,
                name: user.name,
            });
            r.headers_mut()
                .insert(header::SET_COOKIE, people::session_cookie(&s, Some(&sid)));
            r
        }
        Err(e) => {
            tracing::warn!("OIDC sign-in failed: {e}");
            // Recorded like a failed password sign-in (without the provider's tokens).
            if let Ok(mut tx) = s.begin_write().await {
                let recorded = crate::audit::record(
                    &mut tx,
                    s.postgres,
                    &crate::audit::Actor::unknown(),
                    client.0,
                    crate::audit::Event::new(
                        "sign_in_failed",
                        "account",
                        "unknown",
                        serde_json::json!({"via": "oidc", "reason": e.to_string()}),
                    ),
                )
                .await;
                if recorded.is_ok() {
                    let _ = tx.commit().await;
                }
            }
            let status = match e {
                crate::oidc::OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
                crate::oidc::OidcError::Api(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::FORBIDDEN,
            };
            let m = oidc_message(i18n::of_request(&headers), &e);
            oidc_failed(&s, &headers, status, m)
        }
    }
}

#[derive(Deserialize)]
struct SignInForm {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

async fn sign_in(
    State(s): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    axum::Form(f): axum::Form<SignInForm>,
) -> Response {
    let tr = i18n::of_request(&headers);
    let fail = |status: StatusCode, key: &str| {
        let p = Page::anonymous(tr, tr.t("sign_in.title"), "/sign-in")
            .error(Some(tr.t(key).to_owned()));
        let mut r = render(&SignIn {
            p,
            next: safe_next(&f.next).to_owned(),
            oidc: oidc_label(&s),
        });
        *r.status_mut() = status;
        r
    };
    // Signing in from another site's form is refused (login CSRF).
    if !crate::auth::same_origin(&s, &headers) {
        return fail(StatusCode::FORBIDDEN, "error.forbidden");
    }
    match people::sign_in(&s, &f.name, &f.password, client).await {
        Ok((user, sid, _)) => {
            let to = if user.must_change {
                "/password"
            } else {
                safe_next(&f.next)
            };
            let mut r = Redirect::to(to).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, people::session_cookie(&s, Some(&sid)));
            r
        }
        Err(ApiError::TooMany(_)) => fail(StatusCode::TOO_MANY_REQUESTS, "sign_in.too_many"),
        Err(ApiError::Denied(_)) => fail(StatusCode::UNAUTHORIZED, "sign_in.failed"),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn sign_out(Posted { w, .. }: Posted<Empty>) -> PageResult {
    let crate::auth::Via::Session { sid, .. } = &w.via else {
        return Err(WebError::forbidden(&w));
    };
    people::sign_out(&w.s, &w.who, sid, w.client)
        .await
        .map_err(|e| api(&w, e))?;
    let mut r = Redirect::to("/sign-in?signed_out=1").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, people::session_cookie(&w.s, None));
    Ok(r)
}

async fn password_page(w: Web) -> Response {
    let must = w.user.must_change;
    render(&Password {
        p: w.page(w.tr.t("password.title")),
        must,
    })
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

async fn password(Posted { w, form }: Posted<PasswordForm>) -> Response {
    let must = w.user.must_change;
    let error = if form.new != form.confirm {
        Some(w.tr.t("password.mismatch").to_owned())
    } else {
        people::set_own_password(&w.s, &w.who, &w.via, w.client, &form.current, &form.new)
            .await
            .err()
            .map(|e| e.to_string())
    };
    if error.is_none() && must {
        return Redirect::to("/").into_response();
    }
    let flash = error.is_none().then(|| w.tr.t("password.done").to_owned());
    let mut r = render(&Password {
        p: w.page(w.tr.t("password.title"))
            .flash(flash)
            .error(error.clone()),
        must: must && error.is_some(),
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

// ---- dashboard ----

#[derive(Deserialize)]
struct ProgramQuery {
    #[serde(default)]
    program: String,
}

/// The programs this person sees: (id, name).
async fn visible_programs(w: &Web) -> Result<Vec<(String, String)>, WebError> {
    let list = json_of(programs::list(State(w.s.clone()), Extension(w.who.clone())).await)
        .await
        .map_err(|e| api(w, e))?;
    Ok(list["programs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        text(&p["id"]),
                        format!("{} ({})", text(&p["name"]), text(&p["id"])),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

async fn dashboard(w: Web, Query(q): Query<ProgramQuery>) -> PageResult {
    w.need(Perm::ReadPrograms)?;
    let programs = visible_programs(&w).await?;
    let program = if programs.iter().any(|p| p.0 == q.program) {
        q.program.clone()
    } else {
        programs.first().map(|p| p.0.clone()).unwrap_or_default()
    };
    let p = w.page(w.tr.t("dashboard.title"));
    if program.is_empty() {
        return Ok(render(&Dashboard {
            p,
            programs,
            program,
            issued: 0,
            redeemed: 0,
            redeemed_value: String::new(),
            outstanding: 0,
            cancelled: 0,
            to_review: 0,
            chart: String::new(),
            silent: Vec::new(),
        }));
    }
    let one = json_of(programs::one(State(w.s.clone()), Path(program.clone())).await)
        .await
        .map_err(|e| api(&w, e))?;
    let counts = &one["counts"];
    let t = now();
    let db = &w.s.db;
    let q1 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM vouchers v WHERE v.program_id = $1 AND ({}) = 'redeemed'",
        vouchers::STATE
    )))
    .bind(&program)
    .bind(t)
    .fetch_one(db)
    .await
    .map_err(|e| api(&w, e.into()))?;
    let redeemed: i64 = q1.try_get("n").map_err(|e| api(&w, e.into()))?;
    let value = sqlx::query(
        "SELECT CAST(COALESCE(SUM(r.amount), 0) AS BIGINT) AS total FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id \
         WHERE v.program_id = $1 AND r.kind = 'redeem' AND r.status = 'accepted' \
         AND NOT EXISTS (SELECT 1 FROM redemptions x WHERE x.kind = 'void' AND x.voids = r.id AND x.status = 'accepted')",
    )
    .bind(&program)
    .fetch_one(db)
    .await
    .map_err(|e| api(&w, e.into()))?;
    let total: i64 = value.try_get("total").map_err(|e| api(&w, e.into()))?;
    let currency = text(&one["currency"]);
    let redeemed_value = if currency.is_empty() {
        total.to_string()
    } else {
        evoucher_core::voucher::format_amount(total.max(0) as u64, &currency)
    };
    let review = sqlx::query(
        "SELECT COUNT(*) AS n FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id \
         WHERE v.program_id = $1 AND r.status IN ('conflict', 'suspect')",
    )
    .bind(&program)
    .fetch_one(db)
    .await
    .map_err(|e| api(&w, e.into()))?;
    let to_review: i64 = review.try_get("n").map_err(|e| api(&w, e.into()))?;
    let today = t.div_euclid(86_400);
    let rows = sqlx::query(
        "SELECT r.at / 86400 AS day, COUNT(*) AS n FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id \
         WHERE v.program_id = $1 AND r.kind = 'redeem' AND r.status = 'accepted' AND r.at >= $2 GROUP BY r.at / 86400",
    )
    .bind(&program)
    .bind((today - 29) * 86_400)
    .fetch_all(db)
    .await
    .map_err(|e| api(&w, e.into()))?;
    let mut per_day: Vec<(i64, i64)> = (today - 29..=today).map(|d| (d, 0)).collect();
    for r in &rows {
        let day: i64 = r.try_get("day").unwrap_or(0);
        let n: i64 = r.try_get("n").unwrap_or(0);
        if let Some(x) = per_day.iter_mut().find(|x| x.0 == day) {
            x.1 = n;
        }
    }
    let silent_rows = sqlx::query(
        "SELECT id, provider_id, last_seen_at FROM devices WHERE revoked_at IS NULL \
         AND (last_seen_at IS NULL OR last_seen_at < $1) ORDER BY last_seen_at, id LIMIT 50",
    )
    .bind(t - 3 * 86_400)
    .fetch_all(db)
    .await
    .map_err(|e| api(&w, e.into()))?;
    let silent = silent_rows
        .iter()
        .map(|r| {
            let seen: Option<i64> = r.try_get("last_seen_at").unwrap_or(None);
            (
                r.try_get::<String, _>("id").unwrap_or_default(),
                r.try_get::<String, _>("provider_id").unwrap_or_default(),
                seen.map(|s| when(Some(s)))
                    .unwrap_or_else(|| w.tr.t("devices.never").to_owned()),
            )
        })
        .collect();
    let issued = counts["vouchers_issued"].as_i64().unwrap_or(0);
    let cancelled = counts["vouchers_cancelled"].as_i64().unwrap_or(0);
    let live = counts["vouchers_live"].as_i64().unwrap_or(0);
    Ok(render(&Dashboard {
        chart: chart::per_day(w.tr.t("dashboard.chart"), &per_day),
        p,
        programs,
        program,
        issued,
        redeemed,
        redeemed_value,
        outstanding: (live - redeemed).max(0),
        cancelled,
        to_review,
        silent,
    }))
}

// ---- programs ----

async fn programs_page_with(w: &Web, error: Option<String>) -> PageResult {
    w.need(Perm::ReadPrograms)?;
    let list = json_of(programs::list(State(w.s.clone()), Extension(w.who.clone())).await)
        .await
        .map_err(|e| api(w, e))?;
    let programs = list["programs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| ProgramRow {
                    id: text(&p["id"]),
                    name: text(&p["name"]),
                    currency: text(&p["currency"]),
                    issued: p["counts"]["vouchers_issued"].as_i64().unwrap_or(0),
                    live: p["counts"]["vouchers_live"].as_i64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut r = render(&Programs {
        p: w.page(w.tr.t("programs.title")).error(error.clone()),
        programs,
        can_manage: w.can(Perm::ManagePrograms) && w.who.program_limit().is_none(),
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn programs_page(w: Web) -> PageResult {
    programs_page_with(&w, None).await
}

#[derive(Deserialize)]
struct ProgramForm {
    #[serde(default)]
    id: String,
    name: String,
    issuer: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    validity_days: String,
    #[serde(default)]
    categories: String,
    #[serde(default)]
    providers: String,
    #[serde(default)]
    items: String,
    #[serde(default)]
    partial: Option<String>,
    /// Reimbursement: approving roles in order (comma-separated).
    #[serde(default)]
    stages: String,
    /// `CODE=PRICE` lines (minor units).
    #[serde(default)]
    item_prices: String,
    #[serde(default)]
    payer_name: String,
    #[serde(default)]
    payer_account: String,
    #[serde(default)]
    payer_bic: String,
}

fn list_of(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A program's settings from the form (creating, or editing with the id from the path).
fn program_settings(f: &ProgramForm, id: &str) -> Result<programs::NewProgram, String> {
    let mut items = Vec::new();
    for line in f.items.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match evoucher_core::roster::parse_item(line) {
            Some(i) => items
                .push(serde_json::json!({"code": i.code, "quantity": i.quantity, "unit": i.unit})),
            None => return Err(format!("items: {line:?} is not CODE:QUANTITY[:UNIT]")),
        }
    }
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let mut body = serde_json::json!({
        "id": id.trim(), "name": f.name.trim(), "issuer": f.issuer.trim(),
        "categories": list_of(&f.categories), "providers": list_of(&f.providers), "items": items,
        "partial": f.partial.is_some(),
    });
    if !f.currency.trim().is_empty() {
        body["currency"] = f.currency.trim().into();
    }
    match (f.amount.trim(), number(&f.amount)) {
        ("", _) => {}
        (_, Some(a)) => body["amount"] = a.into(),
        (a, None) => {
            return Err(format!(
                "amount: {a:?} is not a whole number of minor units"
            ))
        }
    }
    match (f.validity_days.trim(), number(&f.validity_days)) {
        ("", _) => {}
        (_, Some(d)) => body["validity_days"] = d.into(),
        (d, None) => {
            return Err(format!(
                "validity_days: {d:?} is not a whole number of days"
            ))
        }
    }
    if !f.stages.trim().is_empty() {
        body["stages"] = list_of(&f.stages).into();
    }
    let mut prices = serde_json::Map::new();
    for line in f
        .item_prices
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        match line.split_once('=').map(|(c, p)| (c.trim(), number(p))) {
            Some((code, Some(price))) if !code.is_empty() => {
                prices.insert(code.to_owned(), price.into());
            }
            _ => {
                return Err(format!(
                    "item prices: {line:?} is not CODE=PRICE (minor units)"
                ))
            }
        }
    }
    body["item_prices"] = prices.into();
    if !f.payer_name.trim().is_empty() || !f.payer_account.trim().is_empty() {
        let mut payer = serde_json::json!({"name": f.payer_name.trim(), "account": f.payer_account.trim().replace(' ', "")});
        if !f.payer_bic.trim().is_empty() {
            payer["bic"] = f.payer_bic.trim().into();
        }
        body["payer"] = payer;
    }
    serde_json::from_value(body).map_err(|e| e.to_string())
}

async fn create_program(Posted { w, form: f }: Posted<ProgramForm>) -> PageResult {
    w.need(Perm::ManagePrograms)?;
    let np = match program_settings(&f, &f.id) {
        Ok(x) => x,
        Err(e) => return programs_page_with(&w, Some(e)).await,
    };
    match programs::create(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        ApiJson(np),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/programs/{}?created=1", f.id.trim())).into_response()),
        Err(e) if e.status_code() == StatusCode::FORBIDDEN => Err(api(&w, e)),
        Err(e) => programs_page_with(&w, Some(e.to_string())).await,
    }
}

#[derive(Deserialize, Default)]
struct Flags {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    rotated: Option<String>,
    #[serde(default)]
    updated: Option<String>,
}

async fn program_page(w: Web, Path(id): Path<String>, Query(fl): Query<Flags>) -> PageResult {
    program_page_with(&w, id, fl, None).await
}

/// Save the edit form: the program's settings (see `programs::update`).
async fn edit_program(
    Path(id): Path<String>,
    Posted { w, form: f }: Posted<ProgramForm>,
) -> PageResult {
    w.permit(Perm::ManagePrograms, Scope::Program, &id).await?;
    let settings = match program_settings(&f, &id) {
        Ok(x) => x,
        Err(e) => return program_page_with(&w, id, Flags::default(), Some(e)).await,
    };
    match programs::update(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        Path(id.clone()),
        ApiJson(programs::ProgramEdit::from_settings(settings)),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/programs/{id}?updated=1")).into_response()),
        Err(e) if e.status_code() == StatusCode::FORBIDDEN => Err(api(&w, e)),
        Err(e) => program_page_with(&w, id, Flags::default(), Some(e.to_string())).await,
    }
}

async fn program_page_with(w: &Web, id: String, fl: Flags, error: Option<String>) -> PageResult {
    w.permit(Perm::ReadPrograms, Scope::Program, &id).await?;
    let one = json_of(programs::one(State(w.s.clone()), Path(id.clone())).await)
        .await
        .map_err(|e| api(w, e))?;
    let tr = w.tr;
    let yes_no = |b: bool| tr.t(if b { "common.yes" } else { "common.no" }).to_owned();
    let amount = match (one["amount"].as_i64(), one["currency"].as_str()) {
        (Some(a), Some(c)) => evoucher_core::voucher::format_amount(a.max(0) as u64, c),
        _ => tr.t("common.none").to_owned(),
    };
    let join = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| tr.t("common.none").to_owned())
    };
    let items = one["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    format!(
                        "{} × {}{}",
                        text(&i["code"]),
                        text(&i["quantity"]),
                        i["unit"]
                            .as_str()
                            .map(|u| format!(" {u}"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| tr.t("common.none").to_owned());
    // The form's labels without their hints ("(comma-separated)") for reading.
    let short = |l: &str| l.split(" (").next().unwrap_or(l).to_owned();
    let settings = vec![
        (tr.t("programs.name").to_owned(), text(&one["name"])),
        (short(tr.t("programs.issuer")), text(&one["issuer"])),
        (short(tr.t("programs.amount")), amount),
        (tr.t("programs.items_short").to_owned(), items),
        (
            tr.t("programs.validity").to_owned(),
            text(&one["validity_days"]),
        ),
        (
            short(tr.t("programs.partial")),
            yes_no(one["partial"].as_bool().unwrap_or(false)),
        ),
        (short(tr.t("programs.categories")), join(&one["categories"])),
        (short(tr.t("programs.providers")), join(&one["providers"])),
    ];
    let c = &one["counts"];
    let counts = vec![
        (
            tr.t("programs.beneficiaries").to_owned(),
            text(&c["beneficiaries"]),
        ),
        (
            tr.t("dashboard.issued").to_owned(),
            text(&c["vouchers_issued"]),
        ),
        (tr.t("dashboard.live").to_owned(), text(&c["vouchers_live"])),
        (
            tr.t("dashboard.cancelled").to_owned(),
            text(&c["vouchers_cancelled"]),
        ),
    ];
    let keys = one["keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|k| {
                    let state = if k["current"].as_bool().unwrap_or(false) {
                        tr.t("programs.current").to_owned()
                    } else {
                        format!(
                            "{} {}",
                            tr.t("programs.retired"),
                            when(k["retired_at"].as_i64())
                        )
                    };
                    (
                        text(&k["kid"]),
                        format!("{state} · {}", when(k["created_at"].as_i64())),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let flash = if fl.created.is_some() {
        Some(tr.t("programs.created").to_owned())
    } else if fl.updated.is_some() {
        Some(tr.t("programs.updated").to_owned())
    } else {
        fl.rotated.map(|_| tr.t("programs.rotated").to_owned())
    };
    let list = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let edit = EditValues {
        name: text(&one["name"]),
        issuer: text(&one["issuer"]),
        currency: one["currency"].as_str().unwrap_or("").to_owned(),
        amount: one["amount"]
            .as_i64()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        validity_days: text(&one["validity_days"]),
        partial: one["partial"].as_bool().unwrap_or(false),
        categories: list(&one["categories"]),
        providers: list(&one["providers"]),
        items: one["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        let mut line = format!("{}:{}", text(&i["code"]), text(&i["quantity"]));
                        if let Some(u) = i["unit"].as_str() {
                            line.push(':');
                            line.push_str(u);
                        }
                        line
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        fixed: c["vouchers_issued"].as_i64().unwrap_or(0) > 0,
        stages: list(&one["stages"]),
        item_prices: one["item_prices"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", text(v)))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        payer_name: text(&one["payer"]["name"]),
        payer_account: text(&one["payer"]["account"]),
        payer_bic: text(&one["payer"]["bic"]),
    };
    let failed = error.is_some();
    let mut r = render(&ProgramPage {
        p: w.page(&format!("{} · {}", text(&one["name"]), id))
            .flash(flash)
            .error(error),
        edit,
        can_manage: w.can(Perm::ManagePrograms),
        can_names: w.can(Perm::ReadBeneficiaries),
        id,
        settings,
        counts,
        keys,
    });
    if failed {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn rotate_key(Path(id): Path<String>, Posted { w, .. }: Posted<Empty>) -> PageResult {
    w.permit(Perm::ManagePrograms, Scope::Program, &id).await?;
    let _ = programs::rotate(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        Path(id.clone()),
    )
    .await
    .map_err(|e| api(&w, e))?;
    Ok(Redirect::to(&format!("/programs/{id}?rotated=1")).into_response())
}

// ---- beneficiaries ----

#[derive(Deserialize)]
struct OffsetQuery {
    #[serde(default)]
    offset: i64,
}

async fn beneficiaries_with(
    w: &Web,
    id: &str,
    offset: i64,
    flash: Option<String>,
    errors: Vec<String>,
) -> PageResult {
    w.permit(Perm::ReadBeneficiaries, Scope::Program, id)
        .await?;
    let limit = 100;
    let list = json_of(
        beneficiaries::list(
            State(w.s.clone()),
            Path(id.to_owned()),
            Query(crate::routes::Paging {
                offset: offset.max(0),
                limit,
            }),
        )
        .await,
    )
    .await
    .map_err(|e| api(w, e))?;
    let total = list["total"].as_i64().unwrap_or(0);
    let rows = list["beneficiaries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    (
                        text(&b["id"]),
                        text(&b["name"]),
                        text(&b["amount"]),
                        text(&b["live_voucher"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut r = render(&Beneficiaries {
        p: w.page(&format!("{} · {id}", w.tr.t("beneficiaries.title")))
            .flash(flash),
        id: id.to_owned(),
        rows,
        can_manage: w.can(Perm::ManagePrograms),
        pager: pager(
            &format!("/programs/{id}/beneficiaries"),
            offset.max(0),
            limit,
            total,
            &w.tr,
        ),
        errors: errors.clone(),
    });
    if !errors.is_empty() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn beneficiaries_page(
    w: Web,
    Path(id): Path<String>,
    Query(q): Query<OffsetQuery>,
) -> PageResult {
    beneficiaries_with(&w, &id, q.offset, None, Vec::new()).await
}

/// The CSV upload (a multipart form: its `csrf` field is checked as every form's is).
async fn upload_beneficiaries(
    w: Web,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut mp: Multipart,
) -> PageResult {
    w.permit(Perm::ManagePrograms, Scope::Program, &id).await?;
    let mut token = String::new();
    let mut file: Option<axum::body::Bytes> = None;
    while let Ok(Some(field)) = mp.next_field().await {
        match field.name() {
            Some("csrf") => token = field.text().await.unwrap_or_default(),
            Some("file") => file = field.bytes().await.ok(),
            _ => {}
        }
    }
    if !csrf_ok(&w, &headers, &token) {
        return Err(WebError::page(
            &w,
            StatusCode::FORBIDDEN,
            "cross-site request refused (origin or CSRF token)",
        ));
    }
    let Some(bytes) = file else {
        return beneficiaries_with(&w, &id, 0, None, vec!["no file".into()]).await;
    };
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    match beneficiaries::import(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        h,
        Path(id.clone()),
        ApiBytes(bytes),
    )
    .await
    {
        Ok(axum::Json(v)) => {
            let flash = w.tr.f(
                "beneficiaries.result",
                &[
                    ("added", &text(&v["added"])),
                    ("updated", &text(&v["updated"])),
                    ("total", &text(&v["total"])),
                ],
            );
            beneficiaries_with(&w, &id, 0, Some(flash), Vec::new()).await
        }
        Err(e) if e.status_code().is_client_error() => {
            beneficiaries_with(&w, &id, 0, None, vec![e.to_string()]).await
        }
        Err(e) => Err(api(&w, e)),
    }
}

// ---- issuance ----

/// (imported beneficiaries, those holding a live voucher).
async fn issue_counts(w: &Web, id: &str) -> Result<(i64, i64), WebError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT COUNT(*) FROM beneficiaries WHERE program_id = $1) AS total, \
         (SELECT COUNT(*) FROM beneficiaries b WHERE b.program_id = $1 AND EXISTS (SELECT 1 FROM vouchers v \
          WHERE v.program_id = b.program_id AND v.beneficiary_id = b.id AND ({}) IN ('live', 'redeemed'))) AS done",
        vouchers::STATE
    )))
    .bind(id)
    .bind(now())
    .fetch_one(&w.s.db)
    .await
    .map_err(|e| api(w, e.into()))?;
    Ok((
        r.try_get("total").map_err(|e| api(w, e.into()))?,
        r.try_get("done").map_err(|e| api(w, e.into()))?,
    ))
}

async fn issue_with(w: &Web, id: &str, flash: Option<String>, error: Option<String>) -> PageResult {
    w.permit(Perm::ManagePrograms, Scope::Program, id).await?;
    let (total, done) = issue_counts(w, id).await?;
    let remaining = (total - done).max(0);
    let status = if total > 0 && remaining == 0 {
        w.tr.t("issue.done").to_owned()
    } else {
        w.tr.f(
            "issue.progress",
            &[
                ("done", &done.to_string()),
                ("remaining", &remaining.to_string()),
            ],
        )
    };
    let mut r = render(&IssuePage {
        p: w.page(&format!("{} · {id}", w.tr.t("issue.title")))
            .flash(flash)
            .error(error.clone()),
        id: id.to_owned(),
        total: total.max(1),
        done,
        remaining,
        status,
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn issue_page(w: Web, Path(id): Path<String>) -> PageResult {
    issue_with(&w, &id, None, None).await
}

#[derive(Deserialize)]
struct IssueForm {
    #[serde(default)]
    imported: Option<String>,
    #[serde(default)]
    ids: String,
    #[serde(default)]
    reissue: Option<String>,
}

async fn issue(Path(id): Path<String>, Posted { w, form }: Posted<IssueForm>) -> PageResult {
    w.permit(Perm::ManagePrograms, Scope::Program, &id).await?;
    let body = if form.imported.is_some() {
        serde_json::json!({"imported": true})
    } else {
        let list: Vec<serde_json::Value> = form
            .ids
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::json!({"id": l}))
            .collect();
        serde_json::json!({"beneficiaries": list, "reissue": form.reissue.is_some()})
    };
    let req: programs::IssueRequest =
        serde_json::from_value(body).map_err(|e| api(&w, ApiError::BadRequest(e.to_string())))?;
    match programs::issue(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        Path(id.clone()),
        ApiJson(req),
    )
    .await
    {
        Ok((_, axum::Json(v))) => {
            let n = v["vouchers"].as_array().map(Vec::len).unwrap_or(0);
            let flash = w.tr.f("issue.issued", &[("n", &n.to_string())]);
            issue_with(&w, &id, Some(flash), None).await
        }
        Err(e) if e.status_code().is_client_error() && e.status_code() != StatusCode::FORBIDDEN => {
            issue_with(&w, &id, None, Some(e.to_string())).await
        }
        Err(e) => Err(api(&w, e)),
    }
}

// ---- vouchers ----

#[derive(Deserialize)]
struct VoucherQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    program: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    offset: i64,
}

fn state_label(tr: &Tr, state: &str) -> String {
    tr.t(&format!("state.{state}")).to_owned()
}

async fn vouchers_page(w: Web, Query(q): Query<VoucherQuery>) -> PageResult {
    w.need(Perm::ReadPrograms)?;
    let query = q.q.trim().to_owned();
    let tr = w.tr;
    let states = ["live", "redeemed", "expired", "cancelled"]
        .iter()
        .map(|s| (s.to_string(), state_label(&tr, s)))
        .collect();
    let mut rows = Vec::new();
    let mut total = 0;
    let limit = 100;
    let t = now();
    let program = if q.program.is_empty() {
        visible_programs(&w)
            .await?
            .first()
            .map(|p| p.0.clone())
            .unwrap_or_default()
    } else {
        q.program.clone()
    };
    if !query.is_empty() {
        // A voucher id goes straight to its page.
        if evoucher_core::VoucherId::from_hex(&query).is_some()
            && sqlx::query("SELECT 1 FROM vouchers WHERE id = $1")
                .bind(query.to_lowercase())
                .fetch_optional(&w.s.db)
                .await
                .map_err(|e| api(&w, e.into()))?
                .is_some()
        {
            return Ok(Redirect::to(&format!("/vouchers/{}", query.to_lowercase())).into_response());
        }
        // Else a beneficiary id, in the programs this person sees.
        let found = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT v.id, v.beneficiary_id, v.program_id, v.issued_at, v.exp, {} AS state FROM vouchers v WHERE v.beneficiary_id = $1 ORDER BY v.issued_at DESC LIMIT 100",
            vouchers::STATE
        )))
        .bind(&query)
        .bind(t)
        .fetch_all(&w.s.db)
        .await
        .map_err(|e| api(&w, e.into()))?;
        for r in &found {
            let pid: String = r.try_get("program_id").unwrap_or_default();
            if !w.who.sees_program(&pid) {
                continue;
            }
            let st: String = r.try_get("state").unwrap_or_default();
            rows.push((
                r.try_get("id").unwrap_or_default(),
                r.try_get("beneficiary_id").unwrap_or_default(),
                pid,
                when(r.try_get("issued_at").ok()),
                when(r.try_get("exp").ok()),
                st.clone(),
                state_label(&tr, &st),
            ));
        }
        total = rows.len() as i64;
    } else if !program.is_empty() {
        w.permit(Perm::ReadPrograms, Scope::Program, &program)
            .await?;
        let f: vouchers::Filter = serde_json::from_value(serde_json::json!({
            "state": (!q.state.is_empty()).then(|| q.state.clone()),
            "offset": q.offset.max(0), "limit": limit,
        }))
        .map_err(|e| api(&w, ApiError::BadRequest(e.to_string())))?;
        let v = json_of(vouchers::list(State(w.s.clone()), Path(program.clone()), Query(f)).await)
            .await
            .map_err(|e| api(&w, e))?;
        total = v["total"].as_i64().unwrap_or(0);
        for x in v["vouchers"].as_array().cloned().unwrap_or_default() {
            let st = text(&x["state"]);
            rows.push((
                text(&x["id"]),
                text(&x["beneficiary_id"]),
                program.clone(),
                when(x["issued_at"].as_i64()),
                when(x["exp"].as_i64()),
                st.clone(),
                state_label(&tr, &st),
            ));
        }
    }
    let base = format!(
        "/vouchers?program={program}&state={}&q={}",
        q.state,
        super::url_escape(&query)
    );
    Ok(render(&Vouchers {
        p: w.page(tr.t("vouchers.title")),
        q: query,
        program,
        state: q.state.clone(),
        states,
        rows,
        pager: pager(&base, q.offset.max(0), limit, total, &tr),
    }))
}

async fn voucher_page(w: Web, Path(id): Path<String>, Query(fl): Query<Flags>) -> PageResult {
    w.permit(Perm::ReadPrograms, Scope::Voucher, &id).await?;
    let v = json_of(
        documents::record(
            State(w.s.clone()),
            Extension(w.who.clone()),
            Path(id.clone()),
        )
        .await,
    )
    .await
    .map_err(|e| api(&w, e))?;
    let tr = w.tr;
    let state = text(&v["state"]);
    let mut facts = vec![
        (tr.t("dashboard.program").to_owned(), text(&v["program"])),
        (
            tr.t("vouchers.beneficiary").to_owned(),
            text(&v["beneficiary_id"]),
        ),
        (
            tr.t("vouchers.issued_at").to_owned(),
            when(v["issued_at"].as_i64()),
        ),
        (tr.t("vouchers.exp").to_owned(), when(v["exp"].as_i64())),
        (tr.t("vouchers.state").to_owned(), state_label(&tr, &state)),
    ];
    if let Some(claims) = v["text"]
        .as_str()
        .and_then(|t| evoucher_core::verify::inspect(t).claims)
    {
        if let Some(n) = claims.beneficiary.name {
            facts.insert(2, (tr.t("beneficiaries.name").to_owned(), n));
        }
        if let Some(val) = claims.value {
            facts.push((
                tr.t("beneficiaries.amount").to_owned(),
                evoucher_core::voucher::format_amount(val.amount, &val.currency),
            ));
        }
    }
    let mut timeline = vec![(
        when(v["issued_at"].as_i64()),
        "live".to_owned(),
        tr.t("voucher.issued").to_owned(),
        String::new(),
    )];
    for r in v["redemptions"].as_array().cloned().unwrap_or_default() {
        let st = text(&r["status"]);
        let what = match (r["amount"].as_i64(), r["currency"].as_str()) {
            (Some(a), Some(c)) => evoucher_core::voucher::format_amount(a.max(0) as u64, c),
            _ => String::new(),
        };
        let kind = if text(&r["kind"]) == "void" {
            "void · "
        } else {
            ""
        };
        timeline.push((
            when(r["at"].as_i64()),
            st.clone(),
            format!("{kind}{}", tr.t(&format!("status.{st}"))),
            format!(
                "{what} · {} · {} {}{}",
                text(&r["provider_id"]),
                tr.t("voucher.device"),
                text(&r["device_id"]),
                r["reason"]
                    .as_str()
                    .map(|x| format!(" · {x}"))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(at) = v["cancelled_at"].as_i64() {
        timeline.push((
            when(Some(at)),
            "cancelled".into(),
            tr.t("voucher.cancelled").to_owned(),
            String::new(),
        ));
    }
    let flash = fl.created.map(|_| tr.t("voucher.cancelled_now").to_owned());
    Ok(render(&VoucherPage {
        p: w.page(&format!("{} {id}", tr.t("voucher.title")))
            .flash(flash),
        can_cancel: w.can(Perm::ManagePrograms) && state != "cancelled",
        can_names: w.can(Perm::ReadBeneficiaries),
        id,
        facts,
        timeline,
    }))
}

async fn cancel_voucher(Path(id): Path<String>, Posted { w, .. }: Posted<Empty>) -> PageResult {
    w.permit(Perm::ManagePrograms, Scope::Voucher, &id).await?;
    let _ = programs::cancel(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        Path(id.clone()),
    )
    .await
    .map_err(|e| api(&w, e))?;
    Ok(Redirect::to(&format!("/vouchers/{id}?created=1")).into_response())
}

// ---- providers and devices ----

async fn providers_with(w: &Web, error: Option<String>) -> PageResult {
    w.need(Perm::ReadProviders)?;
    if let Some(own) = w.who.own_provider() {
        return Ok(Redirect::to(&format!("/providers/{own}")).into_response());
    }
    let v = json_of(devices::list_providers(State(w.s.clone()), Extension(w.who.clone())).await)
        .await
        .map_err(|e| api(w, e))?;
    let rows = v["providers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        text(&p["id"]),
                        text(&p["name"]),
                        text(&p["category"]),
                        p["devices"].as_i64().unwrap_or(0),
                        p["pending_codes"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut r = render(&Providers {
        p: w.page(w.tr.t("providers.title")).error(error.clone()),
        rows,
        can_manage: w.can(Perm::ManageProviders),
        payout: PayoutForm::default(),
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn providers_page(w: Web) -> PageResult {
    providers_with(&w, None).await
}

#[derive(Deserialize)]
struct ProviderForm {
    id: String,
    name: String,
    #[serde(default)]
    category: String,
    #[serde(flatten)]
    payout: PayoutForm,
}

/// A payout account as the forms give it (every field a string; unused ones empty).
#[derive(Deserialize, Default)]
pub(super) struct PayoutForm {
    #[serde(default)]
    pub payout_kind: String,
    #[serde(default)]
    pub holder: String,
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub bank: String,
    #[serde(default)]
    pub bic: String,
    #[serde(default)]
    pub msisdn: String,
    #[serde(default)]
    pub operator: String,
}

impl PayoutForm {
    /// The account, if a holder is given; or why the fields do not make one.
    fn account(&self) -> Result<Option<evoucher_core::payable::Account>, String> {
        use evoucher_core::payable::Account;
        if self.holder.trim().is_empty() {
            return Ok(None);
        }
        let t = |s: &str| s.trim().to_owned();
        let a = match self.payout_kind.as_str() {
            "mobile" => Account::Mobile {
                holder: t(&self.holder),
                msisdn: self.msisdn.chars().filter(|c| !c.is_whitespace()).collect(),
                operator: t(&self.operator),
            },
            _ => Account::Bank {
                holder: t(&self.holder),
                number: self.number.chars().filter(|c| !c.is_whitespace()).collect(),
                bank: t(&self.bank),
                bic: Some(t(&self.bic)).filter(|b| !b.is_empty()),
            },
        };
        a.check().map_err(|e| format!("payout account: {e}"))?;
        Ok(Some(a))
    }

    /// The form's fields for an account already recorded.
    fn of(v: &serde_json::Value) -> PayoutForm {
        PayoutForm {
            payout_kind: text(&v["kind"]),
            holder: text(&v["holder"]),
            number: text(&v["number"]),
            bank: text(&v["bank"]),
            bic: text(&v["bic"]),
            msisdn: text(&v["msisdn"]),
            operator: text(&v["operator"]),
        }
    }
}

async fn create_provider(Posted { w, form: f }: Posted<ProviderForm>) -> PageResult {
    w.need(Perm::ManageProviders)?;
    let payout = match f.payout.account() {
        Ok(a) => a,
        Err(e) => return providers_with(&w, Some(e)).await,
    };
    let body = serde_json::json!({
        "id": f.id.trim(), "name": f.name.trim(),
        "category": (!f.category.trim().is_empty()).then(|| f.category.trim().to_owned()),
        "payout": payout,
    });
    let np: devices::NewProvider =
        serde_json::from_value(body).map_err(|e| api(&w, ApiError::BadRequest(e.to_string())))?;
    match devices::create_provider(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        ApiJson(np),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/providers/{}", f.id.trim())).into_response()),
        Err(e) if e.status_code() == StatusCode::FORBIDDEN => Err(api(&w, e)),
        Err(e) => providers_with(&w, Some(e.to_string())).await,
    }
}

async fn provider_with(w: &Web, id: &str, code: Option<(String, String, String)>) -> PageResult {
    w.permit(Perm::ReadProviders, Scope::Provider, id).await?;
    let p = json_of(devices::one_provider(State(w.s.clone()), Path(id.to_owned())).await)
        .await
        .map_err(|e| api(w, e))?;
    let filter: devices::DeviceFilter = serde_json::from_value(serde_json::json!({"provider": id}))
        .map_err(|e| api(w, ApiError::BadRequest(e.to_string())))?;
    let d = json_of(
        devices::list_devices(State(w.s.clone()), Extension(w.who.clone()), Query(filter)).await,
    )
    .await
    .map_err(|e| api(w, e))?;
    let tr = w.tr;
    let payout = match (&p["payout"], p["payout_account"].as_str()) {
        (a, _) if a.is_object() => [
            &a["holder"],
            &a["number"],
            &a["bank"],
            &a["bic"],
            &a["msisdn"],
            &a["operator"],
        ]
        .iter()
        .map(|x| text(x))
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>()
        .join(" · "),
        (_, Some(legacy)) => legacy.to_owned(),
        _ => tr.t("common.none").to_owned(),
    };
    let payout_form = PayoutForm::of(&p["payout"]);
    let facts = vec![
        (tr.t("providers.name").to_owned(), text(&p["name"])),
        (tr.t("providers.category").to_owned(), text(&p["category"])),
        (tr.t("providers.payout").to_owned(), payout),
    ];
    let devices = d["devices"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    let r = &x["redemptions"];
                    let n = |k: &str| r[k].as_i64().unwrap_or(0);
                    (
                        text(&x["id"]),
                        when(x["enrolled_at"].as_i64()),
                        x["last_seen_at"]
                            .as_i64()
                            .map(|t| when(Some(t)))
                            .unwrap_or_else(|| tr.t("devices.never").to_owned()),
                        x["last_seq"].as_i64().unwrap_or(0),
                        n("conflict") + n("suspect"),
                        when(x["revoked_at"].as_i64()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(render(&ProviderPage {
        p: w.page(&format!("{} {id}", tr.t("provider.title"))),
        id: id.to_owned(),
        facts,
        devices,
        code,
        can_manage: w.can(Perm::ManageProviders),
        payout: payout_form,
    }))
}

/// Record a provider's payout account (the form on its page).
async fn provider_payout(
    Path(id): Path<String>,
    Posted { w, form }: Posted<PayoutForm>,
) -> PageResult {
    w.permit(Perm::ManageProviders, Scope::Provider, &id)
        .await?;
    let payout = match form.account() {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Err(WebError::page(
                &w,
                StatusCode::BAD_REQUEST,
                "payout account: the holder is required",
            ))
        }
        Err(e) => return Err(WebError::page(&w, StatusCode::BAD_REQUEST, &e)),
    };
    let _ = devices::update_provider(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        Path(id.clone()),
        ApiJson(devices::ProviderEdit {
            payout: Some(payout),
            ..Default::default()
        }),
    )
    .await
    .map_err(|e| api(&w, e))?;
    Ok(Redirect::to(&format!("/providers/{id}")).into_response())
}

async fn provider_page(w: Web, Path(id): Path<String>) -> PageResult {
    provider_with(&w, &id, None).await
}

/// Make an enrolment code and show it once, as text and as a QR code the app scans
/// (`evoucher:enrol?server=…&code=…`).
async fn enrolment_code(
    Path(id): Path<String>,
    headers: HeaderMap,
    Posted { w, .. }: Posted<Empty>,
) -> PageResult {
    w.permit(Perm::ManageProviders, Scope::Provider, &id)
        .await?;
    let (_, axum::Json(c)) = devices::new_code(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        Path(id.clone()),
    )
    .await
    .map_err(|e| api(&w, e))?;
    let code = text(&c["code"]);
    let payload = format!(
        "evoucher:enrol?server={}&code={code}",
        super::url_escape(&base_url(&w.s, &headers))
    );
    let svg = evoucher_core::qr::symbol(&payload)
        .map(|s| s.svg())
        .map_err(|e| api(&w, ApiError::Internal(e.to_string())))?;
    let until = when(c["expires_at"].as_i64());
    let msg = w.tr.f("provider.code_made", &[("until", &until)]);
    provider_with(&w, &id, Some((msg, svg, code))).await
}

async fn revoke_device(Path(id): Path<String>, Posted { w, .. }: Posted<Empty>) -> PageResult {
    w.need(Perm::ManageProviders)?;
    let provider: Option<String> = sqlx::query("SELECT provider_id FROM devices WHERE id = $1")
        .bind(&id)
        .fetch_optional(&w.s.db)
        .await
        .map_err(|e| api(&w, e.into()))?
        .map(|r| r.try_get("provider_id").unwrap_or_default());
    let _ = devices::revoke(
        State(w.s.clone()),
        Extension(w.who.clone()),
        w.client,
        Path(id),
    )
    .await
    .map_err(|e| api(&w, e))?;
    Ok(Redirect::to(&format!("/providers/{}", provider.unwrap_or_default())).into_response())
}

// ---- redemptions ----

#[derive(Deserialize)]
struct RedemptionQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    program: String,
    #[serde(default)]
    offset: i64,
}

async fn redemptions_page(
    w: Web,
    headers: HeaderMap,
    Query(q): Query<RedemptionQuery>,
) -> PageResult {
    w.need(Perm::ReadRedemptions)?;
    let tr = w.tr;
    let status = q.status.clone().unwrap_or_else(|| "review".into());
    let limit = 100;
    let mut f = serde_json::json!({"offset": q.offset.max(0), "limit": limit});
    if !status.is_empty() {
        f["status"] = status.clone().into();
    }
    if !q.program.is_empty() {
        f["program"] = q.program.clone().into();
    }
    let filter: redemptions::Filter =
        serde_json::from_value(f).map_err(|e| api(&w, ApiError::BadRequest(e.to_string())))?;
    let v = json_of(
        redemptions::list(
            State(w.s.clone()),
            Extension(w.who.clone()),
            HeaderMap::new(),
            Query(filter),
        )
        .await,
    )
    .await
    .map_err(|e| api(&w, e))?;
    let _ = headers;
    let total = v["total"].as_i64().unwrap_or(0);
    let rows = v["redemptions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let st = text(&r["status"]);
                    let amount = match (r["amount"].as_i64(), r["currency"].as_str()) {
                        (Some(x), Some(c)) => {
                            evoucher_core::voucher::format_amount(x.max(0) as u64, c)
                        }
                        _ => r["items"]
                            .as_array()
                            .map(|i| {
                                i.iter()
                                    .map(|x| {
                                        format!("{}×{}", text(&x["code"]), text(&x["quantity"]))
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default(),
                    };
                    (
                        when(r["at"].as_i64()),
                        when(r["received_at"].as_i64()),
                        text(&r["voucher_id"]),
                        text(&r["provider_id"]),
                        text(&r["device_id"]),
                        amount,
                        st.clone(),
                        tr.t(&format!("status.{st}")).to_owned(),
                        text(&r["reason"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let statuses = ["review", "conflict", "suspect", "invalid", "accepted"]
        .iter()
        .map(|s| (s.to_string(), tr.t(&format!("status.{s}")).to_owned()))
        .collect();
    let base = format!("/redemptions?status={status}&program={}", q.program);
    Ok(render(&Redemptions {
        p: w.page(tr.t("redemptions.title")),
        program: q.program.clone(),
        status,
        statuses,
        rows,
        pager: pager(&base, q.offset.max(0), limit, total, &tr),
    }))
}

// ---- audit ----

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    object_id: String,
    #[serde(default)]
    offset: i64,
}

impl AuditQuery {
    fn filter(&self) -> crate::audit::Filter {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        crate::audit::Filter {
            actor: opt(&self.actor),
            action: opt(&self.action),
            object_id: opt(&self.object_id),
            ..Default::default()
        }
    }
    fn query(&self) -> String {
        format!(
            "?actor={}&action={}&object_id={}",
            super::url_escape(&self.actor),
            super::url_escape(&self.action),
            super::url_escape(&self.object_id)
        )
    }
}

/// An audit record's detail as lines for people: `field: before → after` for what changed,
/// `field: value` for the rest.
fn changes(detail: &serde_json::Value) -> Vec<String> {
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "–".to_owned(),
        serde_json::Value::Array(a) if a.is_empty() => "–".to_owned(),
        v => v.to_string(),
    };
    let Some(o) = detail.as_object() else {
        return vec![show(detail)];
    };
    let empty = serde_json::Map::new();
    let before = o
        .get("before")
        .and_then(|v| v.as_object())
        .unwrap_or(&empty);
    let after = o.get("after").and_then(|v| v.as_object()).unwrap_or(&empty);
    let mut lines = Vec::new();
    let mut keys: Vec<&String> = after.keys().chain(before.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        lines.push(match (before.get(k), after.get(k)) {
            (Some(b), Some(a)) => format!("{k}: {} → {}", show(b), show(a)),
            (Some(b), None) => format!("{k}: {} → –", show(b)),
            (None, Some(a)) => format!("{k}: {}", show(a)),
            (None, None) => continue,
        });
    }
    for (k, v) in o {
        if k != "before" && k != "after" {
            lines.push(format!("{k}: {}", show(v)));
        }
    }
    lines
}

async fn audit_page(w: Web, Query(q): Query<AuditQuery>) -> PageResult {
    w.need(Perm::ReadAudit)?;
    let mut c = w.s.db.acquire().await.map_err(|e| api(&w, e.into()))?;
    let limit = 100;
    let (total, records) = crate::audit::list(&mut c, &q.filter(), q.offset.max(0), limit)
        .await
        .map_err(|e| api(&w, e))?;
    let (chain_ok, chain_broken) =
        match crate::audit::verify(&mut c).await.map_err(|e| api(&w, e))? {
            Ok(v) => (
                Some(w.tr.f("audit.chain_ok", &[("n", &v.records.to_string())])),
                None,
            ),
            Err(b) => (None, Some(b.to_string())),
        };
    // Accounts are named, not shown by their ids.
    let names: std::collections::HashMap<String, String> = crate::users::list(&mut c)
        .await
        .map_err(|e| api(&w, e))?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let rows = records
        .iter()
        .map(|r| {
            let by = r.detail["by"].as_str().unwrap_or(&r.actor).to_owned();
            let on = match (r.object_type.as_str(), names.get(&r.object_id)) {
                ("account", Some(n)) => format!("account {n}"),
                _ => format!("{} {}", r.object_type, r.object_id),
            };
            let mut detail = r.detail.clone();
            if let Some(o) = detail.as_object_mut() {
                o.remove("by");
            }
            (
                r.seq,
                when(Some(r.at)),
                by,
                r.role.clone(),
                r.action.clone(),
                on,
                changes(&detail),
            )
        })
        .collect();
    Ok(render(&Audit {
        p: w.page(w.tr.t("audit.title")),
        rows,
        chain_ok,
        chain_broken,
        f_actor: q.actor.clone(),
        f_action: q.action.clone(),
        f_object: q.object_id.clone(),
        pager: pager(
            &format!("/audit{}", q.query()),
            q.offset.max(0),
            limit,
            total,
            &w.tr,
        ),
        query: q.query(),
    }))
}

/// Every matching record (at most 100,000), for export.
async fn audit_all(w: &Web, q: &AuditQuery) -> Result<Vec<crate::audit::Record>, WebError> {
    w.need(Perm::ReadAudit)?;
    let mut c = w.s.db.acquire().await.map_err(|e| api(w, e.into()))?;
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let (_, page) = crate::audit::list(&mut c, &q.filter(), offset, 1000)
            .await
            .map_err(|e| api(w, e))?;
        if page.is_empty() || out.len() >= 100_000 {
            break;
        }
        offset += page.len() as i64;
        out.extend(page);
    }
    Ok(out)
}

fn attachment(mut r: Response, name: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn audit_csv(w: Web, Query(q): Query<AuditQuery>) -> PageResult {
    let records = audit_all(&w, &q).await?;
    let r = people::audit_csv(&records).map_err(|e| api(&w, e))?;
    Ok(attachment(r, "audit.csv"))
}

async fn audit_json(w: Web, Query(q): Query<AuditQuery>) -> PageResult {
    let records = audit_all(&w, &q).await?;
    let r = axum::Json(serde_json::json!({ "records": records })).into_response();
    Ok(attachment(r, "audit.json"))
}

// ---- accounts ----

async fn users_with(w: &Web, flash: Option<String>, error: Option<String>) -> PageResult {
    w.need(Perm::ManageUsers)?;
    let mut c = w.s.db.acquire().await.map_err(|e| api(w, e.into()))?;
    let list = crate::users::list(&mut c).await.map_err(|e| api(w, e))?;
    // Given back before the next queries (SQLite has one connection).
    drop(c);
    let tr = w.tr;
    let rows = list
        .iter()
        .map(|u| {
            (
                u.id.clone(),
                format!(
                    "{}{}",
                    u.name,
                    if u.external {
                        format!(" ({})", tr.t("users.external"))
                    } else if u.must_change && u.disabled_at.is_none() {
                        format!(" ({})", tr.t("users.one_time"))
                    } else {
                        String::new()
                    }
                ),
                tr.t(&format!("role.{}", u.role.as_str())).to_owned(),
                u.programs.join(", "),
                u.provider_id.clone().unwrap_or_default(),
                u.disabled_at
                    .map(|t| format!("{} {}", tr.t("users.disabled"), when(Some(t))))
                    .unwrap_or_default(),
                u.external,
            )
        })
        .collect();
    let programs = sqlx::query("SELECT id FROM programs ORDER BY id")
        .fetch_all(&w.s.db)
        .await
        .map_err(|e| api(w, e.into()))?
        .iter()
        .map(|r| r.try_get("id").unwrap_or_default())
        .collect();
    let providers = sqlx::query("SELECT id FROM providers ORDER BY id")
        .fetch_all(&w.s.db)
        .await
        .map_err(|e| api(w, e.into()))?
        .iter()
        .map(|r| r.try_get("id").unwrap_or_default())
        .collect();
    let roles = crate::users::Role::ALL
        .iter()
        .map(|r| {
            (
                r.as_str().to_owned(),
                tr.t(&format!("role.{}", r.as_str())).to_owned(),
            )
        })
        .collect();
    let mut r = render(&Users {
        p: w.page(tr.t("users.title"))
            .flash(flash)
            .error(error.clone()),
        me: w.user.id.clone(),
        rows,
        roles,
        programs,
        providers,
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn users_page(w: Web) -> PageResult {
    users_with(&w, None, None).await
}

async fn add_user(State(s): State<AppState>, req: axum::extract::Request) -> PageResult {
    // `programs` may repeat (a multiple select): read the fields as pairs.
    let Posted { w, form } = Posted::<Vec<(String, String)>>::from_request(req, &s)
        .await
        .map_err(WebError::from_response)?;
    w.need(Perm::ManageUsers)?;
    let get = |k: &str| {
        form.iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let n = crate::users::NewUser {
        name: get("name"),
        role: get("role"),
        programs: form
            .iter()
            .filter(|(k, v)| k == "programs" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        provider: Some(get("provider")).filter(|p| !p.is_empty()),
    };
    match people::create_user(&w.s, &w.who, w.client, &n).await {
        Ok((u, password)) => {
            let flash =
                w.tr.f("users.added", &[("name", &u.name), ("password", &password)]);
            users_with(&w, Some(flash), None).await
        }
        Err(e) if e.status_code().is_client_error() => {
            users_with(&w, None, Some(e.to_string())).await
        }
        Err(e) => Err(api(&w, e)),
    }
}

async fn disable_user(Path(id): Path<String>, Posted { w, .. }: Posted<Empty>) -> PageResult {
    w.need(Perm::ManageUsers)?;
    match people::change_user(&w.s, &w.who, w.client, &id, false).await {
        Ok(_) => users_with(&w, None, None).await,
        Err(e) => users_with(&w, None, Some(e.to_string())).await,
    }
}

async fn reset_user(Path(id): Path<String>, Posted { w, .. }: Posted<Empty>) -> PageResult {
    w.need(Perm::ManageUsers)?;
    let mut c = w.s.db.acquire().await.map_err(|e| api(&w, e.into()))?;
    let name = crate::users::find(&mut c, &id)
        .await
        .map_err(|e| api(&w, e))?
        .map(|u| u.name)
        .unwrap_or_default();
    drop(c);
    match people::change_user(&w.s, &w.who, w.client, &id, true).await {
        Ok(Some(password)) => {
            let flash = w.tr.f(
                "users.reset_done",
                &[("name", &name), ("password", &password)],
            );
            users_with(&w, Some(flash), None).await
        }
        Ok(None) => users_with(&w, None, None).await,
        Err(e) => users_with(&w, None, Some(e.to_string())).await,
    }
}

// ---- API tokens ----

async fn tokens_with(w: &Web, made: Option<String>) -> PageResult {
    let mut c = w.s.db.acquire().await.map_err(|e| api(w, e.into()))?;
    let list = crate::users::tokens(&mut c, &w.user.id)
        .await
        .map_err(|e| api(w, e))?;
    let rows = list
        .iter()
        .map(|t| {
            (
                text(&t["id"]),
                text(&t["name"]),
                when(t["created_at"].as_i64()),
                when(t["last_used_at"].as_i64()),
                when(t["revoked_at"].as_i64()),
            )
        })
        .collect();
    Ok(render(&Tokens {
        p: w.page(w.tr.t("tokens.title")),
        made,
        rows,
    }))
}

async fn tokens_page(w: Web) -> PageResult {
    tokens_with(&w, None).await
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
}

async fn make_token(Posted { w, form }: Posted<TokenForm>) -> PageResult {
    let (_, token) = people::make_token(&w.s, &w.who, w.client, &form.name)
        .await
        .map_err(|e| api(&w, e))?;
    let made = w.tr.f("tokens.made", &[("token", &token)]);
    tokens_with(&w, Some(made)).await
}

async fn revoke_token(Path(id): Path<String>, Posted { w, .. }: Posted<Empty>) -> PageResult {
    people::drop_token(&w.s, &w.who, w.client, &id)
        .await
        .map_err(|e| api(&w, e))?;
    tokens_with(&w, None).await
}
