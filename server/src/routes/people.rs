//! People: signing in and out, one's own account (password, API tokens), accounts (admin), and
//! the audit log (auditor, admin). The back office pages (`web`) use the same functions.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;

use super::{body_limit, Paging, MAX_JSON};
use crate::audit::{self, Actor, Event};
use crate::auth::{need, Perm::*, Principal, Scope, Via, SESSION_COOKIE};
use crate::error::ApiJson;
use crate::limits::ClientAddr;
use crate::users::{self, NewUser, User};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", body_limit(post(sign_in_api), MAX_JSON))
        .route(
            "/api/v1/session/end",
            need(Own, Scope::Any, body_limit(post(sign_out_api), MAX_JSON)),
        )
        .route("/api/v1/me", need(Own, Scope::Any, get(me)))
        .route(
            "/api/v1/me/password",
            need(Own, Scope::Any, body_limit(post(change_password), MAX_JSON)),
        )
        .route(
            "/api/v1/me/tokens",
            need(Own, Scope::Any, body_limit(post(new_token), MAX_JSON)).merge(need(
                Own,
                Scope::Any,
                get(list_tokens),
            )),
        )
        .route(
            "/api/v1/me/tokens/{id}/revoke",
            need(Own, Scope::Any, body_limit(post(revoke_token), MAX_JSON)),
        )
        .route(
            "/api/v1/users",
            need(
                ManageUsers,
                Scope::Any,
                body_limit(post(add_user), MAX_JSON),
            )
            .merge(need(ManageUsers, Scope::Any, get(list_users))),
        )
        .route(
            "/api/v1/users/{id}/disable",
            need(
                ManageUsers,
                Scope::Any,
                body_limit(post(disable_user), MAX_JSON),
            ),
        )
        .route(
            "/api/v1/users/{id}/reset",
            need(
                ManageUsers,
                Scope::Any,
                body_limit(post(reset_user), MAX_JSON),
            ),
        )
        .route("/api/v1/audit", need(ReadAudit, Scope::Any, get(audit_log)))
}

/// What the browser is told to keep: the session cookie (`HttpOnly`, `SameSite=Strict`,
/// `Secure` when served over TLS), or its removal.
pub fn session_cookie(s: &AppState, sid: Option<&str>) -> HeaderValue {
    let secure = if s.secure_cookies { "; Secure" } else { "" };
    let v = match sid {
        Some(sid) => format!(
            "{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            users::SESSION_MAX
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The one answer to a failed sign-in, whatever failed: it never says whether the account
/// exists.
pub const SIGN_IN_FAILED: &str = "wrong account name or password";

/// Sign a person in: throttled per account name and per client address, one Argon2id check
/// whether or not the account exists, a new session (never one the browser brought), and an
/// audit record either way. Returns the user and the session id and CSRF token.
pub async fn sign_in(
    s: &AppState,
    name: &str,
    password: &str,
    client: ClientAddr,
) -> Result<(User, String, String), ApiError> {
    let name = name.trim();
    let key = name.to_lowercase();
    if let Err(wait) = s.signin_by_account.check(&key) {
        return Err(ApiError::TooMany(wait));
    }
    s.signin_by_client
        .check(&client)
        .map_err(ApiError::TooMany)?;
    let mut tx = s.begin_write().await?;
    let Some(user) = users::check_password(&mut tx, name, password).await? else {
        s.signin_by_account.fail(key);
        s.signin_by_client.fail(client);
        let actor = match users::find(&mut tx, name).await? {
            Some(u) if u.name == name => Actor::user(&u),
            _ => Actor::unknown(),
        };
        audit::record(
            &mut tx,
            s.postgres,
            &actor,
            client.0,
            Event::new(
                "sign_in_failed",
                "account",
                actor.id.clone(),
                serde_json::json!({}),
            ),
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::Denied(SIGN_IN_FAILED.into()));
    };
    let (sid, csrf) = users::start_session(&mut tx, &user.id).await?;
    audit::record(
        &mut tx,
        s.postgres,
        &Actor::user(&user),
        client.0,
        Event::new("sign_in", "account", user.id.clone(), serde_json::json!({})),
    )
    .await?;
    tx.commit().await?;
    Ok((user, sid, csrf))
}

/// End a session on the server.
pub async fn sign_out(
    s: &AppState,
    who: &Principal,
    sid: &str,
    client: ClientAddr,
) -> Result<(), ApiError> {
    let mut tx = s.begin_write().await?;
    users::end_session(&mut tx, sid).await?;
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new("sign_out", "account", who.actor().id, serde_json::json!({})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Deserialize)]
struct SignIn {
    name: String,
    password: String,
}

async fn sign_in_api(
    State(s): State<AppState>,
    client: ClientAddr,
    ApiJson(b): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let (user, sid, csrf) = sign_in(&s, &b.name, &b.password, client).await?;
    let mut r = Json(serde_json::json!({"user": user, "csrf": csrf})).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&s, Some(&sid)));
    Ok(r)
}

async fn sign_out_api(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(via): Extension<Via>,
    client: ClientAddr,
) -> Result<Response, ApiError> {
    let Via::Session { sid, .. } = via else {
        return Err(ApiError::BadRequest(
            "only a browser session signs out; revoke an API token instead".into(),
        ));
    };
    sign_out(&s, &who, &sid, client).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&s, None));
    Ok(r)
}

