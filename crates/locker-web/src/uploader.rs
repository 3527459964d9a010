//! `Uploader`: hash in a Web Worker, ask the Worker, skip the transfer on a dedup hit, otherwise
//! send the bytes to the signed URL and complete. Retries what is worth retrying, and runs
//! several files at once with hashing of the next overlapping the upload of the current one.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use gloo_net::http::Method;
use js_sys::{Function, Promise};
use locker_core::api::{Abort, Complete, ReserveRequest, Reserved, UploadPlan};
use locker_core::client::{self, RetryPolicy, UploadToken};
use locker_core::validate;
use locker_core::LogicalPath;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{AbortSignal, Blob, CustomEvent, CustomEventInit, EventTarget, File};

use crate::digest::Reading;
use crate::error::{code, LockerError};
use crate::hash_worker::hash_in_worker;
use crate::js::{check_aborted, get, get_number, get_string, obj, sleep};
use crate::slots::Slots;
use crate::transfer::{call, send, Answer};

const DEFAULT_CONCURRENCY: f64 = 3.0;
const DEFAULT_RETRIES: f64 = 4.0;
const DEFAULT_RETRY_DELAY_MS: f64 = 500.0;
/// The Worker's bounds for a signed upload URL's `expires_in` (seconds).
const MAX_EXPIRES_IN_S: f64 = 3600.0;
/// How often an expired signed URL is replaced by a fresh reservation before giving up.
const MAX_RESERVATIONS: u32 = 3;

type Token = UploadToken;

enum Credential {
    Fixed(Token),
    Provider {
        get: Function,
        cached: RefCell<Option<Token>>,
        /// One `getToken()` call shared by every upload that needs a token at the same time.
        inflight: RefCell<Option<Promise>>,
    },
}

struct Options {
    endpoint: String,
    namespace: String,
    path_prefix: Option<String>,
    credential: Credential,
    retry: RetryPolicy,
    /// Lifetime asked for each signed upload URL (`expires_in`); the Worker's default if none.
    expires_in: Option<f64>,
    max_size: Option<f64>,
    accept: Vec<String>,
    reading: Reading,
}

struct Inner {
    options: Options,
    events: EventTarget,
    hash_slots: Rc<Slots>,
    upload_slots: Rc<Slots>,
}

/// Uploads files to a locker Worker. See the TypeScript types for the options and events.
#[wasm_bindgen]
pub struct Uploader {
    inner: Rc<Inner>,
}

/// `value` (or `default`) if it lies in `min..=max`; otherwise the error `message`.
fn bounded(
    value: Option<f64>,
    default: f64,
    (min, max): (f64, f64),
    message: &str,
) -> Result<f64, LockerError> {
    let v = value.unwrap_or(default);
    if v.is_finite() && (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(LockerError::invalid(message))
    }
}

/// What `getToken()` (or the `token` option) gave: a bare token string, or the answer of
/// `POST /v1/tokens` (or the part of it with `token`), decoded with serde as
/// `locker_core::client::TokenAnswer` from its JSON.
fn parse_token(value: &JsValue) -> Result<Token, LockerError> {
    let parsed = match value.as_string() {
        Some(t) => client::parse_token(Some(&t), None, None),
        None => {
            // `undefined` and functions stringify to nothing: read as an empty answer.
            let json = js_sys::JSON::stringify(value)
                .ok()
                .and_then(|j| j.as_string())
                .unwrap_or_else(|| "null".into());
            client::parse_token_answer(&json)
        }
    };
    parsed.map_err(|e| LockerError::invalid(e.to_string()))
}

