-- In-kind entitlements and the providers allowed to redeem, per program (JSON arrays).
ALTER TABLE programs ADD COLUMN items TEXT NOT NULL DEFAULT '[]';
ALTER TABLE programs ADD COLUMN providers TEXT NOT NULL DEFAULT '[]';
