//! Hashing stored bytes the Worker did not write itself, with the runtime's native streaming
//! digest (constant memory, no wasm hashing over the whole object).

use worker::crypto::{DigestStream, DigestStreamAlgorithm};
use worker::ResponseBody;

use crate::app::App;
use crate::error::{ApiError, ApiResult};

pub async fn stream_sha256(app: &App, key: &str) -> ApiResult<Vec<u8>> {
    let missing = || ApiError::conflict("not_uploaded", "the stored object vanished");
    let object = app.blobs.get(key).execute().await?.ok_or_else(missing)?;
    let body = object.body().ok_or_else(missing)?.response_body()?;
    let digest = DigestStream::new(DigestStreamAlgorithm::Sha256);
    match body {
        ResponseBody::Stream(stream) => {
            // The pipe runs in the background; `digest()` resolves when it has consumed it all.
            let _pipe = stream.pipe_to(digest.raw());
        }
        ResponseBody::Body(_) | ResponseBody::Empty => {
            return Err(ApiError::new(500, "internal", "storage returned no stream"));
        }
    }
    Ok(digest.digest().await?.to_vec())
}
