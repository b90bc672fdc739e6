//! Signed payables: what a program owes a service provider after a reimbursement claim was
//! approved, signed so that a payment switch can check that the account-payable document it
//! was handed says what the program approved.
//!
//! The machinery of vouchers with its own names, so that the two can never be taken for each
//! other: the text is `EP1:` + Base45(zlib(COSE_Sign1)); the COSE protected header holds
//! `alg` = EdDSA, the `kid` and the content type `application/evoucher-payable+cbor` (checked
//! before the signature); the key is a program's *payables* key, published in its own JWKS
//! with `"evoucher_use": "payable"` (a voucher trust store skips such keys, and a payables trust
//! store takes no other). The payload is a CBOR map with text keys, every one required or
//! refused as unknown, no key twice, no trailing bytes (see docs/payable-format.md).

use std::collections::BTreeMap;

use coset::cbor::value::Value;
use coset::{iana, CborSerializable, HeaderBuilder};
use ed25519_dalek::VerifyingKey;

use crate::error::VerifyError;
use crate::keys::{IssuerKey, Jwk, Jwks, Kid, TrustedKey};
use crate::text;

/// The prefix of payable format v1 (any letter case is accepted).
pub const PREFIX: &str = "EP1:";
/// The content type in the protected header.
pub const CONTENT_TYPE: &str = "application/evoucher-payable+cbor";
/// The value of the JWK member `evoucher_use` that marks a payables key.
pub const KEY_USE: &str = "payable";
/// Texts longer than this are refused before decoding.
pub const MAX_TEXT_LEN: usize = 4096;

/// Where a provider is paid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Account {
    /// A bank account: the holder, the account number or IBAN, the bank and its code or BIC.
    Bank {
        holder: String,
        number: String,
        bank: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bic: Option<String>,
    },
    /// A mobile money wallet: the holder, the phone number (E.164) and the operator.
    Mobile {
        holder: String,
        msisdn: String,
        operator: String,
    },
}

impl Account {
    pub fn holder(&self) -> &str {
        match self {
            Account::Bank { holder, .. } | Account::Mobile { holder, .. } => holder,
        }
    }

    /// Check the fields: present, printable, of a sensible length.
    pub fn check(&self) -> Result<(), String> {
        let field = |name: &str, v: &str, max: usize| {
            if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
                Err(format!("{name}: 1 to {max} printable characters"))
            } else {
                Ok(())
            }
        };
        match self {
            Account::Bank {
                holder,
                number,
                bank,
                bic,
            } => {
                field("holder", holder, 70)?;
                field("number", number, 34)?;
                field("bank", bank, 70)?;
                if let Some(b) = bic {
                    let ok = (b.len() == 8 || b.len() == 11)
                        && b.bytes()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                    if !ok {
                        return Err("bic: 8 or 11 letters and digits".into());
                    }
                }
                Ok(())
            }
            Account::Mobile {
                holder,
                msisdn,
                operator,
            } => {
                field("holder", holder, 70)?;
                field("operator", operator, 35)?;
                let digits = msisdn.strip_prefix('+').unwrap_or(msisdn);
                if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|c| c.is_ascii_digit())
                {
                    return Err("msisdn: + and 8 to 15 digits".into());
                }
                Ok(())
            }
        }
    }
}

/// One approval of the claim behind a payable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    /// The stage (1, 2, …).
    pub stage: u32,
    /// The role that approved it (`accountant`, `cash_manager`, …).
    pub role: String,
    /// The approver's account name.
    pub by: String,
    /// When, seconds since the epoch.
    pub at: i64,
}

/// What a program owes a provider for one approved claim.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payable {
    /// The payable's id (`PAY-…`).
    pub id: String,
    /// The claim it pays (`CLM-…`).
    pub claim: String,
    pub program: String,
    /// The provider's id and name.
    pub payee: String,
    pub payee_name: String,
    pub account: Account,
    /// Minor units of `currency`.
    pub amount: u64,
    pub currency: String,
    /// Number of redemptions reimbursed.
    pub redemptions: u64,
    /// The period the redemptions were made in, seconds since the epoch.
    pub from: i64,
    pub to: i64,
    pub approvals: Vec<Approval>,
    /// SHA-256 over the supporting documents' SHA-256 digests, sorted (hex).
    pub documents: String,
    /// When the payable was made.
    pub issued_at: i64,
}

