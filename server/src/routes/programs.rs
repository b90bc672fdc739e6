//! Programs (the "e-voucher manager"): voucher settings and issuer keys; issuing; cancelling.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};

use crate::error::ApiJson;
use evoucher_core::encode::encode;
use evoucher_core::keys::IssuerKey;
use evoucher_core::voucher::{VoucherBuilder, VoucherId};
use serde::Deserialize;
use sqlx::Row;

use super::{body_limit, lock_for_writes, value_rows, MAX_JSON};
use crate::audit::{self, Event};
use crate::auth::{need, Perm::*, Principal, Scope};
use crate::limits::ClientAddr;
use crate::{now, ApiError, AppState};
use axum::Extension;
use evoucher_core::voucher::MAX_AMOUNT;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/programs",
            need(
                ManagePrograms,
                Scope::Any,
                body_limit(post(create), MAX_JSON),
            )
            .merge(need(ReadPrograms, Scope::Any, get(list))),
        )
        .route(
            "/api/v1/programs/{id}",
            need(ReadPrograms, Scope::Program, get(one)).merge(need(
                ManagePrograms,
                Scope::Program,
                body_limit(patch(update), MAX_JSON),
            )),
        )
        .route(
            "/api/v1/programs/{id}/keys/rotate",
            need(
                ManagePrograms,
                Scope::Program,
                body_limit(post(rotate), MAX_JSON),
            ),
        )
        .route(
            "/api/v1/programs/{id}/vouchers",
            need(
                ManagePrograms,
                Scope::Program,
                body_limit(post(issue), MAX_JSON),
            ),
        )
        .route(
            "/api/v1/vouchers/{id}/cancel",
            need(
                ManagePrograms,
                Scope::Voucher,
                body_limit(post(cancel), MAX_JSON),
            ),
        )
}

/// The longest a voucher may be valid, and how far ahead its validity may start: 10 years.
pub const MAX_VALIDITY_SECS: i64 = 3660 * 86_400;

#[derive(Deserialize, serde::Serialize, Clone, PartialEq)]
pub(crate) struct NewProgram {
    id: String,
    name: String,
    issuer: String,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default = "ninety")]
    validity_days: u32,
    #[serde(default)]
    partial: bool,
    #[serde(default)]
    categories: Vec<String>,
    /// In-kind entitlement of every voucher (with or instead of a cash value).
    #[serde(default)]
    items: Vec<ProgramItem>,
    /// Providers allowed to redeem (empty: any). With exactly one, vouchers name it as their
    /// audience so phones refuse others offline; with several, the server marks redemptions by
    /// others `invalid` at sync.
    #[serde(default)]
    providers: Vec<String>,
    /// The roles that approve a reimbursement claim, in order (default accountant, then
    /// cash manager).
    #[serde(default = "default_stages")]
    stages: Vec<String>,
    /// Unit prices of the program's items, in minor units of its currency, by item code: what
    /// an in-kind redemption is reimbursed at.
    #[serde(default)]
    item_prices: std::collections::BTreeMap<String, u64>,
    /// The account the program pays providers from (the debtor of payment files).
    #[serde(default)]
    payer: Option<super::payments::Payer>,
}

fn default_stages() -> Vec<String> {
    vec!["accountant".into(), "cash_manager".into()]
}

