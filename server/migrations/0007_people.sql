-- People of a program and what they did: accounts with a role (limited to some programs for
-- program roles, bound to one provider for the provider role), their sessions and API tokens
-- (secrets stored as SHA-256 only; passwords as Argon2id), and the audit log: append-only (the
-- server adds database triggers that refuse UPDATE and DELETE) and hash-chained.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    provider_id    TEXT REFERENCES providers(id),
    password_hash  TEXT,
    must_change    BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT
);
CREATE TABLE user_programs (
    user_id        TEXT NOT NULL REFERENCES users(id),
    program_id     TEXT NOT NULL,
    PRIMARY KEY (user_id, program_id)
);
CREATE TABLE sessions (
    id_hash        TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id),
    csrf           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    ended_at       BIGINT
);
CREATE TABLE api_tokens (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id),
    name           TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT,
    revoked_at     BIGINT
);
CREATE TABLE audit (
    seq            BIGINT PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    role           TEXT NOT NULL,
    action         TEXT NOT NULL,
    object_type    TEXT NOT NULL,
    object_id      TEXT NOT NULL,
    detail         TEXT NOT NULL,
    client         TEXT,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX audit_by_object ON audit (object_type, object_id);
CREATE INDEX audit_by_actor ON audit (actor);
CREATE INDEX audit_by_action ON audit (action);
CREATE INDEX sessions_by_user ON sessions (user_id);
