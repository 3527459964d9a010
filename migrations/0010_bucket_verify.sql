-- How `complete` verifies a single PUT into an `s3` transport bucket (locker-core's
-- api::Verify): 'read_back' reads the stored object back and hashes it, as every s3 bucket
-- did before this column; 'checksum' takes the SHA-256 the server reports for the object
-- when it is the reserved one, for servers that refuse a PUT whose checksum does not match
-- and honour If-None-Match atomically (AWS S3, R2), and reads back otherwise. Uploads in
-- parts always read back. `worker` transport rows keep the default; it is not used for them
-- (R2 checks every write through the binding itself).
ALTER TABLE buckets ADD COLUMN verify TEXT NOT NULL DEFAULT 'read_back'
  CHECK (verify IN ('read_back', 'checksum'));