impl Options {
    fn parse(o: &JsValue) -> Result<Self, LockerError> {
        let endpoint = get_string(o, "endpoint")
            .map(|e| e.trim_end_matches('/').to_owned())
            .ok_or_else(|| LockerError::invalid("endpoint is required (the Worker's URL)"))?;
        let namespace = get_string(o, "namespace")
            .ok_or_else(|| LockerError::invalid("namespace is required"))?;
        locker_core::Namespace::parse(&namespace)
            .map_err(|e| LockerError::invalid(e.to_string()))?;
        let credential = match (
            get_string(o, "token"),
            get(o, "getToken").dyn_into::<Function>(),
        ) {
            (Some(t), _) => Credential::Fixed(parse_token(&JsValue::from_str(&t))?),
            (None, Ok(get)) => Credential::Provider {
                get,
                cached: RefCell::default(),
                inflight: RefCell::default(),
            },
            (None, Err(_)) => {
                return Err(LockerError::invalid("token or getToken is required"));
            }
        };
        let accept = get_string(o, "accept")
            .unwrap_or_default()
            .split(',')
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .collect();
        let max_size = get_number(o, "maxSize");
        if max_size.is_some_and(|m| !(m.is_finite() && m >= 0.0)) {
            return Err(LockerError::invalid("maxSize must be a number of bytes"));
        }
        Ok(Self {
            endpoint,
            namespace,
            path_prefix: get_string(o, "pathPrefix"),
            credential,
            retry: RetryPolicy {
                retries: bounded(
                    get_number(o, "retries"),
                    DEFAULT_RETRIES,
                    (0.0, 20.0),
                    "retries must be 0 to 20",
                )? as u32,
                base_ms: bounded(
                    get_number(o, "retryDelay"),
                    DEFAULT_RETRY_DELAY_MS,
                    (0.0, 60_000.0),
                    "retryDelay must be 0 to 60000 (ms)",
                )?,
            },
            expires_in: match get_number(o, "expiresIn") {
                None => None,
                // NaN and infinities have no zero fraction either.
                Some(s) if s.fract() == 0.0 && (1.0..=MAX_EXPIRES_IN_S).contains(&s) => Some(s),
                Some(_) => {
                    return Err(LockerError::invalid(
                        "expiresIn must be 1 to 3600 (whole seconds)",
                    ))
                }
            },
            max_size,
            accept,
            reading: Reading::parse(o)?,
        })
    }
}

/// Whether a file fits an HTML `accept` list: `.ext`, `type/*` or `type/subtype`.
fn accepted(accept: &[String], name: &str, content_type: &str) -> bool {
    if accept.is_empty() {
        return true;
    }
    let name = name.to_ascii_lowercase();
    accept.iter().any(|a| {
        if a.starts_with('.') {
            name.ends_with(a.as_str())
        } else {
            validate::type_allowed(content_type, std::slice::from_ref(a))
        }
    })
}

/// A step of an upload, boxed: the retry loop is compiled once for all steps instead of once
/// per step, and each step's state machine is not copied into its callers' (module weight).
type Pending<'a> = Pin<Box<dyn Future<Output = Result<Answer, LockerError>> + 'a>>;

/// What one `upload()` call is about.
struct Job {
    file: Blob,
    name: String,
    content_type: String,
    path: Option<String>,
    signal: Option<AbortSignal>,
}

impl Inner {
    fn emit(&self, kind: &str, job: &Job, props: &[(&str, JsValue)]) {
        self.events_for(job).emit(kind, props);
    }

    fn events_for(&self, job: &Job) -> EventsFor {
        EventsFor {
            target: self.events.clone(),
            file: job.file.clone(),
        }
    }