/// Why a payable text is refused; the stage that refused it is [`PayableError::stage`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayableError {
    #[error("input: {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("prefix: not a payable (it does not start with EP1:)")]
    Prefix,
    #[error("{0}")]
    Layer(VerifyError),
    #[error("content type: not a payable ({0})")]
    ContentType(String),
    #[error("kid: {0}")]
    Kid(String),
    #[error("payload: {0}")]
    Payload(String),
}

impl PayableError {
    /// The stage's stable name: input, prefix, base45, zlib, cose, alg, kid, content_type,
    /// signature, payload.
    pub fn stage(&self) -> &'static str {
        match self {
            PayableError::TooLarge { .. } => "input",
            PayableError::Prefix => "prefix",
            PayableError::Layer(e) => e.stage().as_str(),
            PayableError::ContentType(_) => "content_type",
            PayableError::Kid(_) => "kid",
            PayableError::Payload(_) => "payload",
        }
    }
}

impl From<VerifyError> for PayableError {
    fn from(e: VerifyError) -> Self {
        PayableError::Layer(e)
    }
}

/// A program's payables key, marked for payables in its JWK.
pub fn payables_jwk(key: &IssuerKey) -> Jwk {
    let mut j = key.public_jwk();
    j.evoucher_use = Some(KEY_USE.into());
    j
}

/// The keys a payment switch trusts for payables.
#[derive(Debug, Clone, Default)]
pub struct PayableTrust {
    keys: BTreeMap<Kid, VerifyingKey>,
    /// Keys of the JWKS not loaded, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl PayableTrust {
    pub fn from_keys(keys: impl IntoIterator<Item = TrustedKey>) -> Self {
        PayableTrust {
            keys: keys.into_iter().map(|k| (k.kid, k.key)).collect(),
            skipped: Vec::new(),
        }
    }

