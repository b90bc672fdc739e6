-- Service providers, their devices, and the redemptions the devices sync.
CREATE TABLE providers (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    category       TEXT,
    payout_account TEXT,
    created_at     BIGINT NOT NULL
);
CREATE TABLE enrolment_codes (
    code_hash      TEXT PRIMARY KEY,
    provider_id    TEXT NOT NULL REFERENCES providers(id),
    created_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    provider_id    TEXT NOT NULL REFERENCES providers(id),
    public_key     TEXT NOT NULL UNIQUE,
    token_hash     TEXT NOT NULL UNIQUE,
    enrolled_at    BIGINT NOT NULL,
    last_seq       BIGINT NOT NULL,
    last_hash      TEXT NOT NULL
);
CREATE TABLE redemptions (
    id             TEXT PRIMARY KEY,
    device_id      TEXT NOT NULL REFERENCES devices(id),
    seq            BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    voucher_id     TEXT NOT NULL,
    voids          TEXT,
    amount         BIGINT,
    currency       TEXT,
    items          TEXT NOT NULL,
    at             BIGINT NOT NULL,
    received_at    BIGINT NOT NULL,
    status         TEXT NOT NULL,
    conflict_with  TEXT,
    hash           TEXT NOT NULL,
    UNIQUE (device_id, seq)
);
CREATE INDEX redemptions_by_voucher ON redemptions (voucher_id);
