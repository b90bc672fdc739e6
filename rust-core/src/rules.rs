//! The rulebook: what one redemption may take from a voucher, decided in one place for the
//! phone's ledger and for the server's sync alike, so the two can never disagree.
//!
//! [`check`] is a pure function over the voucher, the redemptions already counted against it
//! (accepted and not voided) and the new entry's taking, in a [`Context`] (who redeems, when,
//! whether the voucher was cancelled). Arithmetic is checked: an amount or quantity above
//! [`MAX_AMOUNT`] or a sum that would overflow is refused, never wrapped. [`plan`] turns what a
//! provider asks for ("the whole voucher", an amount, some items) into an exact taking;
//! [`check_void`] decides whether a void may undo a redemption.
//!
//! A [`Refusal`] says why; [`Refusal::is_conflict`] separates what depends on other
//! redemptions (the server's `conflict`) from what is wrong in the entry itself (`invalid`).

use serde::{Deserialize, Serialize};

use crate::voucher::{RedemptionRule, Voucher, VoucherId, MAX_AMOUNT};

/// A quantity of one item code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemQty {
    pub code: String,
    pub quantity: u64,
}

/// A redemption already counted against the voucher: accepted and not voided.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    pub id: &'a str,
    pub at: i64,
    pub provider: &'a str,
    pub device: &'a str,
    pub amount: Option<u64>,
    pub items: &'a [ItemQty],
}

/// What a new redemption takes.
#[derive(Debug, Clone, Copy)]
pub struct Taking<'a> {
    /// Minor units of the voucher's currency.
    pub amount: Option<u64>,
    pub currency: Option<&'a str>,
    pub items: &'a [ItemQty],
}

/// Who redeems, when, and what is known of the voucher's cancellation.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The service provider redeeming. The server passes the provider it registered for the
    /// device, never one the phone declares.
    pub provider: &'a str,
    /// That provider's category (the server's record of it).
    pub category: Option<&'a str>,
    /// When the redemption happened (seconds since the epoch).
    pub at: i64,
    /// When the voucher was cancelled, if it was. A redemption at or after it is refused.
    pub revoked_at: Option<i64>,
}

/// What remains on a voucher.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Remaining cash value (minor units), when the voucher has one.
    pub amount: Option<u64>,
    pub items: Vec<ItemQty>,
    /// Redemptions counted (not voided).
    pub redemptions: usize,
}

/// What a provider asks to redeem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemRequest {
    /// The whole voucher (for a partial voucher: everything that remains).
    Whole,
    /// An amount in minor units of the voucher's currency (partial vouchers).
    Amount(u64),
    /// Items with quantities (partial vouchers).
    Items(Vec<ItemQty>),
}

/// Why a redemption may not take what it asks. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    #[error("already redeemed at {} by provider {provider} on device {device}", crate::time::rfc3339(*at))]
    AlreadyRedeemed {
        at: i64,
        provider: String,
        device: String,
        entry_id: String,
    },
    #[error("voucher is fully used")]
    Exhausted,
    #[error("balance insufficient: {remaining} left, {requested} requested")]
    InsufficientBalance { remaining: u64, requested: u64 },
    #[error("item {code}: {remaining} left, {requested} requested")]
    InsufficientItems {
        code: String,
        remaining: u64,
        requested: u64,
    },
    #[error("item {code} is not on this voucher")]
    UnknownItem { code: String },
    #[error("voucher has no cash value")]
    NoValue,
    #[error("single-use voucher: it can only be redeemed whole")]
    WholeOnly,
    #[error("single-use voucher: a redemption takes exactly its value and items, {0}")]
    NotWhole(&'static str),
    #[error("currency {given} is not the voucher's {expected}")]
    WrongCurrency { expected: String, given: String },
    #[error("{0} is over the largest amount a voucher can carry (2^63 - 1)")]
    OutOfRange(&'static str),
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error("voucher is for another service provider")]
    WrongProvider,
    #[error("provider category is not allowed for this voucher")]
    CategoryNotAllowed,
    #[error("voucher is not valid before {}", crate::time::rfc3339(*nbf))]
    NotYetValid { nbf: i64 },
    #[error("voucher expired at {}", crate::time::rfc3339(*exp))]
    Expired { exp: i64 },
    #[error("voucher was cancelled by the program at {}", crate::time::rfc3339(*revoked_at))]
    Revoked { revoked_at: i64 },
}

