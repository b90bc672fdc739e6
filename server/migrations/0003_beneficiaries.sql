-- Beneficiaries imported from CSV, per program; vouchers looked up by program and beneficiary.
CREATE TABLE beneficiaries (
    program_id     TEXT NOT NULL REFERENCES programs(id),
    id             TEXT NOT NULL,
    name           TEXT,
    amount         BIGINT,
    imported_at    BIGINT NOT NULL,
    PRIMARY KEY (program_id, id)
);
CREATE INDEX vouchers_by_beneficiary ON vouchers (program_id, beneficiary_id);
