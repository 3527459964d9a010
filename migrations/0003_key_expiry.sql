-- An API key may expire: Unix milliseconds after which authentication refuses it (and the
-- upload tokens it minted); NULL for a key that never expires. A key can only create keys and
-- tokens that expire no later than itself.
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