impl Refusal {
    /// Stable snake_case code (the `reason` in JSON).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AlreadyRedeemed { .. } => "already_redeemed",
            Refusal::Exhausted => "exhausted",
            Refusal::InsufficientBalance { .. } => "insufficient_balance",
            Refusal::InsufficientItems { .. } => "insufficient_items",
            Refusal::UnknownItem { .. } => "unknown_item",
            Refusal::NoValue => "no_value",
            Refusal::WholeOnly => "whole_only",
            Refusal::NotWhole(_) => "not_whole",
            Refusal::WrongCurrency { .. } => "wrong_currency",
            Refusal::OutOfRange(_) => "out_of_range",
            Refusal::InvalidRequest(_) => "invalid_request",
            Refusal::WrongProvider => "wrong_provider",
            Refusal::CategoryNotAllowed => "category_not_allowed",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::Expired { .. } => "expired",
            Refusal::Revoked { .. } => "revoked",
        }
    }

    /// Whether the refusal comes from other redemptions of the voucher (the entry would have
    /// been fine on its own): the server's `conflict`. Everything else is wrong in the entry
    /// itself: `invalid`.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Refusal::AlreadyRedeemed { .. }
                | Refusal::Exhausted
                | Refusal::InsufficientBalance { .. }
                | Refusal::InsufficientItems { .. }
        )
    }
}

/// Sum with overflow refused.
fn sum(mut values: impl Iterator<Item = u64>, what: &'static str) -> Result<u64, Refusal> {
    values.try_fold(0u64, |acc, v| {
        acc.checked_add(v).ok_or(Refusal::OutOfRange(what))
    })
}