#[derive(Deserialize, serde::Serialize, Clone, PartialEq)]
struct ProgramItem {
    code: String,
    quantity: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

fn ninety() -> u32 {
    90
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(m.into())
}

/// Make a new issuer key for a program, sealed at rest, inside the caller's transaction.
async fn new_key(
    tx: &mut sqlx::AnyConnection,
    s: &AppState,
    program: &str,
    t: i64,
) -> Result<String, ApiError> {
    let key = IssuerKey::generate().map_err(|e| ApiError::Internal(e.to_string()))?;
    let jwk = key.private_jwk();
    let kid = key.kid().to_b64();
    let d = jwk.d.clone().unwrap_or_default();
    let sealed = s.sealer.seal(&kid, d.as_bytes())?;
    sqlx::query("INSERT INTO issuer_keys (kid, program_id, public_x, sealed_private, created_at, retired_at, last_expiry) VALUES ($1, $2, $3, $4, $5, NULL, 0)")
        .bind(&kid)
        .bind(program)
        .bind(jwk.x.unwrap_or_default())
        .bind(sealed)
        .bind(t)
        .execute(&mut *tx)
        .await?;
    Ok(kid)
}

/// The settings of a program, checked whole (at creation and after every edit).
fn validate(p: &NewProgram) -> Result<(), ApiError> {
    if p.name.trim().is_empty() || p.issuer.trim().is_empty() {
        return Err(bad("name and issuer are required"));
    }
    if let Some(c) = &p.currency {
        if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(bad("currency: an ISO 4217 code"));
        }
    }
    if p.amount.is_some() && p.currency.is_none() {
        return Err(bad("an amount needs a currency"));
    }
    if p.amount == Some(0) {
        return Err(bad("amount: a cash program gives an amount above 0"));
    }
    if p.amount.is_some_and(|a| a > MAX_AMOUNT) {
        return Err(bad("amount: at most 9223372036854775807 minor units"));
    }
    if p.currency.is_none() && p.items.is_empty() {
        return Err(bad(
            "a program gives a cash value (currency, amount) or items, or both",
        ));
    }
    for (i, it) in p.items.iter().enumerate() {
        if it.code.is_empty() || it.code.len() > 32 || it.quantity == 0 || it.quantity > MAX_AMOUNT
        {
            return Err(bad(format!(
                "items[{i}]: a code of 1 to 32 characters and a quantity above 0"
            )));
        }
        if p.items[..i].iter().any(|o| o.code == it.code) {
            return Err(bad(format!("items[{i}]: code repeats an earlier item")));
        }
    }
    if p.providers.iter().any(|x| x.is_empty() || x.len() > 64) {
        return Err(bad("providers: ids of 1 to 64 characters"));
    }
    if p.validity_days == 0 || p.validity_days > 3660 {
        return Err(bad("validity_days: 1 to 3660"));
    }
    if p.stages.is_empty() || p.stages.len() > 5 {
        return Err(bad("stages: 1 to 5 roles"));
    }
    for (i, st) in p.stages.iter().enumerate() {
        match crate::users::Role::parse(st) {
            Some(crate::users::Role::Accountant | crate::users::Role::CashManager) => {}
            _ => {
                return Err(bad(format!(
                    "stages[{i}]: {st:?} does not approve claims (accountant or cash_manager)"
                )))
            }
        }
    }
    if p.stages.last().map(String::as_str) != Some("cash_manager") {
        return Err(bad(
            "stages: the last stage is the cash_manager's (who sends the payment)",
        ));
    }
    for (code, price) in &p.item_prices {
        if code.is_empty() || code.len() > 32 || *price > MAX_AMOUNT {
            return Err(bad(format!(
                "item_prices.{code}: a code of 1 to 32 characters and a price of at most 2^63 - 1"
            )));
        }
    }
    if !p.item_prices.is_empty() && p.currency.is_none() {
        return Err(bad("item prices need the program's currency"));
    }
    if let Some(payer) = &p.payer {
        payer.check().map_err(bad)?;
    }
    Ok(())
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    ApiJson(p): ApiJson<NewProgram>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if who.program_limit().is_some() {
        return Err(ApiError::Forbidden(
            "an account limited to some programs cannot create programs".into(),
        ));
    }
    if p.id.is_empty()
        || p.id.len() > 64
        || !p
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad("program id: 1 to 64 letters, digits, '-' or '_'"));
    }
    validate(&p)?;
    let t = now();
    let mut tx = s.begin_write().await?;
    let amount = p
        .amount
        .map(|a| i64::try_from(a).map_err(|_| bad("amount too large")))
        .transpose()?;
    // One statement: of two creates at once (any server process), one inserts and the other
    // finds the row there (409, never a unique-violation 500).
    let n = sqlx::query("INSERT INTO programs (id, name, issuer, currency, amount, validity_days, partial, categories, created_at, items, providers, stages, item_prices, payer) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING")
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.issuer)
        .bind(p.currency.clone())
        .bind(amount)
        .bind(i64::from(p.validity_days))
        .bind(i64::from(p.partial))
        .bind(serde_json::to_string(&p.categories).unwrap_or_default())
        .bind(t)
        .bind(serde_json::to_string(&p.items).unwrap_or_default())
        .bind(serde_json::to_string(&p.providers).unwrap_or_default())
        .bind(serde_json::to_string(&p.stages).unwrap_or_default())
        .bind(serde_json::to_string(&p.item_prices).unwrap_or_default())
        .bind(p.payer.as_ref().map(|x| serde_json::to_string(x).unwrap_or_default()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::Conflict(format!("program {} exists", p.id)));
    }
    let kid = new_key(&mut tx, &s, &p.id, t).await?;
    audit::by(
        &mut tx,
        &s,
        &who,
        client,
        Event::new(
            "program.create",
            "program",
            &p.id,
            serde_json::json!({
                "after": {"name": p.name, "issuer": p.issuer, "currency": p.currency, "amount": p.amount,
                  "validity_days": p.validity_days, "partial": p.partial, "categories": p.categories,
                  "items": p.items.iter().map(|i| format!("{}:{}", i.code, i.quantity)).collect::<Vec<_>>(),
                  "providers": p.providers, "kid": kid}
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": p.id, "kid": kid})),
    ))
}

/// An edit of a program's settings: any of them, the rest kept. They apply to the vouchers
/// issued from then on (an issued voucher carries its terms, signed); the allowed providers
/// also to the redemptions judged from then on. The issuer and the currency are fixed once the
/// program has issued a voucher (phones check the one, payments add up the other).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProgramEdit {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    validity_days: Option<u32>,
    #[serde(default)]
    partial: Option<bool>,
    #[serde(default)]
    categories: Option<Vec<String>>,
    #[serde(default)]
    items: Option<Vec<ProgramItem>>,
    #[serde(default)]
    providers: Option<Vec<String>>,
    #[serde(default)]
    stages: Option<Vec<String>>,
    #[serde(default)]
    item_prices: Option<std::collections::BTreeMap<String, u64>>,
    #[serde(default)]
    payer: Option<super::payments::Payer>,
}

