//! The Worker's own statements against a real SQLite with every migration applied: each one
//! a tenant runs must search an index, never read a whole table. D1 is SQLite, so its planner
//! decides the same way; a change to a statement or an index that loses this fails here.

// rusqlite is a host-only dev-dependency.
#![cfg(not(target_arch = "wasm32"))]

use rusqlite::types::Value;
use rusqlite::Connection;

use crate::registry::{
    stats_buckets_sql, LogQuery, Reach, DEDUP_MANY_SQL, DEDUP_SQL, KEYS_ALL_SQL,
    KEYS_NAMESPACES_SQL, KEYS_TENANT_SQL, LIST_OPEN_SQL, LIST_PREFIX_SQL, LIVE_BY_SHA256_SQL,
    PARTS_SQL, REACH_NAMESPACES, REACH_TENANT, ROUTES_SQL, ROUTE_SQL, STAT_COUNTS, SWEEP_SQL,
    UPLOADS_MANY_SQL, VERIFYING_SQL,
};

/// An empty registry built by every migration in `migrations/`, in order, as `wrangler d1
/// migrations apply` does.
fn registry() -> Connection {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "migrations found: {files:?}");
    let db = Connection::open_in_memory().unwrap();
    for file in files {
        db.execute_batch(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    db
}

/// The plan's lines (`detail` of `EXPLAIN QUERY PLAN`), parameters left NULL: the plan is
/// made before any value is bound.
fn plan(db: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = db
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let nulls = vec![Value::Null; stmt.parameter_count()];
    stmt.query_map(rusqlite::params_from_iter(nulls), |row| {
        row.get::<_, String>(3)
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Asserts that `table` (or its alias) is searched through an index with `constraint`
/// (as SQLite prints it, e.g. `tenant=? AND sha256=?`), never scanned, and that no line of
/// the plan sorts or scans anything but `allowed_scans`.
fn assert_searches(db: &Connection, sql: &str, table: &str, constraint: &str) {
    assert_searches_allowing(db, sql, table, constraint, &[]);
}

fn assert_searches_allowing(
    db: &Connection,
    sql: &str,
    table: &str,
    constraint: &str,
    allowed: &[&str],
) {
    let lines = plan(db, sql);
    let search = format!("SEARCH {table} USING ");
    assert!(
        lines.iter().any(|l| l.starts_with(&search)
            && l.contains("INDEX")
            && l.contains(&format!("({constraint})"))),
        "expected `{search}... INDEX ({constraint})` in {lines:#?}\nfor {sql}"
    );
    for line in &lines {
        let fine = !line.starts_with("SCAN ") && !line.contains("TEMP B-TREE")
            || allowed.iter().any(|a| line.starts_with(a));
        assert!(fine, "`{line}` in {lines:#?}\nfor {sql}");
    }
}

#[test]
fn access_log_pages_per_tenant_search_an_index_without_sorting() {
    let db = registry();
    let base = LogQuery {
        tenant: Some("acme".into()),
        limit: 100,
        ..LogQuery::default()
    };
    let first = base.statement().0;
    assert_searches(&db, &first, "access_log", "tenant=?");
    let next = LogQuery {
        cursor: Some(10),
        ..base
    };
    assert_searches(&db, &next.statement().0, "access_log", "tenant=? AND id<?");
    let by_operation = LogQuery {
        operation: Some("complete".into()),
        bucket_id: Some("b".into()),
        cursor: Some(10),
        ..LogQuery {
            tenant: Some("acme".into()),
            limit: 100,
            ..LogQuery::default()
        }
    };
    assert_searches(
        &db,
        &by_operation.statement().0,
        "access_log",
        "tenant=? AND id<?",
    );
}

#[test]
fn access_log_by_time_searches_per_tenant() {
    let db = registry();
    // Either index fits: (tenant, ts) bounds the window and sorts it, (tenant, id) walks the
    // tenant's rows newest first; SQLite picks, and neither reads other tenants' rows.
    let window = LogQuery {
        tenant: Some("acme".into()),
        since: Some(1),
        until: Some(2),
        limit: 100,
        ..LogQuery::default()
    };
    let (sql, _) = window.statement();
    let lines = plan(&db, &sql);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("SEARCH access_log USING INDEX") && l.contains("(tenant=?")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("SCAN ")), "{lines:#?}");
}

#[test]
fn access_log_of_some_namespaces_walks_the_tenant_index_without_sorting() {
    let db = registry();
    let scoped = LogQuery {
        tenant: Some("acme".into()),
        namespaces: Some(r#"["a","b"]"#.into()),
        cursor: Some(10),
        limit: 100,
        ..LogQuery::default()
    };
    // The tenant's rows newest first, each tested against the key's namespaces (a list from
    // json_each, not a table): no sort, and the page ends after `limit` matches.
    assert_searches_allowing(
        &db,
        &scoped.statement().0,
        "access_log",
        "tenant=? AND id<?",
        &["SCAN json_each VIRTUAL TABLE"],
    );
}

#[test]
fn prefix_listing_is_a_range_on_the_primary_key() {
    let db = registry();
    assert_searches(
        &db,
        LIST_PREFIX_SQL,
        "files",
        "tenant=? AND namespace=? AND path>? AND path<?",
    );
    assert_searches(
        &db,
        LIST_OPEN_SQL,
        "files",
        "tenant=? AND namespace=? AND path>?",
    );
}

#[test]
fn every_stats_count_searches_an_index() {
    let db = registry();
    for reach in [REACH_TENANT, REACH_NAMESPACES] {
        for count in STAT_COUNTS {
            if reach == REACH_NAMESPACES && !count.namespaced {
                continue;
            }
            let sql = count.template.replace("{scope}", reach);
            let constraint = if reach == REACH_TENANT {
                "tenant=?"
            } else {
                "tenant=? AND namespace=?"
            };
            let lines = plan(&db, &sql);
            assert!(
                lines.iter().any(|l| l.starts_with("SEARCH x USING ")
                    && l.contains("INDEX")
                    && l.contains(constraint)),
                "{lines:#?}\nfor {sql}"
            );
            assert!(
                lines
                    .iter()
                    .all(|l| !l.starts_with("SCAN ") || l.starts_with("SCAN json_each")),
                "{lines:#?}\nfor {sql}"
            );
        }
    }
}

#[test]
fn stats_per_bucket_search_per_tenant() {
    let db = registry();
    let tenant = Reach::Tenant("acme".into());
    // The registered buckets are few and listed whole; each one's counts are searches.
    assert_searches_allowing(
        &db,
        &stats_buckets_sql(&tenant),
        "x",
        "tenant=? AND bucket_id=?",
        &["SCAN b", "USE TEMP B-TREE FOR ORDER BY"],
    );
    let scoped = Reach::Namespaces("acme".into(), r#"["a"]"#.into());
    assert_searches_allowing(
        &db,
        &stats_buckets_sql(&scoped),
        "x",
        "tenant=? AND bucket_id=?",
        &[
            "SCAN b",
            "SCAN json_each VIRTUAL TABLE",
            "USE TEMP B-TREE FOR ORDER BY",
        ],
    );
}

#[test]
fn routes_are_searched_per_tenant() {
    let db = registry();
    assert_searches(
        &db,
        &ROUTES_SQL.replace("{scope}", REACH_TENANT),
        "x",
        "tenant=?",
    );
    let lines = plan(&db, &ROUTES_SQL.replace("{scope}", REACH_NAMESPACES));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("SEARCH x USING") && l.contains("tenant=? AND namespace=?")),
        "{lines:#?}"
    );
}

/// Every reservation of a new file looks its route up: at most the namespace's own row and
/// the tenant's `*` row, in the primary key's order, with no sort; and the order is the one
/// that picks the namespace's own route over the default.
#[test]
fn the_route_of_a_reservation_is_searched_without_sorting() {
    let db = registry();
    assert_searches(&db, ROUTE_SQL, "routes", "tenant=? AND namespace=?");
    db.execute_batch(
        "INSERT INTO buckets (id, name, provider, account_id, created_at) VALUES \
         (printf('%064d', 1), 'one', 'r2', 'a', 0), (printf('%064d', 2), 'two', 'r2', 'a', 0);
         INSERT INTO routes (tenant, namespace, bucket_id, updated_at) VALUES \
         ('acme', '*', printf('%064d', 1), 0), ('acme', '0own', printf('%064d', 2), 0), \
         ('acme', 'zed', printf('%064d', 2), 0), ('acme', 'a-b_c', printf('%064d', 2), 0);",
    )
    .unwrap();
    let route = |ns: &str| -> Option<String> {
        db.query_row(ROUTE_SQL, ["acme", ns], |r| r.get::<_, String>(0))
            .ok()
    };
    let (one, two) = (format!("{:064}", 1), format!("{:064}", 2));
    // Own routes of namespaces at both ends of the alphabet namespaces start with.
    assert_eq!(route("0own"), Some(two.clone()));
    assert_eq!(route("zed"), Some(two.clone()));
    assert_eq!(route("a-b_c"), Some(two));
    assert_eq!(route("other"), Some(one));
    assert_eq!(
        db.query_row(ROUTE_SQL, ["nobody", "x"], |r| r.get::<_, String>(0))
            .ok(),
        None
    );
    // The former `ORDER BY namespace = '*'` sorted the rows it read.
    let lines = plan(
        &db,
        "SELECT bucket_id FROM routes WHERE tenant = ?1 AND namespace IN (?2, '*') \
         ORDER BY namespace = '*' LIMIT 1",
    );
    assert!(
        lines.iter().any(|l| l.contains("TEMP B-TREE")),
        "{lines:#?}"
    );
}

#[test]
fn lookups_by_digest_and_the_sweep_search_an_index() {
    let db = registry();
    assert_searches(&db, DEDUP_SQL, "blobs", "tenant=? AND sha256=?");
    // A batch's digests: one index search per digest of the bound list, which is all it scans.
    assert_searches_allowing(
        &db,
        DEDUP_MANY_SQL,
        "blobs",
        "tenant=? AND sha256=?",
        &["SCAN json_each VIRTUAL TABLE"],
    );
    assert_searches(&db, LIVE_BY_SHA256_SQL, "files", "tenant=? AND sha256=?");
    assert_searches(&db, SWEEP_SQL, "uploads", "state=? AND expires_at<?");
    assert_searches(&db, VERIFYING_SQL, "uploads", "state=?");
    // A batch complete's reservations: each id by the primary key, the bound list scanned.
    assert_searches_allowing(
        &db,
        UPLOADS_MANY_SQL,
        "uploads",
        "id=?",
        &["SCAN json_each VIRTUAL TABLE"],
    );
    // An upload's parts, in number order, straight from the primary key of the WITHOUT ROWID
    // table: no scan and no sort.
    assert_eq!(
        plan(&db, PARTS_SQL),
        ["SEARCH upload_parts USING PRIMARY KEY (upload_id=?)"]
    );
}

#[test]
fn key_pages_search_an_index() {
    let db = registry();
    // A tenant's keys are few (each made by hand): sorting that handful by id is cheaper than
    // an index for it; what matters is that no other tenant's row is read.
    let sort = ["USE TEMP B-TREE FOR ORDER BY"];
    assert_searches_allowing(&db, KEYS_TENANT_SQL, "api_keys", "tenant=?", &sort);
    // The namespaces are compared per key, in the key's own small JSON arrays.
    let json = [
        "USE TEMP B-TREE FOR ORDER BY",
        "SCAN k",
        "SCAN json_each",
        "LIST SUBQUERY",
        "CORRELATED",
    ];
    assert_searches_allowing(&db, KEYS_NAMESPACES_SQL, "api_keys", "tenant=?", &json);
    // The bootstrap admin pages every tenant's keys along the primary key.
    assert_searches(&db, KEYS_ALL_SQL, "api_keys", "id>?");
}

/// The guard that these checks see what they claim: the stats' former `?1 IS NULL OR
/// tenant = ?1` scans the table, and the listing's former `substr` prefix bounds no range.
#[test]
fn a_scan_or_a_sort_is_caught() {
    let db = registry();
    let lines = plan(
        &db,
        "SELECT COUNT(*) FROM files WHERE ?1 IS NULL OR tenant = ?1",
    );
    assert!(
        lines.iter().any(|l| l.starts_with("SCAN files")),
        "{lines:#?}"
    );
    let lines = plan(
        &db,
        "SELECT path FROM files WHERE tenant = ?1 AND namespace = ?2 \
         AND substr(path, 1, length(?3)) = ?3 ORDER BY path",
    );
    assert!(
        !lines.iter().any(|l| l.contains("path>?")),
        "a substr prefix is no range: {lines:#?}"
    );
}