    async fn token(&self) -> Result<Token, LockerError> {
        let (get, cached, inflight) = match &self.options.credential {
            Credential::Fixed(t) => return Ok(t.clone()),
            Credential::Provider {
                get,
                cached,
                inflight,
            } => (get, cached, inflight),
        };
        if let Some(t) = cached.borrow().as_ref() {
            if js_sys::Date::now() < t.renew_at_ms {
                return Ok(t.clone());
            }
        }
        let existing = inflight.borrow().clone();
        let promise = match existing {
            Some(p) => p,
            None => {
                let value = get
                    .call0(&JsValue::NULL)
                    .map_err(|e| LockerError::from_js("getToken() failed", e))?;
                let p = Promise::resolve(&value);
                *inflight.borrow_mut() = Some(p.clone());
                p
            }
        };
        let outcome = JsFuture::from(promise).await;
        inflight.borrow_mut().take();
        let value = outcome.map_err(|e| {
            LockerError::from_js("getToken() failed", e).with_code(code::TOKEN_FAILED)
        })?;
        let token = parse_token(&value)?;
        *cached.borrow_mut() = Some(token.clone());
        Ok(token)
    }

    fn forget_token(&self) {
        if let Credential::Provider { cached, .. } = &self.options.credential {
            cached.borrow_mut().take();
        }
    }

