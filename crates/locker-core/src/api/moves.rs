//! Moving a tenant's files between buckets: `POST /v1/moves`, `GET /v1/moves/{id}`.

use serde::{Deserialize, Serialize};

/// `POST /v1/moves`: move every blob of a tenant from one bucket to another. `tenant` is
/// required of the deployment's admin key and, from a tenant's key, may only name its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartMove {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// A registered bucket's id (or the default bucket's).
    pub from_bucket: String,
    pub to_bucket: String,
}

/// Where a move is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveState {
    /// Scheduled runs copy its blobs, a bounded number per run.
    Running,
    /// No blob of the tenant is left to copy from the source and no reservation there is open;
    /// blobs listed in `problems` stay where they were.
    Done,
}

impl MoveState {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
        }
    }
}

/// Why a blob is not moved (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveProblemKind {
    /// Larger than one copy may carry (a single PUT): it stays in the source bucket.
    TooLarge,
    /// Copying or verifying failed; retried by later runs until the attempts run out.
    Failed,
}

impl MoveProblemKind {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Failed => "failed",
        }
    }
}

/// One blob a move did not (yet) move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveProblem {
    pub sha256: String,
    pub size: u64,
    pub problem: MoveProblemKind,
    pub detail: String,
    pub attempts: u64,
}

/// A move and its progress (`POST /v1/moves` 201, `GET /v1/moves/{id}` 200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub id: String,
    pub tenant: String,
    pub from_bucket: String,
    pub to_bucket: String,
    pub state: MoveState,
    /// Blobs copied, verified and switched so far, and their bytes.
    pub moved: u64,
    pub moved_bytes: u64,
    /// The tenant's blobs still in the source bucket now (those in `problems` included).
    pub remaining: u64,
    /// The tenant's open reservations into the source bucket now; the move ends only after
    /// they are gone, so bytes they commit are moved too.
    pub pending_uploads: u64,
    /// Routes of the tenant switched from the source to the target when the move started.
    pub routes_switched: u64,
    pub problems: Vec<MoveProblem>,
    pub created_at: u64,
    pub updated_at: u64,
    /// `null` while running.
    pub finished_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{refused, round_trip};

    const A: &str = "9414552e012c99d73aee04a065ac8c616ea4148d48bc811ecda2ff2b2022c208";
    const B: &str = "1f9b1f3b1f3b1f3b1f3b1f3b1f3b1f3b1f3b1f3b1f3b1f3b1f3b1f3b1f3b1f3b";

    #[test]
    fn start_move_request() {
        let r: StartMove = round_trip(&json!({"from_bucket": A, "to_bucket": B}));
        assert_eq!(r.tenant, None);
        let r: StartMove = round_trip(&json!({"tenant": "acme", "from_bucket": A, "to_bucket": B}));
        assert_eq!(r.tenant.as_deref(), Some("acme"));
        refused::<StartMove>(
            &json!({"from_bucket": A, "to_bucket": B, "route": true}),
            "route",
        );
        refused::<StartMove>(&json!({"from_bucket": A}), "to_bucket");
    }

    #[test]
    fn move_answer() {
        let m: Move = round_trip(&json!({
            "id": "mv_AAAAAAAAAAAAAAAAAAAAAA", "tenant": "acme",
            "from_bucket": A, "to_bucket": B, "state": "running",
            "moved": 2, "moved_bytes": 3000, "remaining": 1, "pending_uploads": 0,
            "routes_switched": 1,
            "problems": [{"sha256": A, "size": 9, "problem": "too_large",
                          "detail": "over 5 bytes", "attempts": 0}],
            "created_at": 1_764_000_000_000u64, "updated_at": 1_764_000_000_001u64,
            "finished_at": null,
        }));
        assert_eq!(m.state, MoveState::Running);
        assert_eq!(m.problems[0].problem, MoveProblemKind::TooLarge);
        assert_eq!(MoveState::Done.as_str(), "done");
        assert_eq!(MoveProblemKind::Failed.as_str(), "failed");
    }
}
