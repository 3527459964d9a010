//! The body of every refusal: `{"error": {"code", "message"}}`, whatever the status.

use serde::{Deserialize, Serialize};

/// Every error answer's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable and machine-readable (`too_large`, `not_found`, `upload_closed`, ...): branch on
    /// this, not on the message.
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{refused, round_trip};

    #[test]
    fn error_body() {
        // error.rs ApiError::to_response
        let sample =
            json!({"error": {"code": "too_large", "message": "5 bytes is over the limit of 4"}});
        let e: ErrorBody = round_trip(&sample);
        assert_eq!(
            e,
            ErrorBody::new("too_large", "5 bytes is over the limit of 4")
        );
        refused::<ErrorBody>(&json!({"code": "x", "message": "y"}), "error");
    }
}