    /// A JSON call to the Worker. An expired or unknown token is renewed once.
    fn api<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<&'a str>,
        signal: Option<&'a AbortSignal>,
    ) -> Pending<'a> {
        Box::pin(self.api_once_renewed(method, path, body, signal))
    }

    async fn api_once_renewed(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        signal: Option<&AbortSignal>,
    ) -> Result<Answer, LockerError> {
        let url = [self.options.endpoint.as_str(), path].concat();
        let token = self.token().await?;
        let body = body.map(str::to_owned);
        match call(
            method.clone(),
            &url,
            Some(&token.token),
            body.clone(),
            signal,
        )
        .await
        {
            Err(e)
                if matches!(&self.options.credential, Credential::Provider { .. })
                    && client::renews_token(e.status, &e.code) =>
            {
                self.forget_token();
                let token = self.token().await?;
                call(method, &url, Some(&token.token), body, signal).await
            }
            other => other,
        }
    }

    /// Runs `step` until it succeeds, fails with a refusal, or runs out of retries.
    async fn retrying<'a>(
        &self,
        job: &Job,
        what: &str,
        step: &mut dyn FnMut() -> Pending<'a>,
    ) -> Result<Answer, LockerError> {
        let mut attempt = 0;
        loop {
            let e = match step().await {
                Err(e) => e,
                ok => return ok,
            };
            attempt += 1;
            let delay =
                self.options
                    .retry
                    .next_delay(attempt, e.status, &e.code, js_sys::Math::random());
            match delay {
                Some(delay) => {
                    self.emit(
                        "retry",
                        job,
                        &[
                            ("step", what.into()),
                            ("attempt", attempt.into()),
                            ("delay", delay.into()),
                            ("error", e.into()),
                        ],
                    );
                    sleep(delay, job.signal.as_ref()).await?;
                }
                None => return Err(e),
            }
        }
    }

    fn check(&self, job: &Job) -> Result<(), LockerError> {
        let size = job.file.size();
        if let Some(max) = self.options.max_size {
            if size > max {
                return Err(LockerError::new(
                    code::TOO_LARGE,
                    // Whole numbers: a Blob's size, and a limit of bytes.
                    format!(
                        "{} is {} bytes; the limit is {} bytes",
                        job.name, size as u64, max as u64
                    ),
                ));
            }
        }
        if !accepted(&self.options.accept, &job.name, &job.content_type) {
            return Err(LockerError::new(
                code::TYPE_NOT_ALLOWED,
                format!(
                    "{} ({}) is not an accepted type",
                    job.name, job.content_type
                ),
            ));
        }
        validate::content_type(&job.content_type)
            .map_err(|e| LockerError::new(code::TYPE_NOT_ALLOWED, e.to_string()))?;
        Ok(())
    }

    async fn run(self: Rc<Self>, job: Job) -> Result<JsValue, LockerError> {
        let signal = job.signal.clone();
        let signal = signal.as_ref();
        self.check(&job)?;
        let size = job.file.size();

        let sha256 = {
            let _slot = self.hash_slots.acquire(signal).await?;
            let events = self.events_for(&job);
            let progress = move |bytes: f64| {
                events.emit(
                    "hash-progress",
                    &[("loaded", bytes.into()), ("total", size.into())],
                );
            };
            hash_in_worker(&job.file, self.options.reading, signal, progress).await?
        };

        let _slot = self.upload_slots.acquire(signal).await?;
        let token = self.token().await?;
        let path = match &job.path {
            Some(p) => LogicalPath::parse(p),
            None => LogicalPath::for_file_name(
                self.options
                    .path_prefix
                    .as_deref()
                    .unwrap_or(&token.path_prefix),
                &job.name,
            ),
        }
        .map_err(|e| LockerError::invalid(e.to_string()))?;
        let request = ReserveRequest {
            namespace: self.options.namespace.clone(),
            path: path.as_str().to_owned(),
            sha256: sha256.clone(),
            // A Blob's size is a whole number of bytes.
            size: size as u64,
            content_type: job.content_type.clone(),
            filename: Some(job.name.clone()),
            // Whole seconds, checked in `Options::parse`.
            expires_in: self.options.expires_in.map(|s| s as u64),
        };
        let request =
            serde_json::to_string(&request).map_err(|e| LockerError::invalid(e.to_string()))?;

        let mut reservations = 0;
        let locker_ref = loop {
            reservations += 1;
            let answer = self
                .retrying(&job, "reserve", &mut || {
                    self.api(Method::POST, "/v1/uploads", Some(&request), signal)
                })
                .await?;
            let plan = match answer.decode::<Reserved>("the reservation")? {
                Reserved::Deduplicated(d) => {
                    self.emit(
                        "deduplicated",
                        &job,
                        &[("ref", d.locker_ref.clone().into())],
                    );
                    break (d.locker_ref, true);
                }
                Reserved::Upload(plan) => plan,
            };
            let id = plan.upload_id.as_str();
            match self.transfer_and_complete(&job, &plan).await {
                Ok(r) => break (r, false),
                Err(e)
                    if client::renews_reservation(&e.code) && reservations < MAX_RESERVATIONS =>
                {
                    // The signed URL ran out (a slow link, a long pause): ask for a new one.
                    // Both transports come here alike: the Worker's JSON `expired` and a
                    // storage server's XML "Request has expired" classify the same.
                    self.abandon(id).await;
                }
                Err(e) => {
                    self.abandon(id).await;
                    return Err(e);
                }
            }
        };
        let (locker_ref, deduplicated) = locker_ref;
        let result = obj(&[
            ("ref", locker_ref.into()),
            ("sha256", sha256.into()),
            ("size", size.into()),
            ("deduplicated", deduplicated.into()),
            ("namespace", self.options.namespace.clone().into()),
            ("path", path.as_str().into()),
        ]);
        self.emit("complete", &job, &[("result", result.clone())]);
        Ok(result)
    }

    async fn transfer_and_complete(
        &self,
        job: &Job,
        plan: &UploadPlan,
    ) -> Result<String, LockerError> {
        let signal = job.signal.as_ref();
        self.retrying(job, "transfer", &mut || {
            let events = self.events_for(job);
            let sent = send(
                &plan.method,
                &plan.url,
                &plan.headers,
                &job.file,
                signal,
                self.options.reading.stall_ms,
                move |loaded, total| {
                    events.emit(
                        "upload-progress",
                        &[("loaded", loaded.into()), ("total", total.into())],
                    );
                },
            );
            // No body to decode: the storage server's 2xx says the bytes are taken.
            Box::pin(async move {
                sent.await.map(|()| Answer {
                    status: 200,
                    text: String::new(),
                })
            })
        })
        .await?;
        check_aborted(signal)?;
        let complete = ["/v1/uploads/", &plan.upload_id, "/complete"].concat();
        let done = self
            .retrying(job, "complete", &mut || {
                self.api(Method::POST, &complete, None, signal)
            })
            .await?;
        Ok(done.decode::<Complete>("the completion")?.locker_ref)
    }

    /// Releases a reservation that will not be completed (cancelled or refused). Best effort:
    /// an abandoned reservation also expires by itself.
    async fn abandon(&self, id: &str) {
        let path = ["/v1/uploads/", id].concat();
        if let Ok(answer) = self.api(Method::DELETE, &path, None, None).await {
            let _ = answer.decode::<Abort>("the abort");
        }
    }
}

