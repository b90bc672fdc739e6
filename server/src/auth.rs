//! Who is calling, decided once per request and before its body is read: a route wrapped in
//! [`admin`] or [`device`] answers 401 at once to a request without valid credentials,
//! whatever body it declares (an unauthenticated upload never costs the server its memory).
//!
//! Secrets (the admin token, device tokens, enrolment codes) are compared in constant time or
//! looked up by their SHA-256; the plain values are never stored or logged.

use crate::secret::{hash_secret, same_secret};
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use sqlx::Row;

use crate::{ApiError, AppState};
use axum::http::header;

/// An enrolled device, as the server registered it. Handlers of [`device`] routes take it as
/// `Extension<Device>`.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    /// The provider the server registered the device for (never what the phone says).
    pub provider: String,
    /// That provider's category, as the server registered it.
    pub category: Option<String>,
    /// The Ed25519 key that signs the device's ledger.
    pub public: [u8; 32],
    pub enrolled_at: i64,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The admin bearer token, compared in constant time.
pub fn is_admin(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(given) = bearer(headers) else {
        return false;
    };
    let want = state.admin_token.as_bytes();
    !want.is_empty()
        && given.len() == want.len()
        && given
            .bytes()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The device behind a bearer token (not revoked), if any.
pub async fn device_of(headers: &HeaderMap, s: &AppState) -> Result<Option<Device>, ApiError> {
    use base64::Engine;
    let Some(token) = bearer(headers) else {
        return Ok(None);
    };
    let Some(row) = sqlx::query(
        "SELECT d.id, d.provider_id, d.public_key, d.enrolled_at, p.category FROM devices d \
         JOIN providers p ON p.id = d.provider_id WHERE d.token_hash = $1 AND d.revoked_at IS NULL",
    )
    .bind(hash_secret(token))
    .fetch_optional(&s.db)
    .await?
    else {
        return Ok(None);
    };
    let public: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(row.try_get::<String, _>("public_key")?)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| ApiError::Internal("stored device key malformed".into()))?;
    Ok(Some(Device {
        id: row.try_get("id")?,
        provider: row.try_get("provider_id")?,
        category: row.try_get("category")?,
        public,
        enrolled_at: row.try_get("enrolled_at")?,
    }))
}

/// The state, which [`crate::app`] puts into every request (middleware has no other way to it).
fn state(req: &Request) -> Result<AppState, ApiError> {
    req.extensions()
        .get::<AppState>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))
}

/// Who is calling a route for people.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The bootstrap admin token (scripts): allowed everything.
    AdminToken,
    /// A person, signed in (browser session) or with one of their API tokens.
    User(crate::users::User),
}

impl Principal {
    /// Whether this caller may see program `id`.
    pub fn sees_program(&self, id: &str) -> bool {
        match self {
            Principal::AdminToken => true,
            Principal::User(u) => u.sees_program(id),
        }
    }

    /// The provider a `provider` account is bound to (its reads are limited to it).
    pub fn own_provider(&self) -> Option<&str> {
        match self {
            Principal::User(u) if u.role == crate::users::Role::Provider => {
                u.provider_id.as_deref()
            }
            _ => None,
        }
    }

    /// The programs a limited program role sees (`None`: all).
    pub fn program_limit(&self) -> Option<&[String]> {
        match self {
            Principal::User(u) if u.role.is_program_role() && !u.programs.is_empty() => {
                Some(&u.programs)
            }
            _ => None,
        }
    }
}

/// What a route does, which roles are then allowed ([`allows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Accounts: add, disable, reset.
    ManageUsers,
    /// The audit log.
    ReadAudit,
    /// Programs, their vouchers (without beneficiary names) and counts.
    ReadPrograms,
    /// Create and change programs, import beneficiaries, issue, cancel.
    ManagePrograms,
    /// Beneficiary names: imported lists, letters, QR codes, voucher texts.
    ReadBeneficiaries,
    /// Providers and devices.
    ReadProviders,
    /// Create providers, make enrolment codes, revoke devices.
    ManageProviders,
    /// The server's record of redemptions.
    ReadRedemptions,
    /// One's own account: password, API tokens (allowed to every signed-in person, even before
    /// a one-time password is changed).
    Own,
    /// Reimbursement claims and payables: read (a provider account, its own).
    ReadClaims,
    /// Make, document, submit and withdraw a provider's claims (a provider account).
    SubmitClaims,
    /// Decide a claim's stage: approve, reject, return (the stage's role, checked per claim).
    ReviewClaims,
    /// Payment batches for the payment switch, the switch's results, re-queueing.
    ManagePayments,
}