    /// Read a JWKS: only Ed25519 keys marked `"evoucher_use": "payable"` are loaded; the
    /// others are skipped with the reason. Refused: not JSON, a private key, no usable key.
    pub fn from_jwks_json(json: &str) -> Result<Self, String> {
        let jwks: Jwks = serde_json::from_str(json).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut t = PayableTrust::default();
        for jwk in &jwks.keys {
            if jwk.d.is_some() {
                return Err("the JWKS holds a private key".into());
            }
            let name = jwk.kid.clone().unwrap_or_else(|| "(no kid)".into());
            if jwk.evoucher_use.as_deref() != Some(KEY_USE) {
                t.skipped.push((
                    name,
                    "not a payables key (evoucher_use is not \"payable\")".into(),
                ));
                continue;
            }
            match TrustedKey::from_jwk(jwk) {
                Ok(k) => {
                    t.keys.insert(k.kid, k.key);
                }
                Err(e) => t.skipped.push((name, e.to_string())),
            }
        }
        if t.keys.is_empty() {
            return Err(format!(
                "no payables key in the JWKS ({})",
                t.skipped
                    .iter()
                    .map(|(k, r)| format!("{k}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        Ok(t)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn text_of(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn int(v: i64) -> Value {
    Value::Integer(v.into())
}

impl Payable {
    /// Check what a signer must not sign.
    pub fn check(&self) -> Result<(), String> {
        let id = |name: &str, v: &str| {
            if v.is_empty() || v.len() > 64 || v.chars().any(char::is_control) {
                Err(format!("{name}: 1 to 64 printable characters"))
            } else {
                Ok(())
            }
        };
        id("id", &self.id)?;
        id("claim", &self.claim)?;
        id("program", &self.program)?;
        id("payee", &self.payee)?;
        if self.payee_name.trim().is_empty() || self.payee_name.chars().count() > 140 {
            return Err("payee_name: 1 to 140 characters".into());
        }
        self.account.check()?;
        if self.amount == 0 || self.amount > crate::voucher::MAX_AMOUNT {
            return Err("amount: 1 to 2^63 - 1 minor units".into());
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err("currency: an ISO 4217 code".into());
        }
        if self.from > self.to {
            return Err("period: from is after to".into());
        }
        if self.approvals.is_empty() {
            return Err("approvals: at least one".into());
        }
        if !(self.documents.len() == 64 && self.documents.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err("documents: a SHA-256 in hex".into());
        }
        Ok(())
    }

    /// The CBOR payload (map keys in this fixed order).
    pub fn to_cbor(&self) -> Result<Vec<u8>, String> {
        let account = match &self.account {
            Account::Bank {
                holder,
                number,
                bank,
                bic,
            } => {
                let mut m = vec![
                    (text_of("kind"), text_of("bank")),
                    (text_of("holder"), text_of(holder)),
                    (text_of("number"), text_of(number)),
                    (text_of("bank"), text_of(bank)),
                ];
                if let Some(b) = bic {
                    m.push((text_of("bic"), text_of(b)));
                }
                Value::Map(m)
            }
            Account::Mobile {
                holder,
                msisdn,
                operator,
            } => Value::Map(vec![
                (text_of("kind"), text_of("mobile")),
                (text_of("holder"), text_of(holder)),
                (text_of("msisdn"), text_of(msisdn)),
                (text_of("operator"), text_of(operator)),
            ]),
        };
        let approvals = Value::Array(
            self.approvals
                .iter()
                .map(|a| {
                    Value::Array(vec![
                        int(i64::from(a.stage)),
                        text_of(&a.role),
                        text_of(&a.by),
                        int(a.at),
                    ])
                })
                .collect(),
        );
        let amount = i64::try_from(self.amount).map_err(|_| "amount over 2^63 - 1")?;
        let map = Value::Map(vec![
            (text_of("id"), text_of(&self.id)),
            (text_of("claim"), text_of(&self.claim)),
            (text_of("program"), text_of(&self.program)),
            (text_of("payee"), text_of(&self.payee)),
            (text_of("payee_name"), text_of(&self.payee_name)),
            (text_of("account"), account),
            (text_of("amount"), int(amount)),
            (text_of("currency"), text_of(&self.currency)),
            (text_of("redemptions"), int(self.redemptions as i64)),
            (text_of("from"), int(self.from)),
            (text_of("to"), int(self.to)),
            (text_of("approvals"), approvals),
            (text_of("documents"), text_of(&self.documents)),
            (text_of("iat"), int(self.issued_at)),
        ]);
        map.to_vec().map_err(|e| e.to_string())
    }

    /// Read the CBOR payload strictly.
    pub fn from_cbor(bytes: &[u8]) -> Result<Payable, PayableError> {
        let bad = |m: &str| PayableError::Payload(m.to_owned());
        let v = Value::from_slice(bytes).map_err(|_| bad("not one CBOR item"))?;
        let Value::Map(entries) = v else {
            return Err(bad("not a map"));
        };
        let mut m = Fields::new(entries, "payable")?;
        let account = {
            let Some(Value::Map(a)) = m.take("account") else {
                return Err(bad("account: a map is required"));
            };
            let mut a = Fields::new(a, "account")?;
            let kind = a.text("kind")?;
            let acc = match kind.as_str() {
                "bank" => Account::Bank {
                    holder: a.text("holder")?,
                    number: a.text("number")?,
                    bank: a.text("bank")?,
                    bic: a.opt_text("bic")?,
                },
                "mobile" => Account::Mobile {
                    holder: a.text("holder")?,
                    msisdn: a.text("msisdn")?,
                    operator: a.text("operator")?,
                },
                _ => return Err(bad("account.kind: bank or mobile")),
            };
            a.done()?;
            acc
        };
        let approvals = match m.take("approvals") {
            Some(Value::Array(list)) => list
                .into_iter()
                .map(|x| match x {
                    Value::Array(a) => match a.as_slice() {
                        [Value::Integer(stage), Value::Text(role), Value::Text(by), Value::Integer(at)] => {
                            Ok(Approval {
                                stage: u32::try_from(i128::from(*stage))
                                    .map_err(|_| bad("approvals: stage"))?,
                                role: role.clone(),
                                by: by.clone(),
                                at: i64::try_from(i128::from(*at))
                                    .map_err(|_| bad("approvals: time"))?,
                            })
                        }
                        _ => Err(bad("approvals: [stage, role, by, at] each")),
                    },
                    _ => Err(bad("approvals: [stage, role, by, at] each")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(bad("approvals: an array is required")),
        };
        let amount = m.int("amount")?;
        let p = Payable {
            id: m.text("id")?,
            claim: m.text("claim")?,
            program: m.text("program")?,
            payee: m.text("payee")?,
            payee_name: m.text("payee_name")?,
            account,
            amount: u64::try_from(amount).map_err(|_| bad("amount: negative"))?,
            currency: m.text("currency")?,
            redemptions: u64::try_from(m.int("redemptions")?)
                .map_err(|_| bad("redemptions: negative"))?,
            from: m.int("from")?,
            to: m.int("to")?,
            approvals,
            documents: m.text("documents")?,
            issued_at: m.int("iat")?,
        };
        m.done()?;
        p.check().map_err(PayableError::Payload)?;
        Ok(p)
    }
}

/// The members of a CBOR map with text keys: each taken once; what is left is refused.
struct Fields {
    map: BTreeMap<String, Value>,
    what: &'static str,
}

impl Fields {
    fn new(entries: Vec<(Value, Value)>, what: &'static str) -> Result<Fields, PayableError> {
        let mut map = BTreeMap::new();
        for (k, v) in entries {
            let Value::Text(k) = k else {
                return Err(PayableError::Payload(format!("{what}: a key is not text")));
            };
            if map.insert(k.clone(), v).is_some() {
                return Err(PayableError::Payload(format!("{what}: key {k:?} twice")));
            }
        }
        Ok(Fields { map, what })
    }

    fn take(&mut self, k: &str) -> Option<Value> {
        self.map.remove(k)
    }

    fn text(&mut self, k: &str) -> Result<String, PayableError> {
        match self.map.remove(k) {
            Some(Value::Text(s)) => Ok(s),
            _ => Err(PayableError::Payload(format!(
                "{}.{k}: text is required",
                self.what
            ))),
        }
    }

    fn opt_text(&mut self, k: &str) -> Result<Option<String>, PayableError> {
        match self.map.remove(k) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s)),
            Some(_) => Err(PayableError::Payload(format!("{}.{k}: text", self.what))),
        }
    }

    fn int(&mut self, k: &str) -> Result<i64, PayableError> {
        match self.map.remove(k) {
            Some(Value::Integer(i)) => i64::try_from(i128::from(i))
                .map_err(|_| PayableError::Payload(format!("{}.{k}: out of range", self.what))),
            _ => Err(PayableError::Payload(format!(
                "{}.{k}: an integer is required",
                self.what
            ))),
        }
    }

    fn done(self) -> Result<(), PayableError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(PayableError::Payload(format!(
                "{}: unknown key {k:?}",
                self.what
            ))),
        }
    }
}

/// Every stage of a signed payable.
#[derive(Debug, Clone)]
pub struct EncodedPayable {
    pub payload: Vec<u8>,
    pub cose: Vec<u8>,
    pub text: String,
}

/// Sign a payable with a program's payables key.
pub fn sign(p: &Payable, key: &IssuerKey) -> Result<EncodedPayable, String> {
    p.check()?;
    let payload = p.to_cbor()?;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(key.kid().0.to_vec())
        .content_type(CONTENT_TYPE.to_owned())
        .build();
    let cose = crate::cose::sign1_ed25519(
        protected,
        coset::Header::default(),
        payload.clone(),
        b"",
        key,
    )
    .map_err(|e| e.to_string())?;
    let text = format!("{PREFIX}{}", text::base45_encode(&text::compress(&cose)));
    if text.len() > MAX_TEXT_LEN {
        return Err(format!(
            "the signed payable is {} bytes, over {MAX_TEXT_LEN}",
            text.len()
        ));
    }
    Ok(EncodedPayable {
        payload,
        cose,
        text,
    })
}

/// Verify a payable text: prefix, Base45, zlib, COSE, `alg`, `kid`, content type, then the
/// signature, then the payload. Returns the payable and the kid that signed it.
pub fn verify(input: &str, trust: &PayableTrust) -> Result<(Payable, Kid), PayableError> {
    if input.len() > MAX_TEXT_LEN {
        return Err(PayableError::TooLarge {
            len: input.len(),
            max: MAX_TEXT_LEN,
        });
    }
    let body = match input.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => &input[PREFIX.len()..],
        _ => return Err(PayableError::Prefix),
    };
    let bytes = text::base45_decode(body)?;
    let (cose, _) = text::decompress(&bytes)?;
    let sign1 = crate::cose::decode_sign1(&cose)?;
    let kid = crate::cose::voucher_kid(&sign1)?;
    match &sign1.protected.header.content_type {
        Some(coset::ContentType::Text(t)) if t == CONTENT_TYPE => {}
        Some(other) => return Err(PayableError::ContentType(format!("{other:?}"))),
        None => return Err(PayableError::ContentType("none".into())),
    }
    if sign1.unprotected.content_type.is_some() {
        return Err(PayableError::ContentType(
            "a content type in the unprotected header".into(),
        ));
    }
    let kid: [u8; 8] = kid
        .try_into()
        .map_err(|_| PayableError::Kid("not 8 bytes".into()))?;
    let kid = Kid(kid);
    let key = trust.keys.get(&kid).ok_or_else(|| {
        PayableError::Kid(format!("{} is not a trusted payables key", kid.to_b64()))
    })?;
    crate::cose::verify_ed25519(&sign1, key, b"")?;
    let payload = sign1.payload.unwrap_or_default();
    Ok((Payable::from_cbor(&payload)?, kid))
}

/// Whether a COSE_Sign1 says it is a payable (the voucher path refuses those).
pub fn is_payable(s: &coset::CoseSign1) -> bool {
    matches!(&s.protected.header.content_type, Some(coset::ContentType::Text(t)) if t == CONTENT_TYPE)
}

/// The fields an account-payable document prints, as (label, value), in order: what a person
/// and the verifier read. The writer and the verifier both use this list, so they agree by
/// construction. `Approved` repeats, one per approval.
pub fn printed(p: &Payable) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Payable", p.id.clone()),
        ("Claim", p.claim.clone()),
        ("Program", p.program.clone()),
        ("Payee", p.payee_name.clone()),
        ("Payee id", p.payee.clone()),
    ];
    match &p.account {
        Account::Bank {
            holder,
            number,
            bank,
            bic,
        } => {
            f.push(("Account holder", holder.clone()));
            f.push(("Account number", number.clone()));
            f.push(("Bank", bank.clone()));
            f.push(("BIC", bic.clone().unwrap_or_else(|| "-".into())));
        }
        Account::Mobile {
            holder,
            msisdn,
            operator,
        } => {
            f.push(("Account holder", holder.clone()));
            f.push(("Mobile number", msisdn.clone()));
            f.push(("Operator", operator.clone()));
        }
    }
    f.push((
        "Amount",
        crate::voucher::format_amount(p.amount, &p.currency),
    ));
    f.push(("Redemptions", p.redemptions.to_string()));
    f.push((
        "Period",
        format!(
            "{} to {}",
            crate::time::rfc3339(p.from),
            crate::time::rfc3339(p.to)
        ),
    ));
    for a in &p.approvals {
        f.push((
            "Approved",
            format!(
                "stage {} by {} ({}) at {}",
                a.stage,
                a.by,
                a.role,
                crate::time::rfc3339(a.at)
            ),
        ));
    }
    f.push(("Documents SHA-256", p.documents.clone()));
    f.push(("Issued", crate::time::rfc3339(p.issued_at)));
    f
}

/// The labels a payment switch pays on: a document that does not print them is refused.
pub const PAYMENT_FIELDS: [&str; 8] = [
    "Payee",
    "Account holder",
    "Account number",
    "Bank",
    "BIC",
    "Mobile number",
    "Operator",
    "Amount",
];

/// Something printed that does not say what was signed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub field: String,
    /// What the page says (None: not printed).
    pub printed: Option<String>,
    pub signed: String,
}

