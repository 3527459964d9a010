//! One error type for the API: every way a request fails is an [`ErrorKind`], which maps to
//! its HTTP status and stable code in exactly one place ([`ErrorKind::status`],
//! [`ErrorKind::code`]); the answer's body is `locker_core::api::ErrorBody`. Handlers decide
//! on kinds, never on codes or status numbers.

use locker_core::api::ErrorBody;
use locker_core::refs::RefError;
use locker_core::request::RequestError;
use locker_core::sign::TokenError;
use locker_core::validate::ContentError;
use locker_core::{HashError, TenantError};
use worker::Response;

use crate::routes::RouteError;

/// Why a request failed. Each variant is one status and one code (the doc of each starts with
/// them); two variants share a code where the same fault is found before storing (400) and in
/// stored bytes (422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// 400 `invalid_json`: The body is not JSON of the request's type (unknown fields included).
    InvalidJson,
    /// 400 `invalid_ref`: A namespace or path is not a valid ref (traversal, control characters, ...).
    InvalidRef,
    /// 400 `invalid_sha256`: A SHA-256 is not 64 lowercase hex digits.
    InvalidSha256,
    /// 400 `invalid_tenant`: A tenant name is not valid.
    InvalidTenant,
    /// 400 `invalid_content_type`: A content type is not a `type/subtype`.
    InvalidContentType,
    /// 400 `invalid_filename`: A download name is not acceptable.
    InvalidFilename,
    /// 400 `invalid_expires_in`: `expires_in` is out of its range.
    InvalidExpiresIn,
    /// 400 `invalid_ttl`: A token's `ttl` is out of its range.
    InvalidTtl,
    /// 400 `invalid_query`: A query parameter is not of its type or range.
    InvalidQuery,
    /// 400 `invalid_form`: The demo's form post is not urlencoded.
    InvalidForm,
    /// 400 `invalid_label`: A key's label is not acceptable.
    InvalidLabel,
    /// 400 `invalid_scopes`: A key's or token's scopes are not acceptable.
    InvalidScopes,
    /// 400 `invalid_bucket`: A bucket registration or route names something impossible.
    InvalidBucket,
    /// 400 `bucket_misconfigured`: A bucket registration is unusable as given (credentials, binding); nothing is written.
    BucketRefused,
    /// 400 `missing_tenant`: A key that needs a tenant was asked for without one.
    MissingTenant,
    /// 400 `size_mismatch`: The declared size does not fit the request (before anything is stored).
    SizeMismatch,
    /// 400 `sha256_mismatch`: Storage refused the body: it does not have the declared SHA-256; nothing was stored.
    Sha256Mismatch,
    /// 400 `content_type_mismatch`: The data-plane PUT's Content-Type is not the reserved one.
    ContentTypeMismatch,
    /// 401 `unauthorized`: No credential, or one that is unknown or revoked.
    Unauthorized,
    /// 401 `key_expired`: The API key has expired.
    KeyExpired,
    /// 403 `forbidden`: The credential is valid but does not allow this.
    Forbidden,
    /// 403 `expired`: The signed URL or token has expired.
    Expired,
    /// 403 `bad_signature`: The signature does not match the request.
    BadSignature,
    /// 403 `scope_exceeded`: A token or key would get more than its issuer has.
    ScopeExceeded,
    /// 404 `not_found`: No such thing, or another tenant's: its existence does not leak.
    NotFound,
    /// 404 `route_not_found`: No route has this path (or the demo routes are off).
    RouteNotFound,
    /// 405 `method_not_allowed`: The route does not take this method; `Allow` lists those it takes.
    MethodNotAllowed,
    /// 409 `upload_closed`: The reservation is committed, aborted or expired.
    UploadClosed,
    /// 409 `not_uploaded`: No bytes are stored for the reservation (yet, or any more).
    NotUploaded,
    /// 409 `direct_upload`: The reservation's bytes go straight to storage, not through the Worker.
    DirectUpload,
    /// 409 `parts_missing`: A complete of an upload in parts that storage does not hold all of.
    PartsMissing,
    /// 409 `upload_busy`: A complete of this upload is running; nothing else may change it.
    UploadBusy,
    /// 409 `not_multipart`: Parts of an upload that is one request.
    NotMultipart,
    /// 400 `invalid_part`: A part number outside the plan, repeated, or too many at once.
    InvalidPart,
    /// 409 `changed`: The file changed while the request was served.
    Changed,
    /// 409 `bucket_exists`: This bucket is registered already.
    BucketExists,
    /// 409 `bucket_inactive`: The bucket is deactivated.
    BucketInactive,
    /// 409 `default_bucket`: The default bucket cannot be changed this way.
    DefaultBucket,
    /// 409 `same_bucket`: A move's source and target are the same bucket.
    SameBucket,
    /// 409 `move_running`: Another move of the tenant's files is running.
    MoveRunning,
    /// 411 `length_required`: The body has no Content-Length.
    LengthRequired,
    /// 413 `too_large`: The body or file is over a limit.
    TooLarge,
    /// 415 `type_not_allowed`: The content type is not in the allow-list.
    TypeNotAllowed,
    /// 416 `range_not_satisfiable`: The Range header does not fit the file.
    RangeNotSatisfiable,
    /// 422 `size_mismatch`: The stored bytes are not the reserved size; the reservation is discarded.
    StoredSizeMismatch,
    /// 422 `sha256_mismatch`: The stored bytes do not have the reserved SHA-256; the reservation is discarded.
    StoredSha256Mismatch,
    /// 422 `content_mismatch`: The bytes are not of their declared content type.
    ContentMismatch,
    /// 500 `internal`: A bug or a runtime failure; the request changed nothing that was not logged.
    Internal,
    /// 500 `misconfigured`: A secret or var of the deployment is missing or invalid.
    Misconfigured,
    /// 502 `storage_failed`: The storage server answered with a failure.
    StorageFailed,
    /// 502 `storage_unreachable`: The storage server could not be reached.
    StorageUnreachable,
    /// 503 `bucket_misconfigured`: A registered bucket cannot be used (its secrets or binding are missing).
    BucketMisconfigured,
}

