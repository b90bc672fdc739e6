-- The reason for every stored status (reviewers read it), the device's last entry time (for
-- entries dated before it) and last contact, expiring enrolment codes, and the revocation pulls
-- of each device (a redemption of a voucher whose cancellation the device had already fetched
-- is flagged `suspect`).
ALTER TABLE redemptions ADD COLUMN reason TEXT;
ALTER TABLE devices ADD COLUMN last_at BIGINT;
ALTER TABLE devices ADD COLUMN last_seen_at BIGINT;
ALTER TABLE devices ADD COLUMN revoked_at BIGINT;
ALTER TABLE enrolment_codes ADD COLUMN expires_at BIGINT;
CREATE TABLE revocation_pulls (
    device_id      TEXT NOT NULL REFERENCES devices(id),
    cursor         BIGINT NOT NULL,
    head_seq       BIGINT NOT NULL,
    pulled_at      BIGINT NOT NULL,
    PRIMARY KEY (device_id, cursor)
);
CREATE INDEX redemptions_by_status ON redemptions (status);
