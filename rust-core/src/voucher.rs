//! The voucher model and its CWT claims (RFC 8392) mapping.
//!
//! Claims: `1 iss`, `3 aud` (optional), `4 exp`, `5 nbf` (optional), `6 iat`, `7 cti`
//! (16 bytes), and the private claim `-65537` holding the voucher map. See
//! `docs/voucher-format.md` for the normative description.

use coset::cbor::value::Value;
use coset::cwt::{ClaimName, ClaimsSet, Timestamp};
use coset::iana::EnumI64;
use serde::{Deserialize, Serialize};

use crate::error::{ClaimsError, VerifyError};

/// The private CWT claim that holds the voucher map.
pub const VOUCHER_CLAIM: i64 = -65537;
/// The largest amount (minor units) or item quantity a voucher carries: 2^63 - 1, so every
/// value fits a signed 64-bit integer in every database and language that stores it.
pub const MAX_AMOUNT: u64 = i64::MAX as u64;

/// The only voucher map version this build reads and writes.
pub const VERSION: u64 = 1;

/// A 16-byte voucher id (the CWT `cti`). Shown as lower-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VoucherId(pub [u8; 16]);

impl VoucherId {
    /// A fresh random id from the operating system's generator.
    pub fn random() -> Result<Self, crate::error::KeyError> {
        let mut b = [0u8; 16];
        getrandom::getrandom(&mut b).map_err(|_| crate::error::KeyError::Rng)?;
        Ok(VoucherId(b))
    }
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parse 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(VoucherId(v.try_into().ok()?))
    }
}

impl std::fmt::Debug for VoucherId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VoucherId({})", self.to_hex())
    }
}
impl std::fmt::Display for VoucherId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl Serialize for VoucherId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}
impl<'de> Deserialize<'de> for VoucherId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        VoucherId::from_hex(&s).ok_or_else(|| serde::de::Error::custom("voucher id: 32 hex digits"))
    }
}

/// How a voucher may be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionRule {
    /// Used once, whole (wire value 0).
    #[default]
    Single,
    /// Drawn down over several visits until exhausted (wire value 1).
    Partial,
}

/// The person the voucher is for. `id` is pseudonymous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beneficiary {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A cash value in minor units of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub amount: u64,
    pub currency: String,
}

