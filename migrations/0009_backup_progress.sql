-- Backups gain what issue 14's remaining items need (see locker-core::backup):
--
-- * `after_key`: with `after`, where a backup stands in a table paged by a key other than the
--   rowid (`upload_parts` is WITHOUT ROWID: its primary key (upload_id, number) is the cursor,
--   `after_key` the upload id and `after` the part number; '' for rowid tables);
-- * `progress_at`: when the backup last wrote a page (or started); one without progress for
--   LOCKER_BACKUP_STUCK_S is stuck and given up, so it cannot block later backups forever;
-- * the state `abandoned`: a stuck backup whose objects are being deleted (over one or more
--   runs) before its row goes. It never counts as running or complete.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with its rows. No
-- table references `backups`.
CREATE TABLE backups_new (
  id          TEXT PRIMARY KEY,
  state       TEXT NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'complete', 'abandoned')),
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  step        INTEGER NOT NULL DEFAULT 0,
  after       INTEGER NOT NULL DEFAULT 0,
  after_key   TEXT NOT NULL DEFAULT '',
  progress_at INTEGER,
  manifest    TEXT NOT NULL
);
INSERT INTO backups_new (id, state, started_at, finished_at, step, after, after_key,
                         progress_at, manifest)
  SELECT id, state, started_at, finished_at, step, after, '',
         -- A backup running across this migration gets a whole timeout from now, not from
         -- its start: it may have been making progress all along.
         CASE WHEN state = 'running' THEN CAST(strftime('%s', 'now') AS INTEGER) * 1000
              ELSE started_at END,
         manifest
  FROM backups;
DROP TABLE backups;
ALTER TABLE backups_new RENAME TO backups;
CREATE INDEX backups_state ON backups (state, started_at);