/// Emits events about one file from a `'static` callback.
struct EventsFor {
    target: EventTarget,
    file: Blob,
}

impl EventsFor {
    fn emit(&self, kind: &str, props: &[(&str, JsValue)]) {
        let detail = obj(props);
        let _ = js_sys::Reflect::set(&detail, &"file".into(), &self.file);
        let init = CustomEventInit::new();
        init.set_detail(&detail);
        if let Ok(event) = CustomEvent::new_with_event_init_dict(kind, &init) {
            let _ = self.target.dispatch_event(&event);
        }
    }
}

#[wasm_bindgen]
impl Uploader {
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "UploaderOptions")] options: JsValue,
    ) -> Result<Uploader, JsValue> {
        let parsed = Options::parse(&options)?;
        let concurrency = bounded(
            get_number(&options, "concurrency"),
            DEFAULT_CONCURRENCY,
            (1.0, 16.0),
            "concurrency must be 1 to 16",
        )?;
        let hash_concurrency = bounded(
            get_number(&options, "hashConcurrency"),
            1.0,
            (1.0, 8.0),
            "hashConcurrency must be 1 to 8",
        )?;
        let events = EventTarget::new()
            .map_err(|e| LockerError::from_js("could not create the event target", e))?;
        Ok(Uploader {
            inner: Rc::new(Inner {
                options: parsed,
                events,
                hash_slots: Slots::new(hash_concurrency as usize),
                upload_slots: Slots::new(concurrency as usize),
            }),
        })
    }

    /// Hashes and uploads one file (or Blob). Resolves to an `UploadResult`; rejects with a
    /// `LockerError` (`code`, `status`, `retryable`).
    #[wasm_bindgen(unchecked_return_type = "Promise<UploadResult>")]
    pub fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Blob | File")] file: Blob,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: Option<
            js_sys::Object,
        >,
    ) -> Promise {
        let options = JsValue::from(options.unwrap_or_default());
        let inner = self.inner.clone();
        let name = file
            .dyn_ref::<File>()
            .map(File::name)
            .or_else(|| get_string(&options, "filename"))
            .unwrap_or_else(|| "blob".into());
        let content_type = match file.type_() {
            t if t.is_empty() => "application/octet-stream".to_owned(),
            // `text/plain;charset=utf-8` and friends: the registry keeps one spelling per type.
            t => t
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase(),
        };
        let job = Job {
            file,
            name,
            content_type,
            path: get_string(&options, "path"),
            signal: get(&options, "signal").dyn_into::<AbortSignal>().ok(),
        };
        future_to_promise(async move {
            let events = inner.events_for(&job);
            match inner.run(job).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    let kind = if e.is_aborted() { "cancel" } else { "error" };
                    events.emit(kind, &[("error", e.clone().into())]);
                    Err(e.into())
                }
            }
        })
    }

    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof UploaderEventMap")] kind: &str,
        #[wasm_bindgen(
            unchecked_param_type = "(event: UploaderEventMap[keyof UploaderEventMap]) => void"
        )]
        listener: &Function,
    ) -> Result<(), JsValue> {
        self.inner
            .events
            .add_event_listener_with_callback(kind, listener)
    }

    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof UploaderEventMap")] kind: &str,
        #[wasm_bindgen(
            unchecked_param_type = "(event: UploaderEventMap[keyof UploaderEventMap]) => void"
        )]
        listener: &Function,
    ) -> Result<(), JsValue> {
        self.inner
            .events
            .remove_event_listener_with_callback(kind, listener)
    }
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Options of `new Uploader(...)`. */
export interface UploaderOptions {
  /** The Worker's origin, e.g. "https://files.example.com". */
  endpoint: string;
  /** Namespace the files go to (must be allowed by the token). */
  namespace: string;
  /** An upload token (`lkt_...`) minted by your server. Never an API key. */
  token?: string;
  /** Called when a token is needed or has expired; may return the token or `{token, path_prefix, expires_at}`. */
  getToken?: () => string | TokenAnswer | Promise<string | TokenAnswer>;
  /** Prefix for paths derived from file names (default: the token's `path_prefix`). */
  pathPrefix?: string;
  /** Files uploading at once (1-16, default 3). Hashing the next file overlaps these. */
  concurrency?: number;
  /** Files hashing at once, each in its own Web Worker (1-8, default 1). */
  hashConcurrency?: number;
  /** Retries of a transient failure (network, stall, 408, 429, 5xx but 501/505) per step (0-20, default 4). */
  retries?: number;
  /** First retry delay in ms, doubled each time, with jitter: the n-th retry waits between half and all of `retryDelay * 2^(n-1)`, at most 15 s (default 500). */
  retryDelay?: number;
  /** Lifetime of each signed upload URL in whole seconds (1-3600, default: the Worker's, an hour). An upload whose URL ran out gets a fresh reservation, up to 3 in all. */
  expiresIn?: number;
  /** Client-side size check in bytes, a convenience only: the Worker decides. */
  maxSize?: number;
  /** Client-side type check, an HTML accept list (".pdf,image/*"), a convenience only. */
  accept?: string;
  /** Bytes read and hashed at a time (64 KiB to 64 MiB, default 4 MiB). */
  chunkSize?: number;
  /** Milliseconds without progress after which reading the file or sending it counts as stalled: the file's byte stream gives way to slices, a transfer is aborted and retried (100 to 600000, default 30000). */
  stallTimeout?: number;
}