/// An in-kind entitlement line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub code: String,
    pub quantity: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A decoded, structurally valid voucher (signature checking is `verify`'s job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voucher {
    /// Issuer (CWT `iss`).
    pub iss: String,
    /// The one service provider allowed to redeem (CWT `aud`), if restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not valid before (defaults to `iat` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at: not valid at or after this second.
    pub exp: i64,
    /// Voucher id (CWT `cti`).
    pub id: VoucherId,
    pub program: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<String>,
    pub beneficiary: Beneficiary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Amount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(default)]
    pub rule: RedemptionRule,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl Voucher {
    /// First second at which the voucher is valid.
    pub fn valid_from(&self) -> i64 {
        self.nbf.unwrap_or(self.iat)
    }

    /// Check every rule the decoder enforces, so that nothing is signed that cannot be read.
    pub fn validate(&self) -> Result<(), ClaimsError> {
        non_empty(&self.iss, "iss")?;
        if let Some(aud) = &self.aud {
            non_empty(aud, "aud")?;
        }
        if self.exp <= self.valid_from() {
            return Err(ClaimsError::Invalid("exp", "not after nbf/iat"));
        }
        non_empty(&self.program, "program")?;
        if let Some(c) = &self.cycle {
            non_empty(c, "cycle")?;
        }
        non_empty(&self.beneficiary.id, "beneficiary.id")?;
        if self.value.is_none() && self.items.is_empty() {
            return Err(ClaimsError::NoEntitlement);
        }
        if let Some(v) = &self.value {
            if v.amount == 0 {
                return Err(ClaimsError::Invalid("value.amount", "zero"));
            }
            if v.amount > MAX_AMOUNT {
                return Err(ClaimsError::Invalid("value.amount", "over 2^63 - 1"));
            }
            if !(v.currency.len() == 3 && v.currency.bytes().all(|b| b.is_ascii_uppercase())) {
                return Err(ClaimsError::Invalid(
                    "value.currency",
                    "not an ISO 4217 code",
                ));
            }
        }
        for it in &self.items {
            non_empty(&it.code, "items.code")?;
            if it.quantity == 0 {
                return Err(ClaimsError::Invalid("items.quantity", "zero"));
            }
            if it.quantity > MAX_AMOUNT {
                return Err(ClaimsError::Invalid("items.quantity", "over 2^63 - 1"));
            }
        }
        let mut codes: Vec<&str> = self.items.iter().map(|i| i.code.as_str()).collect();
        codes.sort_unstable();
        if codes.windows(2).any(|w| w[0] == w[1]) {
            return Err(ClaimsError::Invalid("items", "item code listed twice"));
        }
        for c in &self.categories {
            non_empty(c, "categories")?;
        }
        Ok(())
    }

    /// The CWT claims set for this voucher.
    pub fn to_claims(&self) -> ClaimsSet {
        let mut m: Vec<(Value, Value)> =
            vec![(int(1), int(VERSION as i64)), (int(2), text(&self.program))];
        if let Some(c) = &self.cycle {
            m.push((int(3), text(c)));
        }
        let mut b = vec![(int(1), text(&self.beneficiary.id))];
        if let Some(n) = &self.beneficiary.name {
            b.push((int(2), text(n)));
        }
        m.push((int(4), Value::Map(b)));
        if let Some(v) = &self.value {
            m.push((
                int(5),
                Value::Map(vec![
                    (int(1), Value::Integer(v.amount.into())),
                    (int(2), text(&v.currency)),
                ]),
            ));
        }
        if !self.items.is_empty() {
            let items = self
                .items
                .iter()
                .map(|it| {
                    let mut e = vec![
                        (int(1), text(&it.code)),
                        (int(2), Value::Integer(it.quantity.into())),
                    ];
                    if let Some(u) = &it.unit {
                        e.push((int(3), text(u)));
                    }
                    if let Some(d) = &it.description {
                        e.push((int(4), text(d)));
                    }
                    Value::Map(e)
                })
                .collect();
            m.push((int(6), Value::Array(items)));
        }
        m.push((
            int(7),
            int(match self.rule {
                RedemptionRule::Single => 0,
                RedemptionRule::Partial => 1,
            }),
        ));
        if !self.categories.is_empty() {
            m.push((
                int(9),
                Value::Array(self.categories.iter().map(|c| text(c)).collect()),
            ));
        }
        ClaimsSet {
            issuer: Some(self.iss.clone()),
            subject: None,
            audience: self.aud.clone(),
            expiration_time: Some(Timestamp::WholeSeconds(self.exp)),
            not_before: self.nbf.map(Timestamp::WholeSeconds),
            issued_at: Some(Timestamp::WholeSeconds(self.iat)),
            cwt_id: Some(self.id.0.to_vec()),
            rest: vec![(ClaimName::PrivateUse(VOUCHER_CLAIM), Value::Map(m))],
        }
    }

    /// Read a voucher from CWT claims, enforcing every rule in the format description.
    pub fn from_claims(c: ClaimsSet) -> Result<Self, ClaimsError> {
        let iss = c.issuer.ok_or(ClaimsError::Missing("iss"))?;
        let exp = seconds(c.expiration_time, "exp")?.ok_or(ClaimsError::Missing("exp"))?;
        let iat = seconds(c.issued_at, "iat")?.ok_or(ClaimsError::Missing("iat"))?;
        let nbf = seconds(c.not_before, "nbf")?;
        let cti = c.cwt_id.ok_or(ClaimsError::Missing("cti"))?;
        let id = VoucherId(
            cti.try_into()
                .map_err(|_| ClaimsError::Invalid("cti", "not 16 bytes"))?,
        );
        let mut private = None;
        for (name, value) in c.rest {
            if name == ClaimName::PrivateUse(VOUCHER_CLAIM) {
                if private.is_some() {
                    return Err(ClaimsError::DuplicateKey("-65537"));
                }
                private = Some(value);
            }
        }
        let map = as_map(private.ok_or(ClaimsError::Missing("-65537"))?, "-65537")?;
        let mut f = Fields::new(map, "-65537")?;
        let version = f
            .take(1)
            .map(|v| as_uint(v, "version"))
            .transpose()?
            .ok_or(ClaimsError::Missing("version"))?;
        if version != VERSION {
            return Err(ClaimsError::UnsupportedVersion(version));
        }
        let program = as_text(f.take(2).ok_or(ClaimsError::Missing("program"))?, "program")?;
        let cycle = f.take(3).map(|v| as_text(v, "cycle")).transpose()?;
        let mut bf = Fields::new(
            as_map(
                f.take(4).ok_or(ClaimsError::Missing("beneficiary"))?,
                "beneficiary",
            )?,
            "beneficiary",
        )?;
        let beneficiary = Beneficiary {
            id: as_text(
                bf.take(1).ok_or(ClaimsError::Missing("beneficiary.id"))?,
                "beneficiary.id",
            )?,
            name: bf
                .take(2)
                .map(|v| as_text(v, "beneficiary.name"))
                .transpose()?,
        };
        let value = match f.take(5) {
            None => None,
            Some(v) => {
                let mut vf = Fields::new(as_map(v, "value")?, "value")?;
                Some(Amount {
                    amount: as_uint(
                        vf.take(1).ok_or(ClaimsError::Missing("value.amount"))?,
                        "value.amount",
                    )?,
                    currency: as_text(
                        vf.take(2).ok_or(ClaimsError::Missing("value.currency"))?,
                        "value.currency",
                    )?,
                })
            }
        };
        let items = match f.take(6) {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                if a.is_empty() {
                    return Err(ClaimsError::Invalid("items", "empty list"));
                }
                a.into_iter()
                    .map(|e| {
                        let mut itf = Fields::new(as_map(e, "items")?, "items")?;
                        Ok(Item {
                            code: as_text(
                                itf.take(1).ok_or(ClaimsError::Missing("items.code"))?,
                                "items.code",
                            )?,
                            quantity: as_uint(
                                itf.take(2).ok_or(ClaimsError::Missing("items.quantity"))?,
                                "items.quantity",
                            )?,
                            unit: itf.take(3).map(|v| as_text(v, "items.unit")).transpose()?,
                            description: itf
                                .take(4)
                                .map(|v| as_text(v, "items.description"))
                                .transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>, ClaimsError>>()?
            }
            Some(_) => return Err(ClaimsError::WrongType("items")),
        };
        let rule = match f.take(7).map(|v| as_uint(v, "rule")).transpose()? {
            None | Some(0) => RedemptionRule::Single,
            Some(1) => RedemptionRule::Partial,
            Some(_) => return Err(ClaimsError::Invalid("rule", "unknown redemption rule")),
        };
        let categories = match f.take(9) {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|v| as_text(v, "categories"))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ClaimsError::WrongType("categories")),
        };
        let v = Voucher {
            iss,
            aud: c.audience,
            iat,
            nbf,
            exp,
            id,
            program,
            cycle,
            beneficiary,
            value,
            items,
            rule,
            categories,
        };
        v.validate()?;
        Ok(v)
    }
}

/// Builds a [`Voucher`], checking it with [`Voucher::validate`].
#[derive(Debug, Clone)]
pub struct VoucherBuilder(Voucher);

impl VoucherBuilder {
    /// A voucher for `beneficiary_id` in `program`, issued by `iss`. Set value or items,
    /// validity and (unless a random one is wanted) the id before [`build`](Self::build).
    pub fn new(iss: &str, program: &str, beneficiary_id: &str) -> Self {
        VoucherBuilder(Voucher {
            iss: iss.to_owned(),
            aud: None,
            iat: 0,
            nbf: None,
            exp: 0,
            id: VoucherId([0; 16]),
            program: program.to_owned(),
            cycle: None,
            beneficiary: Beneficiary {
                id: beneficiary_id.to_owned(),
                name: None,
            },
            value: None,
            items: Vec::new(),
            rule: RedemptionRule::Single,
            categories: Vec::new(),
        })
    }
    pub fn name(mut self, name: &str) -> Self {
        self.0.beneficiary.name = Some(name.to_owned());
        self
    }
    pub fn value(mut self, amount: u64, currency: &str) -> Self {
        self.0.value = Some(Amount {
            amount,
            currency: currency.to_owned(),
        });
        self
    }
    pub fn item(mut self, code: &str, quantity: u64, unit: Option<&str>) -> Self {
        self.0.items.push(Item {
            code: code.to_owned(),
            quantity,
            unit: unit.map(str::to_owned),
            description: None,
        });
        self
    }
    pub fn item_full(mut self, item: Item) -> Self {
        self.0.items.push(item);
        self
    }
    pub fn audience(mut self, provider: &str) -> Self {
        self.0.aud = Some(provider.to_owned());
        self
    }
    pub fn cycle(mut self, cycle: &str) -> Self {
        self.0.cycle = Some(cycle.to_owned());
        self
    }
    pub fn partial(mut self) -> Self {
        self.0.rule = RedemptionRule::Partial;
        self
    }
    pub fn category(mut self, c: &str) -> Self {
        self.0.categories.push(c.to_owned());
        self
    }
    /// Issued at and valid from `from` (no separate `nbf`), until `until` (exclusive).
    pub fn validity(mut self, from: i64, until: i64) -> Self {
        self.0.iat = from;
        self.0.nbf = None;
        self.0.exp = until;
        self
    }
    /// Issued at `iat`, valid from `nbf` until `exp`.
    pub fn times(mut self, iat: i64, nbf: Option<i64>, exp: i64) -> Self {
        self.0.iat = iat;
        self.0.nbf = nbf;
        self.0.exp = exp;
        self
    }
    pub fn id(mut self, id: VoucherId) -> Self {
        self.0.id = id;
        self
    }
    pub fn build(self) -> Result<Voucher, ClaimsError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}
fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}
fn non_empty(s: &str, claim: &'static str) -> Result<(), ClaimsError> {
    if s.is_empty() {
        Err(ClaimsError::Invalid(claim, "empty"))
    } else {
        Ok(())
    }
}
fn seconds(t: Option<Timestamp>, claim: &'static str) -> Result<Option<i64>, ClaimsError> {
    match t {
        None => Ok(None),
        Some(Timestamp::WholeSeconds(s)) => Ok(Some(s)),
        Some(Timestamp::FractionalSeconds(_)) => Err(ClaimsError::WrongType(claim)),
    }
}
fn as_text(v: Value, claim: &'static str) -> Result<String, ClaimsError> {
    match v {
        Value::Text(s) => Ok(s),
        _ => Err(ClaimsError::WrongType(claim)),
    }
}
fn as_uint(v: Value, claim: &'static str) -> Result<u64, ClaimsError> {
    match v {
        Value::Integer(i) => u64::try_from(i).map_err(|_| ClaimsError::WrongType(claim)),
        _ => Err(ClaimsError::WrongType(claim)),
    }
}
fn as_map(v: Value, claim: &'static str) -> Result<Vec<(Value, Value)>, ClaimsError> {
    match v {
        Value::Map(m) => Ok(m),
        _ => Err(ClaimsError::WrongType(claim)),
    }
}

