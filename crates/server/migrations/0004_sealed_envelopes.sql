-- Sealed envelopes (issue 19, point 3). A device registers its X25519 public key at enrolment
-- (`devices.sealing_key`); a lease is sealed to it. Each leased slot gets a random nonce and a
-- commitment SHA-256(stratum, seq, arm, nonce) when it is leased: the device's log publishes
-- the commitment, and an opening pushed later must carry the arm and nonce that match it (a
-- tampered arm is refused). `leased_by` names the administrator who asked for the lease.
ALTER TABLE devices ADD COLUMN sealing_key TEXT;
ALTER TABLE allocation ADD COLUMN commitment TEXT;
ALTER TABLE allocation ADD COLUMN nonce TEXT;
ALTER TABLE allocation ADD COLUMN leased_by TEXT;
