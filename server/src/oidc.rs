//! Signing in through an organisation's identity provider (OpenID Connect: Keycloak in OpenG2P
//! deployments), with the evoucher role mapped from a claim.
//!
//! The authorization code flow with PKCE (S256), `state` and `nonce`, as a confidential client
//! (`client_secret_basic`). The provider is found through its discovery document; its keys
//! (JWKS) are fetched and cached, and fetched again when a token names a key not seen yet.
//! The ID token is checked here, not trusted because it came over TLS: `alg` RS256, PS256 or
//! ES256 only (never `none` or HMAC), the key by `kid`, the signature, then `iss`, `aud` (and
//! `azp` with several audiences), `exp`, `iat` and `nonce`.
//!
//! The person's role comes from a claim (a dotted path, e.g. `realm_access.roles` in Keycloak)
//! whose values are mapped to evoucher roles; exactly one must map, so one person is never
//! both an accountant and a cash manager. The account is made at the first sign-in (named by
//! `preferred_username`) and its role follows the provider at every sign-in (audited). An
//! account signed in this way has no password; disabling it in evoucher still stops it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use evoucher_core::jwt::{self, JwsAlg, JwtKey};
use evoucher_core::keys::Jwk;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::audit::{self, Actor, Event};
use crate::limits::ClientAddr;
use crate::secret::{hash_secret, random_token};
use crate::users::{self, Role, User};
use crate::{now, ApiError, AppState};

/// How long a sign-in may take at the identity provider.
pub const LOGIN_TTL: i64 = 600;
/// Clock difference tolerated with the identity provider.
pub const SKEW: i64 = 120;
/// Keys are fetched again after this long, or sooner when a token names an unknown key (at
/// most once a minute).
const KEYS_TTL: Duration = Duration::from_secs(600);
const KEYS_REFETCH: Duration = Duration::from_secs(60);

/// What the server is told about the identity provider (`evoucher serve --oidc-…`).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its tokens carry it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where the roles are in the ID token: a claim name or a dotted path.
    pub role_claim: String,
    /// Claim value → evoucher role. Empty: the claim's values are evoucher role names.
    pub roles: Vec<(String, Role)>,
    /// Where the programs a program role is limited to are, if anywhere.
    pub programs_claim: Option<String>,
    /// The sign-in button's text.
    pub label: String,
}

impl OidcConfig {
    /// Check the configuration before the server starts.
    pub fn check(&self) -> Result<(), String> {
        let (scheme, rest) = self
            .issuer
            .split_once("://")
            .ok_or("the OIDC issuer is a URL")?;
        let host = rest.split(['/', ':']).next().unwrap_or("");
        let loopback = host == "127.0.0.1" || host == "localhost" || host == "[::1]";
        if scheme != "https" && !(scheme == "http" && loopback) {
            return Err("the OIDC issuer must be https (http only on loopback, for tests)".into());
        }
        if self.client_id.is_empty() || self.client_secret.is_empty() {
            return Err("the OIDC client id and secret are required".into());
        }
        if self.roles.iter().any(|(_, r)| *r == Role::Provider) {
            return Err(
                "provider accounts are bound to a provider in evoucher: map OIDC roles to staff roles only"
                    .into(),
            );
        }
        Ok(())
    }

    /// Parse `VALUE=ROLE`.
    pub fn parse_role(s: &str) -> Result<(String, Role), String> {
        let (v, r) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("{s:?}: expected CLAIM-VALUE=ROLE"))?;
        let role =
            Role::parse(r.trim()).ok_or_else(|| format!("{s:?}: {r:?} is not an evoucher role"))?;
        Ok((v.trim().to_owned(), role))
    }
}