/// The permission table: what each role may do. The admin token may do everything.
pub fn allows(role: crate::users::Role, perm: Perm) -> bool {
    use crate::users::Role::*;
    use Perm::*;
    if perm == Own {
        return true;
    }
    match role {
        Admin => matches!(
            perm,
            ManageUsers | ReadAudit | ReadPrograms | ReadProviders | ReadRedemptions | ReadClaims
        ),
        ProgramManager => matches!(
            perm,
            ReadPrograms
                | ManagePrograms
                | ReadBeneficiaries
                | ReadProviders
                | ManageProviders
                | ReadRedemptions
                | ReadClaims
        ),
        Accountant => matches!(
            perm,
            ReadPrograms | ReadProviders | ReadRedemptions | ReadClaims | ReviewClaims
        ),
        CashManager => matches!(
            perm,
            ReadPrograms
                | ReadProviders
                | ReadRedemptions
                | ReadClaims
                | ReviewClaims
                | ManagePayments
        ),
        Auditor => matches!(
            perm,
            ReadAudit
                | ReadPrograms
                | ReadBeneficiaries
                | ReadProviders
                | ReadRedemptions
                | ReadClaims
        ),
        Provider => matches!(
            perm,
            ReadProviders | ReadRedemptions | ReadClaims | SubmitClaims
        ),
    }
}

/// What a route's `{id}` names, for callers limited to some programs or to one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Nothing to check here (a list filters by caller in its handler).
    Any,
    /// `{id}` is a program.
    Program,
    /// `{id}` is a voucher: its program is looked up.
    Voucher,
    /// `{id}` is a provider.
    Provider,
    /// `{id}` is a claim: its program and provider are looked up.
    Claim,
    /// `{id}` is a payable: its program and provider are looked up.
    Payable,
}

/// The session cookie.
pub const SESSION_COOKIE: &str = "evoucher_session";

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How a person was recognised.
#[derive(Debug, Clone)]
pub enum Via {
    /// `Authorization: Bearer` (admin token or API token): no browser, no CSRF.
    Bearer,
    /// A browser session: its id and CSRF token.
    Session { sid: String, csrf: String },
}

/// The person (or the admin token) behind a request, if any: a bearer token first, else the
/// session cookie.
pub async fn person(
    headers: &HeaderMap,
    s: &AppState,
) -> Result<Option<(Principal, Via)>, ApiError> {
    if let Some(t) = bearer(headers) {
        if is_admin(headers, s) {
            return Ok(Some((Principal::AdminToken, Via::Bearer)));
        }
        let mut c = s.db.acquire().await?;
        return Ok(crate::users::token_user(&mut c, t)
            .await?
            .map(|u| (Principal::User(u), Via::Bearer)));
    }
    let Some(sid) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let mut c = s.db.acquire().await?;
    Ok(crate::users::session(&mut c, sid).await?.map(|(u, csrf)| {
        (
            Principal::User(u),
            Via::Session {
                sid: sid.to_owned(),
                csrf,
            },
        )
    }))
}

/// Whether a state-changing request from a browser comes from our own pages: its `Origin` (or,
/// without one, its `Referer`) is this server.
pub fn same_origin(s: &AppState, headers: &HeaderMap) -> bool {
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(from) = from else {
        return false;
    };
    // The origin part of `Origin` (already one) or `Referer` (a whole address).
    let Some((scheme, rest)) = from.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match &s.public_url {
        // Behind a proxy the browser's origin is the public address, scheme included.
        Some(public) => format!("{scheme}://{authority}") == **public,
        None => {
            matches!(scheme, "http" | "https")
                && headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|host| authority == host)
        }
    }
}

