-- Registry backups (see locker-core::backup). One row per backup; a backup runs over as many
-- scheduled runs as it needs and is complete only once its manifest object is written.
-- `manifest` holds the manifest as written so far (parts, row counts); `step` is the index in
-- locker-core::backup::TABLES of the table being read and `after` the last rowid read from it.
CREATE TABLE backups (
  id          TEXT PRIMARY KEY,
  state       TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'complete')),
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  step        INTEGER NOT NULL DEFAULT 0,
  after       INTEGER NOT NULL DEFAULT 0,
  manifest    TEXT NOT NULL
);
CREATE INDEX backups_state ON backups (state, started_at);
