-- Reimbursement: providers' claims on their accepted redemptions, staged approval, signed
-- payables and payment batches (docs/reimbursement.md).

-- A program's approval stages (roles, in order), the unit prices of its items (minor units of
-- its currency, by item code) and the account it pays from (the debtor of payment files).
ALTER TABLE programs ADD COLUMN stages TEXT NOT NULL DEFAULT '["accountant","cash_manager"]';
ALTER TABLE programs ADD COLUMN item_prices TEXT NOT NULL DEFAULT '{}';
ALTER TABLE programs ADD COLUMN payer TEXT;
-- Where a provider is paid: a bank account or a mobile money wallet (JSON).
ALTER TABLE providers ADD COLUMN payout TEXT;

-- Each program's payables keys: separate from its voucher keys (another table, another JWKS).
CREATE TABLE payables_keys (
    kid            TEXT PRIMARY KEY,
    program_id     TEXT NOT NULL REFERENCES programs(id),
    public_x       TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT
);

CREATE TABLE claims (
    id             TEXT PRIMARY KEY,
    program_id     TEXT NOT NULL REFERENCES programs(id),
    provider_id    TEXT NOT NULL REFERENCES providers(id),
    -- The submitter's own key for the claim: sending it again finds the same claim.
    client_key     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    state          TEXT NOT NULL,
    -- The stage waiting for a decision (1-based) while submitted.
    stage          BIGINT NOT NULL,
    stages         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    claimed        BIGINT NOT NULL,
    approved       BIGINT,
    line_count     BIGINT NOT NULL,
    period_from    BIGINT,
    period_to      BIGINT,
    note           TEXT,
    question       TEXT,
    reason         TEXT,
    created_at     BIGINT NOT NULL,
    submitted_at   BIGINT,
    updated_at     BIGINT NOT NULL,
    UNIQUE (provider_id, client_key)
);
CREATE INDEX claims_by_state ON claims (state);

CREATE TABLE claim_lines (
    claim_id       TEXT NOT NULL REFERENCES claims(id),
    redemption_id  TEXT NOT NULL REFERENCES redemptions(id),
    amount         BIGINT NOT NULL,
    approved       BIGINT,
    note           TEXT,
    PRIMARY KEY (claim_id, redemption_id)
);
CREATE INDEX claim_lines_by_redemption ON claim_lines (redemption_id);

-- A redemption is in at most one live claim: the primary key decides, on either database,
-- however many claims are submitted at once. A rejected or withdrawn claim lets go of its rows.
CREATE TABLE claimed (
    redemption_id  TEXT PRIMARY KEY REFERENCES redemptions(id),
    claim_id       TEXT NOT NULL REFERENCES claims(id)
);
CREATE INDEX claimed_by_claim ON claimed (claim_id);

CREATE TABLE claim_documents (
    claim_id       TEXT NOT NULL REFERENCES claims(id),
    sha256         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    size           BIGINT NOT NULL,
    name           TEXT NOT NULL,
    data           BYTEA NOT NULL,
    uploaded_by    TEXT NOT NULL,
    uploaded_at    BIGINT NOT NULL,
    PRIMARY KEY (claim_id, sha256)
);

-- Every step of a claim: submit, approve, reject, return, resubmit, withdraw, and the payment.
CREATE TABLE claim_steps (
    claim_id       TEXT NOT NULL REFERENCES claims(id),
    seq            BIGINT NOT NULL,
    stage          BIGINT NOT NULL,
    action         TEXT NOT NULL,
    role           TEXT NOT NULL,
    actor          TEXT NOT NULL,
    actor_name     TEXT NOT NULL,
    amount         BIGINT,
    text           TEXT,
    at             BIGINT NOT NULL,
    PRIMARY KEY (claim_id, seq)
);

CREATE TABLE payables (
    id             TEXT PRIMARY KEY,
    claim_id       TEXT NOT NULL UNIQUE REFERENCES claims(id),
    program_id     TEXT NOT NULL REFERENCES programs(id),
    provider_id    TEXT NOT NULL REFERENCES providers(id),
    amount         BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    account_kind   TEXT NOT NULL,
    kid            TEXT NOT NULL REFERENCES payables_keys(kid),
    text           TEXT NOT NULL,
    state          TEXT NOT NULL,
    batch_id       TEXT,
    failure        TEXT,
    issued_at      BIGINT NOT NULL,
    paid_at        BIGINT,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX payables_by_state ON payables (state);

CREATE TABLE payment_batches (
    id             TEXT PRIMARY KEY,
    client_key     TEXT UNIQUE,
    format         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    total          BIGINT NOT NULL,
    payables       TEXT NOT NULL,
    content        TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
