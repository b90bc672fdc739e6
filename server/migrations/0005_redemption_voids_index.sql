-- Judging a redemption asks whether an accepted void cancels each earlier one
-- (`NOT EXISTS (… WHERE voids = r.id …)`). Without this index that was a scan of the whole
-- table per earlier redemption: bench-sync's resend of 20,000 took 27 s on PostgreSQL.
CREATE INDEX redemptions_by_voids ON redemptions (voids);
