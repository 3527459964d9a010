//! One error type for the API, converted to a response in exactly one place.

use locker_core::refs::RefError;
use locker_core::request::RequestError;
use locker_core::sign::TokenError;
use locker_core::validate::ContentError;
use locker_core::{HashError, TenantError};
use serde_json::json;
use worker::Response;

use crate::routes::RouteError;

/// An API failure: HTTP status, a stable machine-readable code, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// The `Allow` header of a 405: the methods the route takes.
    pub allow: Option<String>,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }
    /// Also the answer for anything that belongs to another tenant: not even its existence leaks.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// The same error under another code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// Whether this refusal is an authentication/authorization one (logged as `denied`).
    pub fn is_denial(&self) -> bool {
        matches!(self.status, 401 | 403)
    }

    pub fn to_response(&self) -> worker::Result<Response> {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = Response::from_json(&body)?.with_status(self.status);
        if let Some(allow) = &self.allow {
            response.headers_mut().set("allow", allow)?;
        }
        Ok(response)
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        worker::console_error!("internal error: {e}");
        Self::new(
            500,
            "internal",
            "internal error; the request changed nothing that was not logged",
        )
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => Self::new(404, "route_not_found", "no such route"),
            RouteError::MethodNotAllowed(methods) => {
                let allow: Vec<&str> = methods.iter().map(AsRef::as_ref).collect();
                let allow = allow.join(", ");
                Self {
                    allow: Some(allow.clone()),
                    ..Self::new(
                        405,
                        "method_not_allowed",
                        format!("this route takes {allow} only"),
                    )
                }
            }
        }
    }
}

impl From<RefError> for ApiError {
    fn from(e: RefError) -> Self {
        Self::bad_request("invalid_ref", e.to_string())
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        Self::bad_request("invalid_sha256", e.to_string())
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        Self::bad_request("invalid_tenant", e.to_string())
    }
}

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::TooLarge { .. } => Self::new(413, "too_large", e.to_string()),
            ContentError::TypeNotAllowed(_) => Self::new(415, "type_not_allowed", e.to_string()),
            ContentError::MagicMismatch { .. } => Self::new(422, "content_mismatch", e.to_string()),
            ContentError::BadContentType => {
                Self::bad_request("invalid_content_type", e.to_string())
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => {
                Self::new(403, "expired", "this signed URL or token has expired")
            }
            TokenError::BadSignature | TokenError::Malformed => Self::new(
                403,
                "bad_signature",
                "the signature does not match this request",
            ),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Ref(e) => e.into(),
            RequestError::Hash(e) => e.into(),
            RequestError::Content(e) => e.into(),
            RequestError::EmptyDigest => Self::bad_request("size_mismatch", e.to_string()),
            RequestError::Filename => Self::bad_request("invalid_filename", e.to_string()),
            RequestError::ExpiresIn { .. } => {
                Self::bad_request("invalid_expires_in", e.to_string())
            }
        }
    }
}
