-- Portable between SQLite and PostgreSQL: TEXT and BIGINT only, no auto-increment.
CREATE TABLE programs (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    issuer         TEXT NOT NULL,
    currency       TEXT,
    amount         BIGINT,
    validity_days  BIGINT NOT NULL,
    partial        BIGINT NOT NULL,
    categories     TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE TABLE issuer_keys (
    kid            TEXT PRIMARY KEY,
    program_id     TEXT NOT NULL REFERENCES programs(id),
    public_x       TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT,
    last_expiry    BIGINT NOT NULL
);
CREATE TABLE vouchers (
    id             TEXT PRIMARY KEY,
    program_id     TEXT NOT NULL REFERENCES programs(id),
    kid            TEXT NOT NULL REFERENCES issuer_keys(kid),
    beneficiary_id TEXT NOT NULL,
    text           TEXT NOT NULL,
    exp            BIGINT NOT NULL,
    issued_at      BIGINT NOT NULL
);
CREATE TABLE revocations (
    seq            BIGINT PRIMARY KEY,
    voucher_id     TEXT NOT NULL UNIQUE REFERENCES vouchers(id),
    revoked_at     BIGINT NOT NULL
);