/// The caller: the account (or the admin token), and for a browser session its CSRF token.
async fn me(
    Extension(who): Extension<Principal>,
    Extension(via): Extension<Via>,
) -> Json<serde_json::Value> {
    let csrf = match via {
        Via::Session { csrf, .. } => Some(csrf),
        Via::Bearer => None,
    };
    Json(match who {
        Principal::AdminToken => serde_json::json!({"admin_token": true}),
        Principal::User(u) => serde_json::json!({"user": u, "csrf": csrf}),
    })
}

fn account(who: &Principal) -> Result<&User, ApiError> {
    match who {
        Principal::User(u) => Ok(u),
        Principal::AdminToken => Err(ApiError::BadRequest(
            "the admin token has no account".into(),
        )),
    }
}

#[derive(Deserialize)]
struct NewPassword {
    current: String,
    new: String,
}

/// Change one's own password, which needs the current one. Other sessions of the account end.
pub async fn set_own_password(
    s: &AppState,
    who: &Principal,
    via: &Via,
    client: ClientAddr,
    current: &str,
    new: &str,
) -> Result<(), ApiError> {
    let u = account(who)?;
    let mut tx = s.begin_write().await?;
    if users::check_password(&mut tx, &u.name, current)
        .await?
        .is_none()
    {
        return Err(ApiError::BadRequest("the current password is wrong".into()));
    }
    let keep = match via {
        Via::Session { sid, .. } => Some(sid.as_str()),
        Via::Bearer => None,
    };
    users::set_password(&mut tx, u, new, keep).await?;
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new(
            "password.change",
            "account",
            u.id.clone(),
            serde_json::json!({}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn change_password(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(via): Extension<Via>,
    client: ClientAddr,
    ApiJson(b): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    set_own_password(&s, &who, &via, client, &b.current, &b.new).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct TokenName {
    name: String,
}

/// Make an API token for the caller; it is shown once.
pub async fn make_token(
    s: &AppState,
    who: &Principal,
    client: ClientAddr,
    name: &str,
) -> Result<(String, String), ApiError> {
    let u = account(who)?;
    let mut tx = s.begin_write().await?;
    let (id, token) = users::new_token(&mut tx, &u.id, name).await?;
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new(
            "token.create",
            "api_token",
            id.clone(),
            serde_json::json!({"after": {"name": name.trim()}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((id, token))
}

async fn new_token(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    ApiJson(b): ApiJson<TokenName>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (id, token) = make_token(&s, &who, client, &b.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": id, "token": token})),
    ))
}

async fn list_tokens(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let u = account(&who)?;
    let mut c = s.db.acquire().await?;
    Ok(Json(
        serde_json::json!({"tokens": users::tokens(&mut c, &u.id).await?}),
    ))
}

/// Revoke one of the caller's API tokens.
pub async fn drop_token(
    s: &AppState,
    who: &Principal,
    client: ClientAddr,
    id: &str,
) -> Result<(), ApiError> {
    let u = account(who)?;
    let mut tx = s.begin_write().await?;
    if !users::revoke_token(&mut tx, &u.id, id).await? {
        return Err(ApiError::NotFound("no such token"));
    }
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new("token.revoke", "api_token", id, serde_json::json!({})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn revoke_token(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    drop_token(&s, &who, client, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add an account (admin); its one-time password is shown once.
pub async fn create_user(
    s: &AppState,
    who: &Principal,
    client: ClientAddr,
    n: &NewUser,
) -> Result<(User, String), ApiError> {
    let mut tx = s.begin_write().await?;
    let (u, password) = users::add(&mut tx, n).await?;
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new(
            "account.create",
            "account",
            u.id.clone(),
            serde_json::json!({"after": {"name": u.name, "role": u.role, "programs": u.programs, "provider": u.provider_id}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((u, password))
}

async fn add_user(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    ApiJson(n): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (u, password) = create_user(&s, &who, client, &n).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"user": u, "one_time_password": password})),
    ))
}

async fn list_users(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let mut c = s.db.acquire().await?;
    Ok(Json(
        serde_json::json!({"users": users::list(&mut c).await?}),
    ))
}

/// Disable an account or give it a new one-time password (admin). Returns the password for a
/// reset.
pub async fn change_user(
    s: &AppState,
    who: &Principal,
    client: ClientAddr,
    id: &str,
    reset: bool,
) -> Result<Option<String>, ApiError> {
    let mut tx = s.begin_write().await?;
    let u = users::find(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("no such account"))?;
    if let Principal::User(me) = who {
        if me.id == u.id && !reset {
            return Err(ApiError::BadRequest(
                "you cannot disable your own account".into(),
            ));
        }
    }
    let password = if reset {
        Some(users::reset(&mut tx, &u.id).await?)
    } else {
        users::disable(&mut tx, &u.id).await?;
        None
    };
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new(
            if reset { "account.reset" } else { "account.disable" },
            "account",
            u.id.clone(),
            if reset {
                serde_json::json!({"after": {"must_change": true}})
            } else {
                serde_json::json!({"before": {"disabled": u.disabled_at.is_some()}, "after": {"disabled": true}})
            },
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(password)
}

async fn disable_user(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_user(&s, &who, client, &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset_user(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let password = change_user(&s, &who, client, &id, true).await?;
    Ok(Json(serde_json::json!({"one_time_password": password})))
}

/// The audit log's query (no `#[serde(flatten)]`: query strings then fail to parse numbers).
#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    object_type: Option<String>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    from: Option<i64>,
    #[serde(default)]
    to: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// The audit log, newest first, filtered; as JSON, or CSV with `Accept: text/csv`.
async fn audit_log(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let p = Paging {
        offset: q.offset.unwrap_or(0),
        limit: q.limit.unwrap_or(100),
    }
    .check()?;
    let filter = audit::Filter {
        actor: q.actor,
        action: q.action,
        object_type: q.object_type,
        object_id: q.object_id,
        from: q.from,
        to: q.to,
    };
    let mut c = s.db.acquire().await?;
    let (total, records) = audit::list(&mut c, &filter, p.offset, p.limit).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        return audit_csv(&records);
    }
    let list = records
        .into_iter()
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .collect();
    Ok(super::page("records", total, p, list))
}

/// Records as CSV, every cell made safe for a spreadsheet.
pub fn audit_csv(records: &[audit::Record]) -> Result<Response, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::Internal(e.to_string());
    w.write_record([
        "seq",
        "at",
        "actor",
        "role",
        "action",
        "object_type",
        "object_id",
        "detail",
        "client",
        "hash",
    ])
    .map_err(internal)?;
    for r in records {
        let cells = [
            r.seq.to_string(),
            evoucher_core::time::rfc3339(r.at),
            r.actor.clone(),
            r.role.clone(),
            r.action.clone(),
            r.object_type.clone(),
            r.object_id.clone(),
            r.detail.to_string(),
            r.client.clone().unwrap_or_default(),
            r.hash.clone(),
        ];
        w.write_record(
            cells
                .iter()
                .map(|c| evoucher_core::roster::safe_cell(c).into_owned()),
        )
        .map_err(internal)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(resp)
}