impl ErrorKind {
    /// The HTTP status of the answer.
    pub(crate) fn status(self) -> u16 {
        match self {
            Self::InvalidJson => 400,
            Self::InvalidRef => 400,
            Self::InvalidSha256 => 400,
            Self::InvalidTenant => 400,
            Self::InvalidContentType => 400,
            Self::InvalidFilename => 400,
            Self::InvalidExpiresIn => 400,
            Self::InvalidTtl => 400,
            Self::InvalidQuery => 400,
            Self::InvalidForm => 400,
            Self::InvalidLabel => 400,
            Self::InvalidScopes => 400,
            Self::InvalidBucket => 400,
            Self::BucketRefused => 400,
            Self::MissingTenant => 400,
            Self::SizeMismatch => 400,
            Self::Sha256Mismatch => 400,
            Self::ContentTypeMismatch => 400,
            Self::Unauthorized => 401,
            Self::KeyExpired => 401,
            Self::Forbidden => 403,
            Self::Expired => 403,
            Self::BadSignature => 403,
            Self::ScopeExceeded => 403,
            Self::NotFound => 404,
            Self::RouteNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::UploadClosed => 409,
            Self::NotUploaded => 409,
            Self::DirectUpload => 409,
            Self::PartsMissing => 409,
            Self::UploadBusy => 409,
            Self::NotMultipart => 409,
            Self::InvalidPart => 400,
            Self::Changed => 409,
            Self::BucketExists => 409,
            Self::BucketInactive => 409,
            Self::DefaultBucket => 409,
            Self::SameBucket => 409,
            Self::MoveRunning => 409,
            Self::LengthRequired => 411,
            Self::TooLarge => 413,
            Self::TypeNotAllowed => 415,
            Self::RangeNotSatisfiable => 416,
            Self::StoredSizeMismatch => 422,
            Self::StoredSha256Mismatch => 422,
            Self::ContentMismatch => 422,
            Self::Internal => 500,
            Self::Misconfigured => 500,
            Self::StorageFailed => 502,
            Self::StorageUnreachable => 502,
            Self::BucketMisconfigured => 503,
        }
    }