/** What a token route answers (`POST /v1/tokens` gives exactly this). */
export interface TokenAnswer {
  token: string;
  path_prefix?: string;
  /** Unix seconds. */
  expires_at?: number;
}

/** Options of one `upload()` call. */
export interface UploadOptions {
  /** Logical path inside the namespace (default: path prefix + file name made safe). */
  path?: string;
  /** Name for a Blob that is not a File. */
  filename?: string;
  /** Cancels hashing, transfer and the reservation. */
  signal?: AbortSignal;
}

/** What `upload()` resolves to. */
export interface UploadResult {
  /** `locker://{namespace}/{path}` */
  ref: string;
  sha256: string;
  size: number;
  /** True when the bytes were already stored and nothing was sent. */
  deduplicated: boolean;
  namespace: string;
  path: string;
}

/** How `upload()` rejects. */
export interface LockerError extends Error {
  name: "LockerError";
  /** "too_large", "type_not_allowed", "aborted", "network", "timeout", "expired", "storage_refused", "bad_answer", "token_failed", "invalid_argument", "hash_failed", or the Worker's error code. */
  code: string;
  /** HTTP status of the refusal, if there was one. */
  status: number | null;
  retryable: boolean;
}

interface FileDetail { file: Blob | File }
export interface UploaderEventMap {
  "hash-progress": CustomEvent<FileDetail & { loaded: number; total: number }>;
  "upload-progress": CustomEvent<FileDetail & { loaded: number; total: number }>;
  "deduplicated": CustomEvent<FileDetail & { ref: string }>;
  "retry": CustomEvent<FileDetail & { step: "reserve" | "transfer" | "complete"; attempt: number; delay: number; error: LockerError }>;
  "complete": CustomEvent<FileDetail & { result: UploadResult }>;
  "error": CustomEvent<FileDetail & { error: LockerError }>;
  "cancel": CustomEvent<FileDetail & { error: LockerError }>;
}
"#;