/// Why a sign-in through the identity provider failed. Shown to the person (without secrets);
/// the server logs the details.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached or answered wrongly ({0})")]
    Provider(String),
    #[error("the identity provider refused the sign-in ({0})")]
    Refused(String),
    #[error("this sign-in link is unknown, used or expired: start again")]
    State,
    #[error("the identity provider's token is not valid ({0})")]
    Token(&'static str),
    #[error("your identity provider gives you no evoucher role")]
    NoRole,
    #[error("your identity provider gives you several evoucher roles ({0}); one is needed")]
    SeveralRoles(String),
    #[error("the account name {0:?} is taken by another account, or not a valid name")]
    Name(String),
    #[error("this account is disabled")]
    Disabled,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for OidcError {
    fn from(e: sqlx::Error) -> Self {
        OidcError::Api(e.into())
    }
}

/// The parts of the discovery document used.
#[derive(Debug, Clone, serde::Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Keys {
    keys: Vec<JwtKey>,
    fetched: Instant,
}

/// The identity provider as the server knows it.
pub struct Oidc {
    pub config: OidcConfig,
    http: reqwest::Client,
    meta: tokio::sync::Mutex<Option<Metadata>>,
    keys: tokio::sync::Mutex<Option<Keys>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// What a valid ID token says about the person.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub sub: String,
    pub name: String,
    pub claims: serde_json::Value,
}

/// What an ID token must match.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: i64,
}