/// Compare the text of a document (its lines, as extracted) with what was signed: every
/// printed field must appear as `Label: value` with the signed value (spaces collapsed), and
/// every payment field must be printed.
pub fn compare(p: &Payable, lines: &[String]) -> Vec<Mismatch> {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<String> = lines.iter().map(|l| norm(l)).collect();
    // Every occurrence of each label, in order of the page.
    let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let fields = printed(p);
    let mut labels: Vec<&str> = fields.iter().map(|f| f.0).collect();
    labels.sort_by_key(|l| std::cmp::Reverse(l.len()));
    labels.dedup();
    for line in &lines {
        for label in &labels {
            if let Some(rest) = line.strip_prefix(label).and_then(|r| r.strip_prefix(':')) {
                seen.entry(label).or_default().push(rest.trim().to_owned());
                break;
            }
        }
    }
    let mut out = Vec::new();
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    for (label, value) in &fields {
        let i = taken.entry(label).or_insert(0);
        let printed = seen.get(label).and_then(|v| v.get(*i)).cloned();
        *i += 1;
        match &printed {
            Some(x) if *x == norm(value) => {}
            None if !PAYMENT_FIELDS.contains(label) => {}
            _ => out.push(Mismatch {
                field: (*label).to_owned(),
                printed,
                signed: value.clone(),
            }),
        }
    }
    // A field printed more often than it was signed (a second account number added).
    for (label, values) in &seen {
        let signed = fields.iter().filter(|f| f.0 == *label).count();
        for extra in values.iter().skip(signed) {
            out.push(Mismatch {
                field: (*label).to_owned(),
                printed: Some(extra.clone()),
                signed: "(printed more often than signed)".into(),
            });
        }
    }
    out
}