impl ProgramEdit {
    /// An edit from a whole set of settings (the back office's form): every field given.
    pub(crate) fn from_settings(p: NewProgram) -> ProgramEdit {
        ProgramEdit {
            name: Some(p.name),
            issuer: Some(p.issuer),
            currency: p.currency,
            amount: p.amount,
            validity_days: Some(p.validity_days),
            partial: Some(p.partial),
            categories: Some(p.categories),
            items: Some(p.items),
            providers: Some(p.providers),
            stages: Some(p.stages),
            item_prices: Some(p.item_prices),
            payer: p.payer,
        }
    }
}

/// A program's settings as stored, in the shape they are created with.
async fn settings(
    c: &mut sqlx::AnyConnection,
    id: &str,
    lock: bool,
) -> Result<NewProgram, ApiError> {
    let sql = format!(
        "SELECT name, issuer, currency, amount, validity_days, partial, categories, items, providers, stages, item_prices, payer FROM programs WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(ApiError::NotFound("no such program"))?;
    let json = |col: &str| -> Result<serde_json::Value, ApiError> {
        Ok(serde_json::from_str(&r.try_get::<String, _>(col)?).unwrap_or_default())
    };
    Ok(NewProgram {
        id: id.to_owned(),
        name: r.try_get("name")?,
        issuer: r.try_get("issuer")?,
        currency: r.try_get("currency")?,
        amount: r
            .try_get::<Option<i64>, _>("amount")?
            .map(|a| u64::try_from(a).unwrap_or(0)),
        validity_days: u32::try_from(r.try_get::<i64, _>("validity_days")?).unwrap_or(0),
        partial: r.try_get::<i64, _>("partial")? != 0,
        categories: serde_json::from_value(json("categories")?).unwrap_or_default(),
        items: serde_json::from_value(json("items")?).unwrap_or_default(),
        providers: serde_json::from_value(json("providers")?).unwrap_or_default(),
        stages: serde_json::from_value(json("stages")?).unwrap_or_else(|_| default_stages()),
        item_prices: serde_json::from_value(json("item_prices")?).unwrap_or_default(),
        payer: r
            .try_get::<Option<String>, _>("payer")?
            .and_then(|x| serde_json::from_str(&x).ok()),
    })
}

pub(crate) async fn update(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
    ApiJson(e): ApiJson<ProgramEdit>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut tx = s.begin_write().await?;
    // On PostgreSQL the row is locked: two edits at once apply one after the other.
    let before = settings(&mut tx, &id, s.postgres).await?;
    let mut after = before.clone();
    if let Some(v) = e.name {
        after.name = v;
    }
    if let Some(v) = e.issuer {
        after.issuer = v;
    }
    if let Some(v) = e.currency {
        after.currency = Some(v);
    }
    if let Some(v) = e.amount {
        after.amount = Some(v);
    }
    if let Some(v) = e.validity_days {
        after.validity_days = v;
    }
    if let Some(v) = e.partial {
        after.partial = v;
    }
    if let Some(v) = e.categories {
        after.categories = v;
    }
    if let Some(v) = e.items {
        after.items = v;
    }
    if let Some(v) = e.providers {
        after.providers = v;
    }
    if let Some(v) = e.stages {
        after.stages = v;
    }
    if let Some(v) = e.item_prices {
        after.item_prices = v;
    }
    if let Some(v) = e.payer {
        after.payer = Some(v);
    }
    validate(&after)?;
    if after.issuer != before.issuer || after.currency != before.currency {
        let issued: i64 = sqlx::query("SELECT COUNT(*) AS n FROM vouchers WHERE program_id = $1")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if issued > 0 {
            return Err(ApiError::Conflict(format!(
                "the issuer and the currency are fixed once vouchers are issued ({issued} issued): phones check the one, payments add up the other; start a new program instead"
            )));
        }
    }
    // The audit record: only what changed, before and after.
    let (b, a) = (
        serde_json::to_value(&before).unwrap_or_default(),
        serde_json::to_value(&after).unwrap_or_default(),
    );
    let mut changed_before = serde_json::Map::new();
    let mut changed_after = serde_json::Map::new();
    if let (Some(b), Some(a)) = (b.as_object(), a.as_object()) {
        for (k, v) in a {
            if b.get(k) != Some(v) {
                changed_before.insert(k.clone(), b.get(k).cloned().unwrap_or_default());
                changed_after.insert(k.clone(), v.clone());
            }
        }
    }
    let changed: Vec<String> = changed_after.keys().cloned().collect();
    if !changed.is_empty() {
        let amount = after
            .amount
            .map(|a| i64::try_from(a).map_err(|_| bad("amount too large")))
            .transpose()?;
        sqlx::query("UPDATE programs SET name = $1, issuer = $2, currency = $3, amount = $4, validity_days = $5, partial = $6, categories = $7, items = $8, providers = $9, stages = $11, item_prices = $12, payer = $13 WHERE id = $10")
            .bind(&after.name)
            .bind(&after.issuer)
            .bind(after.currency.clone())
            .bind(amount)
            .bind(i64::from(after.validity_days))
            .bind(i64::from(after.partial))
            .bind(serde_json::to_string(&after.categories).unwrap_or_default())
            .bind(serde_json::to_string(&after.items).unwrap_or_default())
            .bind(serde_json::to_string(&after.providers).unwrap_or_default())
            .bind(&id)
            .bind(serde_json::to_string(&after.stages).unwrap_or_default())
            .bind(serde_json::to_string(&after.item_prices).unwrap_or_default())
            .bind(after.payer.as_ref().map(|x| serde_json::to_string(x).unwrap_or_default()))
            .execute(&mut *tx)
            .await?;
        audit::by(
            &mut tx,
            &s,
            &who,
            client,
            Event::new(
                "program.update",
                "program",
                &id,
                serde_json::json!({"before": changed_before, "after": changed_after}),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(serde_json::json!({"id": id, "changed": changed})))
}

/// Retire the current key (it stays in the trust list until its last voucher expires) and
/// make a new one.
pub(crate) async fn rotate(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = now();
    let mut tx = s.begin_write().await?;
    // On PostgreSQL the program row is locked: two rotations at once must not leave two
    // current keys.
    let sql = if s.postgres {
        "SELECT 1 FROM programs WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT 1 FROM programs WHERE id = $1"
    };
    if sqlx::query(sql)
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such program"));
    }
    let old: Vec<String> =
        sqlx::query("SELECT kid FROM issuer_keys WHERE program_id = $1 AND retired_at IS NULL")
            .bind(&id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("kid"))
            .collect::<Result<_, _>>()?;
    sqlx::query(
        "UPDATE issuer_keys SET retired_at = $1 WHERE program_id = $2 AND retired_at IS NULL",
    )
    .bind(t)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    let kid = new_key(&mut tx, &s, &id, t).await?;
    audit::by(
        &mut tx,
        &s,
        &who,
        client,
        Event::new(
            "program.rotate_key",
            "program",
            &id,
            serde_json::json!({"before": {"kid": old}, "after": {"kid": kid}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(serde_json::json!({"kid": kid})))
}

#[derive(Deserialize)]
struct Beneficiary {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    amount: Option<u64>,
}

#[derive(Deserialize)]
pub(crate) struct IssueRequest {
    #[serde(default)]
    beneficiaries: Option<serde_json::Value>,
    /// Issue to imported beneficiaries who have no live voucher in the program yet (up to
    /// 10,000 per call; the answer says how many remain).
    #[serde(default)]
    imported: bool,
    /// Listed beneficiaries who hold a live voucher get a new one and the old one is cancelled
    /// (a lost or damaged voucher). Without it they are refused (409, naming the live voucher).
    #[serde(default)]
    reissue: bool,
    #[serde(default)]
    valid_from: Option<i64>,
}

/// The expected shape, said whenever `beneficiaries` is not it.
const SHAPE: &str = "beneficiaries: a list of 1 to 10,000 objects like {\"id\": \"BEN-1\"} (optionally \"name\" and \"amount\" in minor units; an imported beneficiary's own name and amount are used when not given), or {\"imported\": true} to issue to every imported beneficiary without a live voucher";

fn listed(v: Option<serde_json::Value>) -> Result<Vec<Beneficiary>, ApiError> {
    let Some(v) = v else {
        return Err(bad(SHAPE));
    };
    let list: Vec<Beneficiary> = serde_json::from_value(v).map_err(|_| bad(SHAPE))?;
    if list.is_empty() || list.len() > MAX_ISSUE {
        return Err(bad(SHAPE));
    }
    for (i, b) in list.iter().enumerate() {
        if b.id.is_empty() || b.id.len() > 128 {
            return Err(bad(format!(
                "beneficiaries[{i}]: an id of 1 to 128 characters"
            )));
        }
        if list[..i].iter().any(|o| o.id == b.id) {
            return Err(bad(format!("beneficiaries[{i}]: listed twice")));
        }
    }
    Ok(list)
}

/// The validity window `[from, exp)` of vouchers issued now: it must not be over already, start
/// more than 10 years ahead, or last longer than 10 years.
fn window(valid_from: Option<i64>, days: i64, t: i64) -> Result<(i64, i64), ApiError> {
    let from = valid_from.unwrap_or(t);
    if from < 0 || from > t + MAX_VALIDITY_SECS {
        return Err(bad(
            "valid_from: from 0 to 10 years from now (seconds since the epoch)",
        ));
    }
    let exp = from + days * 86_400;
    if exp <= t {
        return Err(bad("valid_from: the validity window would already be over"));
    }
    Ok((from, exp))
}

/// Issue one voucher per beneficiary, all or nothing.
pub(crate) async fn issue(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IssueRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let listed = if req.imported {
        if req.beneficiaries.is_some() {
            return Err(bad("give beneficiaries or imported, not both"));
        }
        if req.reissue {
            return Err(bad("reissue applies to listed beneficiaries"));
        }
        None
    } else {
        Some(listed(req.beneficiaries)?)
    };
    let t = now();
    let mut tx = s.begin_write().await?;
    // On PostgreSQL the program row is locked for the issuance: two calls issuing to the same
    // beneficiaries at once must not both issue, and a rotation waits.
    let p = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT issuer, currency, amount, validity_days, partial, categories, items, providers FROM programs WHERE id = $1{}",
        if s.postgres { " FOR UPDATE" } else { "" }
    )))
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("no such program"))?;
    let days: i64 = p.try_get("validity_days")?;
    let (from, exp) = window(req.valid_from, days, t)?;
    let (beneficiaries, replaced) = match listed {
        None => (pending(&mut tx, &id, t, MAX_ISSUE).await?, Vec::new()),
        Some(list) => {
            let live = live_vouchers(&mut tx, &id, &list, t).await?;
            if !live.is_empty() && !req.reissue {
                let (bid, vid) = &live[0];
                return Err(ApiError::Conflict(format!(
                    "beneficiary {bid} holds live voucher {vid} of this program{}: cancel it, or ask for \"reissue\": true to cancel and replace it",
                    if live.len() > 1 { format!(" ({} listed beneficiaries hold one)", live.len()) } else { String::new() }
                )));
            }
            (with_imported(&mut tx, &id, list).await?, live)
        }
    };
    let k = sqlx::query(
        "SELECT kid, sealed_private FROM issuer_keys WHERE program_id = $1 AND retired_at IS NULL",
    )
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?;
    let kid: String = k.try_get("kid")?;
    let d = s
        .sealer
        .open(&kid, &k.try_get::<String, _>("sealed_private")?)?;
    let jwk = evoucher_core::keys::Jwk {
        kty: "OKP".into(),
        crv: Some("Ed25519".into()),
        d: Some(
            String::from_utf8(d.to_vec()).map_err(|_| ApiError::Internal("sealed key".into()))?,
        ),
        ..Default::default()
    };
    let key = IssuerKey::from_jwk(&jwk).map_err(|e| ApiError::Internal(e.to_string()))?;
    let issuer: String = p.try_get("issuer")?;
    let currency: Option<String> = p.try_get("currency")?;
    let default_amount: Option<i64> = p.try_get("amount")?;
    let partial: i64 = p.try_get("partial")?;
    let categories: Vec<String> =
        serde_json::from_str(&p.try_get::<String, _>("categories")?).unwrap_or_default();
    let items: Vec<ProgramItem> =
        serde_json::from_str(&p.try_get::<String, _>("items")?).unwrap_or_default();
    let providers: Vec<String> =
        serde_json::from_str(&p.try_get::<String, _>("providers")?).unwrap_or_default();
    let mut out = Vec::with_capacity(beneficiaries.len());
    for (i, b) in beneficiaries.iter().enumerate() {
        let mut vb =
            VoucherBuilder::new(&issuer, &id, &b.id).times(t, (from != t).then_some(from), exp);
        vb = vb.id(VoucherId::random().map_err(|e| ApiError::Internal(e.to_string()))?);
        if let Some(n) = &b.name {
            vb = vb.name(n);
        }
        let amount = b.amount.or(default_amount.map(|a| a as u64));
        match (amount, &currency) {
            (Some(0), _) => return Err(bad(format!("beneficiary {}: an amount above 0", i + 1))),
            (Some(a), _) if a > MAX_AMOUNT => {
                return Err(bad(format!(
                    "beneficiary {}: amount over 9223372036854775807 minor units",
                    i + 1
                )))
            }
            (Some(a), Some(c)) => vb = vb.value(a, c),
            (Some(_), None) => {
                return Err(bad(format!(
                    "beneficiary {}: an amount, but the program gives no cash value",
                    i + 1
                )))
            }
            (None, Some(_)) if items.is_empty() => {
                return Err(bad(format!(
                    "beneficiary {}: no amount (the program has no default)",
                    i + 1
                )))
            }
            _ => {}
        }
        for it in &items {
            vb = vb.item_full(evoucher_core::voucher::Item {
                code: it.code.clone(),
                quantity: it.quantity,
                unit: it.unit.clone(),
                description: it.description.clone(),
            });
        }
        if let [only] = providers.as_slice() {
            vb = vb.audience(only);
        }
        if partial != 0 {
            vb = vb.partial();
        }
        for c in &categories {
            vb = vb.category(c);
        }
        let v = vb
            .build()
            .map_err(|e| bad(format!("beneficiary {}: {e}", i + 1)))?;
        let text = encode(&v, &key)
            .map_err(|e| bad(format!("beneficiary {}: {e}", i + 1)))?
            .text;
        out.push((v.id.to_hex(), b.id.clone(), text));
    }
    // A reissue cancels the vouchers it replaces, in the same transaction.
    let mut cancelled = Vec::with_capacity(replaced.len());
    if !replaced.is_empty() {
        lock_for_writes(&mut tx, &s, "revocations").await?;
        for (_, vid) in &replaced {
            cancel_in(&mut tx, vid, t).await?;
            cancelled.push(vid.clone());
        }
    }
    for part in out.chunks(500) {
        let sql = format!(
            "INSERT INTO vouchers (id, program_id, kid, beneficiary_id, text, exp, issued_at) VALUES {}",
            value_rows(part.len(), 7)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (vid, bid, text) in part {
            q = q
                .bind(vid.clone())
                .bind(id.clone())
                .bind(kid.clone())
                .bind(bid.clone())
                .bind(text.clone())
                .bind(exp)
                .bind(t);
        }
        q.execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE issuer_keys SET last_expiry = $1 WHERE kid = $2 AND last_expiry < $1")
        .bind(exp)
        .bind(&kid)
        .execute(&mut *tx)
        .await?;
    let remaining = if req.imported {
        pending_count(&mut tx, &id, t).await?
    } else {
        0
    };
    if !out.is_empty() || !cancelled.is_empty() {
        audit::by(
            &mut tx,
            &s,
            &who,
            client,
            Event::new(
                if cancelled.is_empty() { "vouchers.issue" } else { "vouchers.reissue" },
                "program",
                &id,
                serde_json::json!({
                    "after": {"issued": out.len(), "imported": req.imported, "kid": kid, "valid_from": from, "exp": exp},
                    "cancelled": cancelled,
                }),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    let vouchers: Vec<serde_json::Value> = out
        .into_iter()
        .map(|(vid, bid, text)| serde_json::json!({"id": vid, "beneficiary_id": bid, "text": text}))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(
            serde_json::json!({"vouchers": vouchers, "remaining": remaining, "cancelled": cancelled}),
        ),
    ))
}

/// Most vouchers issued by one call.
pub const MAX_ISSUE: usize = 10_000;

/// A live voucher: not cancelled, not expired.
const LIVE: &str =
    "v.exp > $2 AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.voucher_id = v.id)";

/// Imported beneficiaries of a program with no live voucher in it.
fn pending_sql(select: &str) -> String {
    format!(
        "SELECT {select} FROM beneficiaries b WHERE b.program_id = $1 AND NOT EXISTS (\
         SELECT 1 FROM vouchers v WHERE v.program_id = b.program_id AND v.beneficiary_id = b.id AND {LIVE})"
    )
}

async fn pending(
    tx: &mut sqlx::AnyConnection,
    program: &str,
    t: i64,
    limit: usize,
) -> Result<Vec<Beneficiary>, ApiError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{} ORDER BY b.id LIMIT $3",
        pending_sql("b.id, b.name, b.amount")
    )))
    .bind(program)
    .bind(t)
    .bind(limit as i64)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Beneficiary {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                amount: r.try_get::<Option<i64>, _>("amount")?.map(|a| a as u64),
            })
        })
        .collect()
}