/// Check an ID token (compact JWS) against the provider's keys: alg and kid before the
/// signature, the signature before the claims are believed.
pub fn check_id_token(token: &str, keys: &[JwtKey], e: &Expect) -> Result<Person, OidcError> {
    if token.len() > 64 * 1024 {
        return Err(OidcError::Token("over 64 KiB"));
    }
    let (jws, h) = jwt::decode(token).map_err(|_| OidcError::Token("not a compact JWS"))?;
    let alg = match h.alg.as_str() {
        "RS256" => JwsAlg::Rs256,
        "PS256" => JwsAlg::Ps256,
        "ES256" => JwsAlg::Es256,
        _ => return Err(OidcError::Token("alg is not RS256, PS256 or ES256")),
    };
    if h.crit {
        return Err(OidcError::Token("crit header"));
    }
    let key = match &h.kid {
        Some(kid) => keys.iter().find(|k| &k.kid == kid),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
    .ok_or(OidcError::Token(
        "signed by a key the provider does not publish",
    ))?;
    let input = &token.as_bytes()[..jws.signing_input_len];
    if !jwt::verify_signature(alg, &key.kind, input, &jws.signature) {
        return Err(OidcError::Token("bad signature"));
    }
    let c = &jws.claims;
    if c["iss"].as_str() != Some(e.issuer) {
        return Err(OidcError::Token("iss is not the provider"));
    }
    let aud_ok = match &c["aud"] {
        serde_json::Value::String(a) => a == e.client_id,
        serde_json::Value::Array(a) => {
            a.iter().any(|x| x.as_str() == Some(e.client_id))
                && (a.len() == 1 || c["azp"].as_str() == Some(e.client_id))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(OidcError::Token("not for this client (aud, azp)"));
    }
    let exp = c["exp"].as_i64().ok_or(OidcError::Token("exp missing"))?;
    if exp + SKEW <= e.now {
        return Err(OidcError::Token("expired"));
    }
    let iat = c["iat"].as_i64().ok_or(OidcError::Token("iat missing"))?;
    if iat > e.now + SKEW || iat < e.now - 86_400 {
        return Err(OidcError::Token("iat is not now"));
    }
    match c["nonce"].as_str() {
        Some(n) if crate::secret::same_secret(n, e.nonce) => {}
        _ => return Err(OidcError::Token("nonce does not match this sign-in")),
    }
    let sub = c["sub"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or(OidcError::Token("sub missing"))?
        .to_owned();
    let name = c["preferred_username"]
        .as_str()
        .or_else(|| c["email"].as_str())
        .unwrap_or(&sub)
        .to_owned();
    Ok(Person {
        sub,
        name,
        claims: c.clone(),
    })
}

/// The strings at a dotted path of the claims (a string, or an array of strings).
pub fn claim_values(claims: &serde_json::Value, path: &str) -> Vec<String> {
    let mut v = claims;
    for part in path.split('.') {
        v = &v[part];
    }
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The one evoucher role the claims give.
pub fn role_of(config: &OidcConfig, claims: &serde_json::Value) -> Result<Role, OidcError> {
    let mut roles: Vec<Role> = claim_values(claims, &config.role_claim)
        .iter()
        .filter_map(|v| {
            if config.roles.is_empty() {
                Role::parse(v).filter(|r| *r != Role::Provider)
            } else {
                config.roles.iter().find(|(c, _)| c == v).map(|(_, r)| *r)
            }
        })
        .collect();
    roles.sort_by_key(|r| r.as_str());
    roles.dedup();
    match roles.as_slice() {
        [] => Err(OidcError::NoRole),
        [r] => Ok(*r),
        many => Err(OidcError::SeveralRoles(
            many.iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

fn b64_sha256(s: &str) -> String {
    B64.encode(Sha256::digest(s.as_bytes()))
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Arc<Oidc>, String> {
        config.check()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Arc::new(Oidc {
            config,
            http,
            meta: tokio::sync::Mutex::new(None),
            keys: tokio::sync::Mutex::new(None),
        }))
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, OidcError> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("GET {url}: {}", e.without_url())))?;
        if !r.status().is_success() {
            return Err(OidcError::Provider(format!("GET {url}: {}", r.status())));
        }
        r.json()
            .await
            .map_err(|_| OidcError::Provider(format!("GET {url}: not JSON")))
    }

    async fn metadata(&self) -> Result<Metadata, OidcError> {
        let mut m = self.meta.lock().await;
        if let Some(x) = &*m {
            return Ok(x.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let doc: Metadata = serde_json::from_value(self.get_json(&url).await?)
            .map_err(|_| OidcError::Provider("discovery document incomplete".into()))?;
        if doc.issuer != self.config.issuer {
            return Err(OidcError::Provider(format!(
                "the discovery document names issuer {:?}, not the configured one",
                doc.issuer
            )));
        }
        *m = Some(doc.clone());
        Ok(doc)
    }

    /// The provider's keys; fetched again when `kid` is not among them (at most once a minute).
    async fn keys(&self, kid: Option<&str>) -> Result<Vec<JwtKey>, OidcError> {
        let mut k = self.keys.lock().await;
        let stale = match &*k {
            None => true,
            Some(x) => {
                x.fetched.elapsed() > KEYS_TTL
                    || (kid.is_some_and(|id| !x.keys.iter().any(|key| key.kid == id))
                        && x.fetched.elapsed() > KEYS_REFETCH)
            }
        };
        if stale {
            let meta = self.metadata().await?;
            let jwks = self.get_json(&meta.jwks_uri).await?;
            let keys: Vec<JwtKey> = jwks["keys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|j| j["use"].as_str().unwrap_or("sig") == "sig")
                        .filter_map(|j| serde_json::from_value::<Jwk>(j.clone()).ok())
                        .filter_map(|j| JwtKey::from_jwk(&j).ok())
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                return Err(OidcError::Provider(
                    "no usable signing key (RSA 2048+ or P-256) in the JWKS".into(),
                ));
            }
            *k = Some(Keys {
                keys,
                fetched: Instant::now(),
            });
        }
        Ok(k.as_ref().map(|x| x.keys.clone()).unwrap_or_default())
    }

    /// Start a sign-in: remember its state, nonce and PKCE verifier, and return the address at
    /// the identity provider to send the browser to. `base` is this server's address.
    pub async fn begin(&self, s: &AppState, base: &str, next: &str) -> Result<String, OidcError> {
        let meta = self.metadata().await?;
        let state = random_token(32)?;
        let nonce = random_token(32)?;
        let verifier = random_token(48)?;
        let t = now();
        let mut tx = s.begin_write().await?;
        sqlx::query("DELETE FROM oidc_logins WHERE created_at < $1")
            .bind(t - LOGIN_TTL)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO oidc_logins (state_hash, nonce, verifier, next, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hash_secret(&state))
            .bind(&nonce)
            .bind(&verifier)
            .bind(next)
            .bind(t)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let redirect = format!("{base}/sign-in/oidc/callback");
        let challenge = b64_sha256(&verifier);
        let query = form_encode(&[
            ("response_type", "code"),
            ("client_id", &self.config.client_id),
            ("redirect_uri", &redirect),
            ("scope", "openid profile"),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let sep = if meta.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{query}", meta.authorization_endpoint))
    }

    /// Finish a sign-in from the provider's redirect: the code exchanged (once), the ID token
    /// checked, the account made or its role brought up to date, a session started. Returns
    /// the user, the session id, its CSRF token and where to go next.
    pub async fn finish(
        &self,
        s: &AppState,
        base: &str,
        code: &str,
        state: &str,
        client: ClientAddr,
    ) -> Result<(User, String, String, String), OidcError> {
        // The state is used once: taken out of the table whatever happens next.
        let mut tx = s.begin_write().await?;
        let row = sqlx::query(
            "SELECT nonce, verifier, next, created_at FROM oidc_logins WHERE state_hash = $1",
        )
        .bind(hash_secret(state))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(OidcError::State)?;
        let taken = sqlx::query("DELETE FROM oidc_logins WHERE state_hash = $1")
            .bind(hash_secret(state))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        let created: i64 = row.try_get("created_at")?;
        if taken != 1 || created < now() - LOGIN_TTL {
            return Err(OidcError::State);
        }
        let nonce: String = row.try_get("nonce")?;
        let verifier: String = row.try_get("verifier")?;
        let next: String = row.try_get("next")?;
        let meta = self.metadata().await?;
        let redirect = format!("{base}/sign-in/oidc/callback");
        let body = form_encode(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
        ]);
        // client_secret_basic: both parts form-encoded first (RFC 6749, 2.3.1).
        let basic = format!(
            "{}:{}",
            form_encode(&[("", &self.config.client_id)]).trim_start_matches('='),
            form_encode(&[("", &self.config.client_secret)]).trim_start_matches('=')
        );
        let r = self
            .http
            .post(&meta.token_endpoint)
            .header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(basic)
                ),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {}", e.without_url())))?;
        let status = r.status();
        let answer: serde_json::Value = r.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(OidcError::Refused(format!(
                "token endpoint {status}: {}",
                answer["error"].as_str().unwrap_or("no error code")
            )));
        }
        let token = answer["id_token"]
            .as_str()
            .ok_or(OidcError::Token("no id_token in the token response"))?;
        let kid = jwt::decode(token).ok().and_then(|(_, h)| h.kid);
        let keys = self.keys(kid.as_deref()).await?;
        let person = check_id_token(
            token,
            &keys,
            &Expect {
                issuer: &meta.issuer,
                client_id: &self.config.client_id,
                nonce: &nonce,
                now: now(),
            },
        )?;
        let role = role_of(&self.config, &person.claims)?;
        let programs = match &self.config.programs_claim {
            Some(path) if role.is_program_role() => claim_values(&person.claims, path),
            _ => Vec::new(),
        };
        let (user, sid, csrf) = self.account(s, &person, role, &programs, client).await?;
        Ok((user, sid, csrf, next))
    }

    /// Make or update the account of a person the provider vouched for, and start a session.
    async fn account(
        &self,
        s: &AppState,
        p: &Person,
        role: Role,
        programs: &[String],
        client: ClientAddr,
    ) -> Result<(User, String, String), OidcError> {
        let subject = format!("{} {}", self.config.issuer, p.sub);
        let mut tx = s.begin_write().await?;
        let id: Option<String> = sqlx::query("SELECT id FROM users WHERE oidc_subject = $1")
            .bind(&subject)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("id"))
            .transpose()?;
        // Only programs that exist limit an account (an unknown id in the claim is ignored).
        let mut known = Vec::new();
        for prog in programs {
            if sqlx::query("SELECT 1 FROM programs WHERE id = $1")
                .bind(prog)
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
            {
                known.push(prog.clone());
            }
        }
        known.sort();
        known.dedup();
        let oidc_actor = Actor {
            id: "oidc".into(),
            role: "identity-provider".into(),
            name: self.config.label.clone(),
        };
        let user = match id {
            Some(id) => {
                let before =
                    users::find(&mut tx, &id)
                        .await?
                        .ok_or(OidcError::Api(ApiError::Internal(
                            "account vanished".into(),
                        )))?;
                if before.disabled_at.is_some() {
                    return Err(OidcError::Disabled);
                }
                if before.role != role || before.programs != known {
                    users::set_role(&mut tx, &id, role, &known).await?;
                    audit::record(
                        &mut tx,
                        s.postgres,
                        &oidc_actor,
                        client.0,
                        Event::new(
                            "account.update",
                            "account",
                            id.clone(),
                            serde_json::json!({
                                "before": {"role": before.role, "programs": before.programs},
                                "after": {"role": role, "programs": known},
                            }),
                        ),
                    )
                    .await?;
                }
                users::find(&mut tx, &id)
                    .await?
                    .ok_or(OidcError::Api(ApiError::Internal(
                        "account vanished".into(),
                    )))?
            }
            None => {
                let u = users::add_external(&mut tx, &p.name, role, &known, &subject)
                    .await
                    .map_err(|e| match e {
                        ApiError::Conflict(_) | ApiError::BadRequest(_) => {
                            OidcError::Name(p.name.clone())
                        }
                        e => OidcError::Api(e),
                    })?;
                audit::record(
                    &mut tx,
                    s.postgres,
                    &oidc_actor,
                    client.0,
                    Event::new(
                        "account.create",
                        "account",
                        u.id.clone(),
                        serde_json::json!({"after": {"name": u.name, "role": u.role, "programs": u.programs, "via": "oidc"}}),
                    ),
                )
                .await?;
                u
            }
        };
        let (sid, csrf) = users::start_session(&mut tx, &user.id).await?;
        audit::record(
            &mut tx,
            s.postgres,
            &Actor::user(&user),
            client.0,
            Event::new(
                "sign_in",
                "account",
                user.id.clone(),
                serde_json::json!({"via": "oidc"}),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok((user, sid, csrf))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;

    const ISS: &str = "https://id.example.org/realms/g2p";
    const NOW: i64 = 1_800_000_000;

    fn key() -> (p256::ecdsa::SigningKey, JwtKey) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "k1",
            "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap()),
        }))
        .unwrap();
        (sk, JwtKey::from_jwk(&jwk).unwrap())
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "iss": ISS, "aud": "evoucher", "sub": "f3c1", "exp": NOW + 300, "iat": NOW - 5,
            "nonce": "n-123", "preferred_username": "olga", "realm_access": {"roles": ["voucher-managers", "offline_access"]},
        })
    }

    fn token(
        sk: &p256::ecdsa::SigningKey,
        header: serde_json::Value,
        claims: &serde_json::Value,
    ) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig: p256::ecdsa::Signature = sk.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }

    fn expect() -> Expect<'static> {
        Expect {
            issuer: ISS,
            client_id: "evoucher",
            nonce: "n-123",
            now: NOW,
        }
    }

    #[test]
    fn a_good_id_token_names_the_person() {
        let (sk, k) = key();
        let t = token(
            &sk,
            serde_json::json!({"alg": "ES256", "kid": "k1"}),
            &claims(),
        );
        let p = check_id_token(&t, &[k], &expect()).unwrap();
        assert_eq!(p.sub, "f3c1");
        assert_eq!(p.name, "olga");
    }

    /// Every way an ID token must be refused, each with its reason.
    #[test]
    fn id_tokens_that_must_fail() {
        let (sk, k) = key();
        let es = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims();
            f(&mut c);
            token(&sk, es.clone(), &c)
        };
        let good = token(&sk, es.clone(), &claims());
        let (head, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let unsigned = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(claims().to_string())
        );
        let tampered = {
            let mut c = claims();
            c["sub"] = "someone-else".into();
            format!("{head}.{}.{sig}", B64.encode(c.to_string()))
        };
        let cases: Vec<(&str, String, &str)> = vec![
            ("not a JWS", "hello".into(), "not a compact JWS"),
            ("alg none", unsigned, "alg"),
            (
                "HMAC",
                token(
                    &sk,
                    serde_json::json!({"alg": "HS256", "kid": "k1"}),
                    &claims(),
                ),
                "alg",
            ),
            (
                "unknown kid",
                token(
                    &sk,
                    serde_json::json!({"alg": "ES256", "kid": "k9"}),
                    &claims(),
                ),
                "does not publish",
            ),
            (
                "crit",
                token(
                    &sk,
                    serde_json::json!({"alg": "ES256", "kid": "k1", "crit": ["x"]}),
                    &claims(),
                ),
                "crit",
            ),
            ("tampered claims", tampered, "bad signature"),
            (
                "another issuer",
                with(&|c| c["iss"] = "https://evil.example".into()),
                "iss",
            ),
            (
                "another client",
                with(&|c| c["aud"] = "other".into()),
                "aud",
            ),
            (
                "several audiences, no azp",
                with(&|c| c["aud"] = serde_json::json!(["evoucher", "other"])),
                "aud",
            ),
            (
                "several audiences, azp another",
                with(&|c| {
                    c["aud"] = serde_json::json!(["evoucher", "other"]);
                    c["azp"] = "other".into();
                }),
                "aud",
            ),
            (
                "expired",
                with(&|c| c["exp"] = (NOW - SKEW - 1).into()),
                "expired",
            ),
            (
                "no exp",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                "exp",
            ),
            (
                "issued in the future",
                with(&|c| c["iat"] = (NOW + SKEW + 10).into()),
                "iat",
            ),
            (
                "another sign-in's nonce",
                with(&|c| c["nonce"] = "n-999".into()),
                "nonce",
            ),
            (
                "no nonce",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("nonce");
                }),
                "nonce",
            ),
            (
                "no sub",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("sub");
                }),
                "sub",
            ),
        ];
        for (what, t, says) in cases {
            match check_id_token(&t, std::slice::from_ref(&k), &expect()) {
                Err(OidcError::Token(m)) => assert!(m.contains(says), "{what}: {m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        // Several audiences with azp naming this client: fine.
        let ok = with(&|c| {
            c["aud"] = serde_json::json!(["evoucher", "other"]);
            c["azp"] = "evoucher".into();
        });
        assert!(check_id_token(&ok, &[k], &expect()).is_ok());
    }

    #[test]
    fn roles_come_from_the_claim_and_exactly_one_must_map() {
        let mut cfg = OidcConfig {
            issuer: ISS.into(),
            client_id: "evoucher".into(),
            client_secret: "s".into(),
            role_claim: "realm_access.roles".into(),
            roles: vec![
                ("voucher-managers".into(), Role::ProgramManager),
                ("voucher-accountants".into(), Role::Accountant),
            ],
            programs_claim: None,
            label: "Keycloak".into(),
        };
        let c = claims();
        assert_eq!(role_of(&cfg, &c).unwrap(), Role::ProgramManager);
        let mut two = c.clone();
        two["realm_access"]["roles"] =
            serde_json::json!(["voucher-managers", "voucher-accountants"]);
        assert!(matches!(
            role_of(&cfg, &two),
            Err(OidcError::SeveralRoles(_))
        ));
        let mut none = c.clone();
        none["realm_access"]["roles"] = serde_json::json!(["offline_access"]);
        assert!(matches!(role_of(&cfg, &none), Err(OidcError::NoRole)));
        // Without a map the values are role names; `provider` is never given this way.
        cfg.roles.clear();
        cfg.role_claim = "roles".into();
        let mut named = c.clone();
        named["roles"] = serde_json::json!("auditor");
        assert_eq!(role_of(&cfg, &named).unwrap(), Role::Auditor);
        named["roles"] = serde_json::json!(["provider"]);
        assert!(matches!(role_of(&cfg, &named), Err(OidcError::NoRole)));
        // The configuration: https, a client, no provider role.
        cfg.issuer = "http://id.example.org".into();
        assert!(cfg.check().is_err());
        cfg.issuer = "http://127.0.0.1:8080".into();
        assert!(cfg.check().is_ok());
        cfg.roles = vec![("x".into(), Role::Provider)];
        assert!(cfg.check().is_err());
        assert!(OidcConfig::parse_role("a=b=admin").is_ok());
        assert!(OidcConfig::parse_role("group=king").is_err());
    }
}
