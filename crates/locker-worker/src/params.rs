//! A request's query string, as the listing routes read it.

use crate::error::{ApiError, ApiResult, ErrorKind};

/// The decoded `name=value` pairs of a URL's query; the first of a repeated name counts.
pub(crate) struct Params<'a>(pub(crate) &'a [(String, String)]);

impl Params<'_> {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.as_str())
    }

    /// A non-negative integer, if given; anything else given is `invalid_query`.
    pub(crate) fn number(&self, name: &str) -> ApiResult<Option<u64>> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::new(ErrorKind::InvalidQuery, format!("{name} must be a number"))
                })
            })
            .transpose()
    }

    /// A page's `limit`: 1 to 1000, 100 when not given; anything else is `invalid_query`.
    pub(crate) fn page_limit(&self) -> ApiResult<u64> {
        match self.get("limit") {
            None => Ok(100),
            Some(l) => l
                .parse::<u64>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| ApiError::new(ErrorKind::InvalidQuery, "limit must be 1 to 1000")),
        }
    }
}