    /// The answer's `error.code`: stable, what clients branch on.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRef => "invalid_ref",
            Self::InvalidSha256 => "invalid_sha256",
            Self::InvalidTenant => "invalid_tenant",
            Self::InvalidContentType => "invalid_content_type",
            Self::InvalidFilename => "invalid_filename",
            Self::InvalidExpiresIn => "invalid_expires_in",
            Self::InvalidTtl => "invalid_ttl",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidForm => "invalid_form",
            Self::InvalidLabel => "invalid_label",
            Self::InvalidScopes => "invalid_scopes",
            Self::InvalidBucket => "invalid_bucket",
            Self::BucketRefused => "bucket_misconfigured",
            Self::MissingTenant => "missing_tenant",
            Self::SizeMismatch => "size_mismatch",
            Self::Sha256Mismatch => "sha256_mismatch",
            Self::ContentTypeMismatch => "content_type_mismatch",
            Self::Unauthorized => "unauthorized",
            Self::KeyExpired => "key_expired",
            Self::Forbidden => "forbidden",
            Self::Expired => "expired",
            Self::BadSignature => "bad_signature",
            Self::ScopeExceeded => "scope_exceeded",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UploadClosed => "upload_closed",
            Self::NotUploaded => "not_uploaded",
            Self::DirectUpload => "direct_upload",
            Self::PartsMissing => "parts_missing",
            Self::UploadBusy => "upload_busy",
            Self::NotMultipart => "not_multipart",
            Self::InvalidPart => "invalid_part",
            Self::Changed => "changed",
            Self::BucketExists => "bucket_exists",
            Self::BucketInactive => "bucket_inactive",
            Self::DefaultBucket => "default_bucket",
            Self::SameBucket => "same_bucket",
            Self::MoveRunning => "move_running",
            Self::LengthRequired => "length_required",
            Self::TooLarge => "too_large",
            Self::TypeNotAllowed => "type_not_allowed",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::StoredSizeMismatch => "size_mismatch",
            Self::StoredSha256Mismatch => "sha256_mismatch",
            Self::ContentMismatch => "content_mismatch",
            Self::Internal => "internal",
            Self::Misconfigured => "misconfigured",
            Self::StorageFailed => "storage_failed",
            Self::StorageUnreachable => "storage_unreachable",
            Self::BucketMisconfigured => "bucket_misconfigured",
        }
    }

    /// A refusal of the credential or of its rights (logged as `denied`, not `failed`).
    pub(crate) fn is_denial(self) -> bool {
        matches!(self.status(), 401 | 403)
    }

    /// Stored bytes that are not the reserved ones: their reservation ends and takes them back.
    pub(crate) fn is_wrong_bytes(self) -> bool {
        matches!(self, Self::StoredSizeMismatch | Self::StoredSha256Mismatch)
    }
}

/// An API failure: its kind and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The `Allow` header of a 405: the methods the route takes.
    pub allow: Option<String>,
}

pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            allow: None,
        }
    }
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    /// Also the answer for anything that belongs to another tenant: not even its existence leaks.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The same error as another kind.
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Whether this refusal is an authentication/authorization one (logged as `denied`).
    pub(crate) fn is_denial(&self) -> bool {
        self.kind.is_denial()
    }

    pub(crate) fn to_response(&self) -> worker::Result<Response> {
        let body = ErrorBody::new(self.kind.code(), self.message.clone());
        let mut response = Response::from_json(&body)?.with_status(self.kind.status());
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
            ErrorKind::Internal,
            "internal error; the request changed nothing that was not logged",
        )
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => Self::new(ErrorKind::RouteNotFound, "no such route"),
            RouteError::MethodNotAllowed(allow) => Self {
                message: format!("this route takes {allow}"),
                allow: Some(allow),
                ..Self::new(ErrorKind::MethodNotAllowed, "")
            },
        }
    }
}