/// The integer-keyed entries of a CBOR map. Duplicate keys are refused; keys that are not
/// small integers, or that this version does not know, are ignored (forward compatible).
struct Fields(Vec<(i64, Value)>);

impl Fields {
    fn new(m: Vec<(Value, Value)>, claim: &'static str) -> Result<Self, ClaimsError> {
        let mut out: Vec<(i64, Value)> = Vec::with_capacity(m.len());
        let mut others: Vec<Value> = Vec::new();
        for (k, v) in m {
            match &k {
                Value::Integer(i) => {
                    let Ok(key) = i64::try_from(*i) else {
                        others.push(k);
                        continue;
                    };
                    if out.iter().any(|(e, _)| *e == key) {
                        return Err(ClaimsError::DuplicateKey(claim));
                    }
                    out.push((key, v));
                }
                _ => {
                    if others.contains(&k) {
                        return Err(ClaimsError::DuplicateKey(claim));
                    }
                    others.push(k);
                }
            }
        }
        Ok(Fields(out))
    }
    fn take(&mut self, key: i64) -> Option<Value> {
        let pos = self.0.iter().position(|(k, _)| *k == key)?;
        Some(self.0.swap_remove(pos).1)
    }
}

/// Convenience for the name of a CWT claim (used by `inspect`).
pub fn claim_label(name: &ClaimName) -> String {
    match name {
        ClaimName::Assigned(a) => format!("{}", a.to_i64()),
        ClaimName::PrivateUse(p) => p.to_string(),
        ClaimName::Text(t) => t.clone(),
    }
}

/// Decimal places of an ISO 4217 currency's minor unit (2 unless listed).
pub fn currency_exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `2500, "KES"` → `"25.00 KES"`.
pub fn format_amount(amount: u64, currency: &str) -> String {
    let e = currency_exponent(currency);
    if e == 0 {
        return format!("{amount} {currency}");
    }
    let div = 10u64.pow(e);
    format!(
        "{}.{:0width$} {currency}",
        amount / div,
        amount % div,
        width = e as usize
    )
}

/// The time stages alone: not yet valid, expired.
pub fn check_time(v: &Voucher, now: i64) -> Result<(), VerifyError> {
    if now < v.valid_from() {
        return Err(VerifyError::NotYetValid {
            nbf: v.valid_from(),
            now,
        });
    }
    if now >= v.exp {
        return Err(VerifyError::Expired { exp: v.exp, now });
    }
    Ok(())
}

impl Voucher {
    /// [`check_time`] for this voucher.
    pub fn check_time(&self, now: i64) -> Result<(), VerifyError> {
        check_time(self, now)
    }
}
