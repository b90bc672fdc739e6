-- Accounts signed in through an identity provider (OpenID Connect): the provider's issuer and
-- the person's `sub`, unique. Such accounts have no password.
ALTER TABLE users ADD COLUMN oidc_subject TEXT;
CREATE UNIQUE INDEX users_by_oidc_subject ON users (oidc_subject);
-- Sign-ins under way at the identity provider: the state (hashed), nonce and PKCE verifier,
-- used once, for ten minutes.
CREATE TABLE oidc_logins (
    state_hash     TEXT PRIMARY KEY,
    nonce          TEXT NOT NULL,
    verifier       TEXT NOT NULL,
    next           TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