async fn pending_count(
    tx: &mut sqlx::AnyConnection,
    program: &str,
    t: i64,
) -> Result<i64, ApiError> {
    Ok(
        sqlx::query(sqlx::AssertSqlSafe(pending_sql("COUNT(*) AS n")))
            .bind(program)
            .bind(t)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?,
    )
}

/// (beneficiary id, voucher id) of the live vouchers these beneficiaries hold in the program.
async fn live_vouchers(
    tx: &mut sqlx::AnyConnection,
    program: &str,
    list: &[Beneficiary],
    t: i64,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for part in list.chunks(500) {
        let sql = format!(
            "SELECT v.beneficiary_id, v.id FROM vouchers v WHERE v.program_id = $1 AND {LIVE} \
             AND v.beneficiary_id IN ({}) ORDER BY v.beneficiary_id, v.id",
            super::placeholders(3, part.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program).bind(t);
        for b in part {
            q = q.bind(b.id.as_str());
        }
        for r in q.fetch_all(&mut *tx).await? {
            out.push((r.try_get("beneficiary_id")?, r.try_get("id")?));
        }
    }
    Ok(out)
}

/// Listed beneficiaries completed from the import: an imported beneficiary's own name and
/// amount are used unless the request gives them.
async fn with_imported(
    tx: &mut sqlx::AnyConnection,
    program: &str,
    mut list: Vec<Beneficiary>,
) -> Result<Vec<Beneficiary>, ApiError> {
    let mut known = std::collections::HashMap::new();
    for part in list.chunks(500) {
        let sql = format!(
            "SELECT id, name, amount FROM beneficiaries WHERE program_id = $1 AND id IN ({})",
            super::placeholders(2, part.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program);
        for b in part {
            q = q.bind(b.id.as_str());
        }
        for r in q.fetch_all(&mut *tx).await? {
            known.insert(
                r.try_get::<String, _>("id")?,
                (
                    r.try_get::<Option<String>, _>("name")?,
                    r.try_get::<Option<i64>, _>("amount")?,
                ),
            );
        }
    }
    for b in &mut list {
        if let Some((name, amount)) = known.get(&b.id) {
            if b.name.is_none() {
                b.name = name.clone();
            }
            if b.amount.is_none() {
                b.amount = amount.map(|a| a as u64);
            }
        }
    }
    Ok(list)
}

/// Put a voucher on the revocation feed inside the caller's transaction (which holds the
/// revocations lock on PostgreSQL). Returns its feed number, time and whether it is new; a
/// voucher already there keeps its own.
async fn cancel_in(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    t: i64,
) -> Result<(i64, i64, bool), ApiError> {
    if let Some(r) = sqlx::query("SELECT seq, revoked_at FROM revocations WHERE voucher_id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
    {
        return Ok((r.try_get("seq")?, r.try_get("revoked_at")?, false));
    }
    let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM revocations")
        .fetch_one(&mut *tx)
        .await?
        .try_get("next")?;
    sqlx::query("INSERT INTO revocations (seq, voucher_id, revoked_at) VALUES ($1, $2, $3)")
        .bind(seq)
        .bind(id)
        .bind(t)
        .execute(&mut *tx)
        .await?;
    Ok((seq, t, true))
}

/// Cancel a voucher: it joins the revocation feed (idempotent).
pub(crate) async fn cancel(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut tx = s.begin_write().await?;
    // Feed numbers are handed out in commit order: a phone that has read up to N never misses
    // a cancellation numbered N or below that committed later.
    lock_for_writes(&mut tx, &s, "revocations").await?;
    if sqlx::query("SELECT 1 FROM vouchers WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such voucher"));
    }
    let (seq, at, new) = cancel_in(&mut tx, &id, now()).await?;
    if new {
        audit::by(
            &mut tx,
            &s,
            &who,
            client,
            Event::new(
                "voucher.cancel",
                "voucher",
                &id,
                serde_json::json!({"before": {"cancelled": false}, "after": {"cancelled": true, "feed": seq}}),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(
        serde_json::json!({"voucher_id": id, "seq": seq, "revoked_at": at}),
    ))
}

/// A program as the API shows it: its settings, its keys and its counts.
async fn program_json(
    c: &mut sqlx::AnyConnection,
    r: &sqlx::any::AnyRow,
) -> Result<serde_json::Value, ApiError> {
    let id: String = r.try_get("id")?;
    let json = |col: &str| -> Result<serde_json::Value, ApiError> {
        Ok(serde_json::from_str(&r.try_get::<String, _>(col)?).unwrap_or_default())
    };
    let keys: Vec<serde_json::Value> = sqlx::query(
        "SELECT kid, created_at, retired_at, last_expiry FROM issuer_keys WHERE program_id = $1 ORDER BY created_at, kid",
    )
    .bind(&id)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|k| {
        Ok(serde_json::json!({
            "kid": k.try_get::<String, _>("kid")?,
            "created_at": k.try_get::<i64, _>("created_at")?,
            "retired_at": k.try_get::<Option<i64>, _>("retired_at")?,
            "current": k.try_get::<Option<i64>, _>("retired_at")?.is_none(),
        }))
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let t = now();
    let counts = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM beneficiaries WHERE program_id = $1) AS beneficiaries, \
         (SELECT COUNT(*) FROM vouchers WHERE program_id = $1) AS issued, \
         (SELECT COUNT(*) FROM vouchers v WHERE v.program_id = $1 AND EXISTS (SELECT 1 FROM revocations x WHERE x.voucher_id = v.id)) AS cancelled, \
         (SELECT COUNT(*) FROM vouchers v WHERE v.program_id = $1 AND v.exp > $2 AND NOT EXISTS (SELECT 1 FROM revocations x WHERE x.voucher_id = v.id)) AS live",
    )
    .bind(&id)
    .bind(t)
    .fetch_one(&mut *c)
    .await?;
    Ok(serde_json::json!({
        "id": id,
        "name": r.try_get::<String, _>("name")?,
        "issuer": r.try_get::<String, _>("issuer")?,
        "currency": r.try_get::<Option<String>, _>("currency")?,
        "amount": r.try_get::<Option<i64>, _>("amount")?,
        "validity_days": r.try_get::<i64, _>("validity_days")?,
        "partial": r.try_get::<i64, _>("partial")? != 0,
        "categories": json("categories")?,
        "items": json("items")?,
        "providers": json("providers")?,
        "stages": json("stages")?,
        "item_prices": json("item_prices")?,
        "payer": r
            .try_get::<Option<String>, _>("payer")?
            .and_then(|x| serde_json::from_str::<serde_json::Value>(&x).ok()),
        "created_at": r.try_get::<i64, _>("created_at")?,
        "keys": keys,
        "counts": {
            "beneficiaries": counts.try_get::<i64, _>("beneficiaries")?,
            "vouchers_issued": counts.try_get::<i64, _>("issued")?,
            "vouchers_live": counts.try_get::<i64, _>("live")?,
            "vouchers_cancelled": counts.try_get::<i64, _>("cancelled")?,
        },
    }))
}

const PROGRAM_COLUMNS: &str = "SELECT id, name, issuer, currency, amount, validity_days, partial, categories, items, providers, stages, item_prices, payer, created_at FROM programs";

/// Every program the caller may see, with its settings and keys.
pub(crate) async fn list(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut c = s.db.acquire().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PROGRAM_COLUMNS} ORDER BY id"
    )))
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        if who.sees_program(&r.try_get::<String, _>("id")?) {
            out.push(program_json(&mut c, r).await?);
        }
    }
    Ok(Json(serde_json::json!({ "programs": out })))
}

/// One program.
pub(crate) async fn one(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut c = s.db.acquire().await?;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PROGRAM_COLUMNS} WHERE id = $1"
    )))
    .bind(&id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or(ApiError::NotFound("no such program"))?;
    Ok(Json(program_json(&mut c, &r).await?))
}