/// What remains on a voucher after the counted redemptions (nothing, for a single-use voucher
/// redeemed once). Sums that would overflow are refused.
pub fn balance(v: &Voucher, counted: &[Counted<'_>]) -> Result<Balance, Refusal> {
    let redemptions = counted.len();
    if v.rule == RedemptionRule::Single && redemptions > 0 {
        return Ok(Balance {
            amount: v.value.as_ref().map(|_| 0),
            items: v
                .items
                .iter()
                .map(|i| ItemQty {
                    code: i.code.clone(),
                    quantity: 0,
                })
                .collect(),
            redemptions,
        });
    }
    let used = sum(counted.iter().filter_map(|c| c.amount), "the amount used")?;
    let mut items = Vec::with_capacity(v.items.len());
    for it in &v.items {
        let taken = sum(
            counted
                .iter()
                .flat_map(|c| c.items.iter())
                .filter(|x| x.code == it.code)
                .map(|x| x.quantity),
            "the quantity used",
        )?;
        items.push(ItemQty {
            code: it.code.clone(),
            quantity: it.quantity.saturating_sub(taken),
        });
    }
    Ok(Balance {
        amount: v.value.as_ref().map(|x| x.amount.saturating_sub(used)),
        items,
        redemptions,
    })
}

/// Whether this redemption may happen now, here, at all: validity, provider, category and
/// cancellation (the same for every taking).
pub fn check_context(v: &Voucher, ctx: &Context<'_>) -> Result<(), Refusal> {
    if ctx.at < v.valid_from() {
        return Err(Refusal::NotYetValid {
            nbf: v.valid_from(),
        });
    }
    if ctx.at >= v.exp {
        return Err(Refusal::Expired { exp: v.exp });
    }
    if v.aud.as_deref().is_some_and(|a| a != ctx.provider) {
        return Err(Refusal::WrongProvider);
    }
    if !v.categories.is_empty()
        && !ctx
            .category
            .is_some_and(|c| v.categories.iter().any(|x| x == c))
    {
        return Err(Refusal::CategoryNotAllowed);
    }
    if let Some(r) = ctx.revoked_at {
        if r <= ctx.at {
            return Err(Refusal::Revoked { revoked_at: r });
        }
    }
    Ok(())
}

/// The shape of a taking, whatever was redeemed before: amounts and quantities in range and
/// positive, the voucher's currency, items the voucher carries, each once, something taken.
fn check_shape(v: &Voucher, t: &Taking<'_>) -> Result<(), Refusal> {
    match (t.amount, &v.value) {
        (Some(a), _) if a > MAX_AMOUNT => return Err(Refusal::OutOfRange("the amount")),
        (Some(0), _) => return Err(Refusal::InvalidRequest("amount must be positive")),
        (Some(_), None) => return Err(Refusal::NoValue),
        (Some(_), Some(val)) => {
            let given = t.currency.unwrap_or("");
            if given != val.currency {
                return Err(Refusal::WrongCurrency {
                    expected: val.currency.clone(),
                    given: given.to_owned(),
                });
            }
        }
        (None, _) if t.currency.is_some() => {
            return Err(Refusal::InvalidRequest("a currency without an amount"))
        }
        (None, _) => {}
    }
    for (i, it) in t.items.iter().enumerate() {
        if it.quantity > MAX_AMOUNT {
            return Err(Refusal::OutOfRange("an item quantity"));
        }
        if it.quantity == 0 {
            return Err(Refusal::InvalidRequest("item quantity must be positive"));
        }
        if t.items[..i].iter().any(|x| x.code == it.code) {
            return Err(Refusal::InvalidRequest("item listed twice"));
        }
        if !v.items.iter().any(|x| x.code == it.code) {
            return Err(Refusal::UnknownItem {
                code: it.code.clone(),
            });
        }
    }
    if t.amount.is_none() && t.items.is_empty() {
        return Err(Refusal::InvalidRequest("the redemption takes nothing"));
    }
    Ok(())
}

/// A single-use voucher is taken whole: exactly its value and every item in its quantity.
fn check_whole(v: &Voucher, t: &Taking<'_>) -> Result<(), Refusal> {
    if t.amount != v.value.as_ref().map(|x| x.amount) {
        return Err(Refusal::NotWhole("not another amount"));
    }
    let same_items = t.items.len() == v.items.len()
        && v.items.iter().all(|it| {
            t.items
                .iter()
                .any(|x| x.code == it.code && x.quantity == it.quantity)
        });
    if !same_items {
        return Err(Refusal::NotWhole("not other items or quantities"));
    }
    Ok(())
}

/// Decide whether a redemption taking `t` may happen: the one rule for the phone and the
/// server. On success, what remains after it.
///
/// In order: validity at `ctx.at`, provider (`aud`), category, cancellation; then the taking
/// itself (range, currency, items; single-use: exactly the whole voucher); then the voucher's
/// history (already redeemed; more than remains).
pub fn check(
    v: &Voucher,
    counted: &[Counted<'_>],
    t: &Taking<'_>,
    ctx: &Context<'_>,
) -> Result<Balance, Refusal> {
    check_context(v, ctx)?;
    check_shape(v, t)?;
    if v.rule == RedemptionRule::Single {
        check_whole(v, t)?;
        if let Some(first) = counted.first() {
            return Err(already(first));
        }
        return balance(v, &[here(t)]);
    }
    let before = balance(v, counted)?;
    if let Some(a) = t.amount {
        let remaining = before.amount.unwrap_or(0);
        if a > remaining {
            return Err(if remaining == 0 {
                Refusal::Exhausted
            } else {
                Refusal::InsufficientBalance {
                    remaining,
                    requested: a,
                }
            });
        }
    }
    for it in t.items {
        let left = before
            .items
            .iter()
            .find(|b| b.code == it.code)
            .map(|b| b.quantity)
            .unwrap_or(0);
        if it.quantity > left {
            return Err(Refusal::InsufficientItems {
                code: it.code.clone(),
                remaining: left,
                requested: it.quantity,
            });
        }
    }
    let mut after: Vec<Counted<'_>> = counted.to_vec();
    after.push(here(t));
    balance(v, &after)
}

/// The new taking as a counted redemption (for the balance after it).
fn here<'a>(t: &Taking<'a>) -> Counted<'a> {
    Counted {
        id: "",
        at: 0,
        provider: "",
        device: "",
        amount: t.amount,
        items: t.items,
    }
}