impl From<RefError> for ApiError {
    fn from(e: RefError) -> Self {
        Self::new(ErrorKind::InvalidRef, e.to_string())
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        Self::new(ErrorKind::InvalidSha256, e.to_string())
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        Self::new(ErrorKind::InvalidTenant, e.to_string())
    }
}

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::TooLarge { .. } => Self::new(ErrorKind::TooLarge, e.to_string()),
            ContentError::TypeNotAllowed(_) => Self::new(ErrorKind::TypeNotAllowed, e.to_string()),
            ContentError::MagicMismatch { .. } => {
                Self::new(ErrorKind::ContentMismatch, e.to_string())
            }
            ContentError::BadContentType => Self::new(ErrorKind::InvalidContentType, e.to_string()),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => {
                Self::new(ErrorKind::Expired, "this signed URL or token has expired")
            }
            TokenError::BadSignature | TokenError::Malformed => Self::new(
                ErrorKind::BadSignature,
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
            RequestError::EmptyDigest => Self::new(ErrorKind::SizeMismatch, e.to_string()),
            RequestError::Filename => Self::new(ErrorKind::InvalidFilename, e.to_string()),
            RequestError::ExpiresIn { .. } => Self::new(ErrorKind::InvalidExpiresIn, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[ErrorKind] = &[
        ErrorKind::InvalidJson,
        ErrorKind::InvalidRef,
        ErrorKind::InvalidSha256,
        ErrorKind::InvalidTenant,
        ErrorKind::InvalidContentType,
        ErrorKind::InvalidFilename,
        ErrorKind::InvalidExpiresIn,
        ErrorKind::InvalidTtl,
        ErrorKind::InvalidQuery,
        ErrorKind::InvalidForm,
        ErrorKind::InvalidLabel,
        ErrorKind::InvalidScopes,
        ErrorKind::InvalidBucket,
        ErrorKind::BucketRefused,
        ErrorKind::MissingTenant,
        ErrorKind::SizeMismatch,
        ErrorKind::Sha256Mismatch,
        ErrorKind::ContentTypeMismatch,
        ErrorKind::Unauthorized,
        ErrorKind::KeyExpired,
        ErrorKind::Forbidden,
        ErrorKind::Expired,
        ErrorKind::BadSignature,
        ErrorKind::ScopeExceeded,
        ErrorKind::NotFound,
        ErrorKind::RouteNotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::UploadClosed,
        ErrorKind::NotUploaded,
        ErrorKind::DirectUpload,
        ErrorKind::PartsMissing,
        ErrorKind::UploadBusy,
        ErrorKind::NotMultipart,
        ErrorKind::InvalidPart,
        ErrorKind::Changed,
        ErrorKind::BucketExists,
        ErrorKind::BucketInactive,
        ErrorKind::DefaultBucket,
        ErrorKind::SameBucket,
        ErrorKind::MoveRunning,
        ErrorKind::LengthRequired,
        ErrorKind::TooLarge,
        ErrorKind::TypeNotAllowed,
        ErrorKind::RangeNotSatisfiable,
        ErrorKind::StoredSizeMismatch,
        ErrorKind::StoredSha256Mismatch,
        ErrorKind::ContentMismatch,
        ErrorKind::Internal,
        ErrorKind::Misconfigured,
        ErrorKind::StorageFailed,
        ErrorKind::StorageUnreachable,
        ErrorKind::BucketMisconfigured,
    ];

    #[test]
    fn each_kind_is_one_status_and_code_and_no_two_are_the_same() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in ALL {
            let (status, code) = (kind.status(), kind.code());
            assert!((400..600).contains(&status), "{kind:?}");
            assert!(code
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
            assert!(
                seen.insert((status, code)),
                "{kind:?} repeats {status} {code}"
            );
        }
        assert!(ErrorKind::BadSignature.is_denial() && !ErrorKind::NotFound.is_denial());
        assert!(ErrorKind::StoredSha256Mismatch.is_wrong_bytes());
        assert!(!ErrorKind::Sha256Mismatch.is_wrong_bytes());
    }
}