/// Check that a caller may do `perm` on what `{id}` names (`scope`).
pub async fn permit(
    s: &AppState,
    who: &Principal,
    perm: Perm,
    scope: Scope,
    id: Option<&str>,
) -> Result<(), ApiError> {
    let Principal::User(u) = who else {
        return Ok(());
    };
    if u.must_change && perm != Perm::Own {
        return Err(ApiError::Forbidden(
            "change your one-time password first".into(),
        ));
    }
    if !allows(u.role, perm) {
        return Err(ApiError::Forbidden(format!(
            "the {} role may not do this",
            u.role.as_str()
        )));
    }
    let Some(id) = id else { return Ok(()) };
    let program = match scope {
        Scope::Any => None,
        Scope::Program => Some(id.to_owned()),
        Scope::Voucher => sqlx::query("SELECT program_id FROM vouchers WHERE id = $1")
            .bind(id)
            .fetch_optional(&s.db)
            .await?
            .map(|r| r.try_get::<String, _>("program_id"))
            .transpose()?,
        Scope::Provider => {
            if let Some(own) = who.own_provider() {
                if own != id {
                    return Err(ApiError::Forbidden("another provider's".into()));
                }
            }
            None
        }
        Scope::Claim | Scope::Payable => {
            let sql = if scope == Scope::Claim {
                "SELECT program_id, provider_id FROM claims WHERE id = $1"
            } else {
                "SELECT program_id, provider_id FROM payables WHERE id = $1"
            };
            match sqlx::query(sql).bind(id).fetch_optional(&s.db).await? {
                Some(r) => {
                    let provider: String = r.try_get("provider_id")?;
                    if who.own_provider().is_some_and(|own| own != provider) {
                        return Err(ApiError::Forbidden("another provider's".into()));
                    }
                    Some(r.try_get::<String, _>("program_id")?)
                }
                None => None,
            }
        }
    };
    if let Some(p) = program {
        if !u.sees_program(&p) {
            return Err(ApiError::Forbidden(
                "your account is not for this program".into(),
            ));
        }
    }
    Ok(())
}

/// A route for people: the caller must be the admin token or a person whose role allows
/// `perm` (on the program or provider `{id}` names, per `scope`). A browser session's
/// state-changing request must also come from our own pages (`Origin`) and carry its CSRF
/// token in `X-CSRF-Token` (web forms are checked by their own extractor, which reads it from
/// the form). Answers 401 without credentials and 403 without permission, before the body is
/// read. The handler gets the [`Principal`] as an extension.
pub fn need(perm: Perm, scope: Scope, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(axum::middleware::from_fn(
        move |mut req: Request, next: Next| async move {
            let s = match state(&req) {
                Ok(s) => s,
                Err(e) => return e.into_response(),
            };
            let (who, via) = match person(req.headers(), &s).await {
                Ok(Some(x)) => x,
                Ok(None) => return ApiError::Unauthorized.into_response(),
                Err(e) => return e.into_response(),
            };
            if let Via::Session { csrf, .. } = &via {
                if !req.method().is_safe() {
                    let token = req
                        .headers()
                        .get("x-csrf-token")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !same_origin(&s, req.headers()) || !same_secret(token, csrf) {
                        return ApiError::Forbidden(
                            "cross-site request refused (origin or CSRF token)".into(),
                        )
                        .into_response();
                    }
                }
            }
            let id = path_id(&mut req).await;
            if let Err(e) = permit(&s, &who, perm, scope, id.as_deref()).await {
                return e.into_response();
            }
            req.extensions_mut().insert(who);
            req.extensions_mut().insert(via);
            next.run(req).await
        },
    ))
}

/// The route's `{id}`, if it has one.
async fn path_id(req: &mut Request) -> Option<String> {
    use axum::extract::FromRequestParts;
    let (mut parts, body) = std::mem::take(req).into_parts();
    let id = axum::extract::Path::<std::collections::HashMap<String, String>>::from_request_parts(
        &mut parts,
        &(),
    )
    .await
    .ok()
    .and_then(|p| p.0.get("id").cloned());
    *req = Request::from_parts(parts, body);
    id
}

/// A route for enrolled devices: `Authorization: Bearer <device token>`. The handler gets the
/// [`Device`] as an extension.
pub fn device(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(axum::middleware::from_fn(|req: Request, next: Next| {
        with_device(req, next, true)
    }))
}

/// A public route that a device may also call with its token (then it must be valid, and the
/// handler gets `Option<Extension<Device>>`).
pub fn maybe_device(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(axum::middleware::from_fn(|req: Request, next: Next| {
        with_device(req, next, false)
    }))
}

async fn with_device(mut req: Request, next: Next, required: bool) -> Response {
    if !required && bearer(req.headers()).is_none() {
        return next.run(req).await;
    }
    let s = match state(&req) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    // The administrator may read a public route with the admin token (no device recorded).
    if !required && is_admin(req.headers(), &s) {
        return next.run(req).await;
    }
    let found = device_of(req.headers(), &s).await;
    match found {
        Ok(Some(d)) => {
            req.extensions_mut().insert(d);
            next.run(req).await
        }
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(e) => e.into_response(),
    }
}