fn already(first: &Counted<'_>) -> Refusal {
    Refusal::AlreadyRedeemed {
        at: first.at,
        provider: first.provider.to_owned(),
        device: first.device.to_owned(),
        entry_id: first.id.to_owned(),
    }
}

/// Turn a provider's request into an exact taking (amount, items), or refuse it with the most
/// helpful reason ([`check`] then decides).
pub fn plan(
    v: &Voucher,
    counted: &[Counted<'_>],
    req: &RedeemRequest,
) -> Result<(Option<u64>, Vec<ItemQty>), Refusal> {
    if v.rule == RedemptionRule::Single {
        if let Some(first) = counted.first() {
            return Err(already(first));
        }
        if *req != RedeemRequest::Whole {
            return Err(Refusal::WholeOnly);
        }
        let items = v
            .items
            .iter()
            .map(|i| ItemQty {
                code: i.code.clone(),
                quantity: i.quantity,
            })
            .collect();
        return Ok((v.value.as_ref().map(|x| x.amount), items));
    }
    let bal = balance(v, counted)?;
    let exhausted = bal.amount.unwrap_or(0) == 0 && bal.items.iter().all(|i| i.quantity == 0);
    if exhausted {
        return Err(Refusal::Exhausted);
    }
    Ok(match req {
        RedeemRequest::Whole => (
            bal.amount.filter(|a| *a > 0),
            bal.items.into_iter().filter(|i| i.quantity > 0).collect(),
        ),
        RedeemRequest::Amount(x) => {
            if bal.amount.is_none() {
                return Err(Refusal::NoValue);
            }
            (Some(*x), Vec::new())
        }
        RedeemRequest::Items(items) => {
            if items.is_empty() {
                return Err(Refusal::InvalidRequest("no items requested"));
            }
            (None, items.clone())
        }
    })
}

/// The redemption a void names, as its judge knows it.
#[derive(Debug, Clone, Copy)]
pub struct VoidTarget<'a> {
    /// It is a redemption (not itself a void).
    pub is_redemption: bool,
    /// The device that made it.
    pub device: &'a str,
    pub voucher_id: &'a VoucherId,
    /// It counts against its voucher (on the server: its status is `accepted`).
    pub accepted: bool,
    /// An accepted void already undid it.
    pub voided: bool,
}

/// Why a void may not undo a redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum VoidRefusal {
    #[error("no such redemption")]
    UnknownEntry,
    #[error("only a redemption can be voided")]
    NotARedemption,
    #[error("the redemption was made by another device")]
    OtherDevice,
    #[error("the void names another voucher than the redemption")]
    OtherVoucher,
    #[error("the redemption was not accepted, so there is nothing to undo")]
    NotAccepted,
    #[error("already voided")]
    AlreadyVoided,
}

/// A void is allowed only for an existing, accepted redemption of the same device and voucher,
/// once: it can never let one device undo (and so take over) another device's redemption.
pub fn check_void(
    target: Option<&VoidTarget<'_>>,
    device: &str,
    voucher_id: &VoucherId,
) -> Result<(), VoidRefusal> {
    let t = target.ok_or(VoidRefusal::UnknownEntry)?;
    if !t.is_redemption {
        return Err(VoidRefusal::NotARedemption);
    }
    if t.device != device {
        return Err(VoidRefusal::OtherDevice);
    }
    if t.voucher_id != voucher_id {
        return Err(VoidRefusal::OtherVoucher);
    }
    if !t.accepted {
        return Err(VoidRefusal::NotAccepted);
    }
    if t.voided {
        return Err(VoidRefusal::AlreadyVoided);
    }
    Ok(())
}
