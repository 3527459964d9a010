//! `Uploader`: hash in a Web Worker, ask the Worker, skip the transfer on a dedup hit, otherwise
//! send the bytes to the signed URL and complete. Retries what is worth retrying, and runs
//! several files at once with hashing of the next overlapping the upload of the current one.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use gloo_net::http::Method;
use js_sys::{Function, Promise};
use locker_core::api::{Abort, Complete, ReserveRequest, Reserved, UploadPlan};
use locker_core::client::{self, RetryPolicy, UploadToken};
use locker_core::upload_state::{Action, Event, Failure, Machine, Phase, Upload};
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
    uploads: Uploads,
}

/// Uploads by id: running ones (an id in use is refused), and those that ended failed or
/// cancelled (the same id again restarts them from there). Stored ones are forgotten.
type Uploads = Rc<RefCell<BTreeMap<String, Upload>>>;

thread_local! {
    /// Ids handed out when the caller gives none: unique on the page, across Uploaders.
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
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
    tracked: Rc<Tracked>,
}

/// One upload's state in `locker_core::upload_state`, shared with the callbacks that report
/// its progress. Every legal transition is told to the page as `state-change`.
struct Tracked {
    events: EventsFor,
    machine: Machine,
    state: RefCell<Upload>,
    /// The reservation the Worker holds for it, released on [`Action::Abandon`].
    reservation: RefCell<Option<String>>,
    uploads: Uploads,
}

impl Tracked {
    /// Applies `event`. A refused one (a progress report arriving after its phase ended)
    /// changes nothing and is not told.
    fn apply(&self, event: Event) -> Option<Action> {
        let previous = self.state.borrow().clone();
        let (next, action) = self
            .machine
            .transition(&previous, event, js_sys::Math::random())
            .ok()?;
        if next.phase != previous.phase {
            let mut uploads = self.uploads.borrow_mut();
            let id = self.events.id.clone();
            match next.phase {
                Phase::Stored | Phase::Deduplicated => uploads.remove(&id),
                _ => uploads.insert(id, next.clone()),
            };
        }
        self.state.replace(next.clone());
        self.events.emit_state(Some(previous.phase), &next);
        action
    }

    fn phase(&self) -> Phase {
        self.state.borrow().phase
    }
}

/// The failure the machine last saw, as a `LockerError` for JavaScript (`null` if none).
fn error_of(tracked: &Tracked) -> JsValue {
    tracked
        .state
        .borrow()
        .error
        .as_ref()
        .map_or(JsValue::NULL, |f| {
            LockerError {
                code: f.code.clone(),
                message: f.message.clone(),
                status: f.status,
            }
            .into()
        })
}

/// The machine's view of an error.
fn failure(e: &LockerError) -> Failure {
    Failure {
        status: e.status,
        code: e.code.clone(),
        message: e.message.clone(),
    }
}

impl Inner {
    fn emit(&self, kind: &str, job: &Job, props: &[(&str, JsValue)]) {
        self.events_for(job).emit(kind, props);
    }

    fn events_for(&self, job: &Job) -> EventsFor {
        job.tracked.events.clone()
    }

    /// Tells the machine a step failed; gives the wait before trying it again, or `None` when
    /// the failure ends the step (the upload failed, was cancelled, or needs a new reservation).
    async fn step_failed(&self, job: &Job, e: &LockerError) -> Option<f64> {
        let action = job.tracked.apply(Event::Failed(failure(e)));
        self.act(job, action).await
    }

    /// Does what the machine asked; a retry's wait is given back to the retry loop.
    async fn act(&self, job: &Job, action: Option<Action>) -> Option<f64> {
        match action? {
            Action::Retry {
                step,
                attempt,
                delay_ms,
            } => {
                self.emit(
                    "retry",
                    job,
                    &[
                        ("step", step.as_str().into()),
                        ("attempt", attempt.into()),
                        ("delay", delay_ms.into()),
                        ("error", error_of(&job.tracked)),
                    ],
                );
                Some(delay_ms)
            }
            Action::Abandon => {
                let id = job.tracked.reservation.take();
                if let Some(id) = id {
                    self.abandon(&id).await;
                }
                None
            }
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
    /// Runs `step` until it succeeds or the machine ends it (`locker_core::upload_state`: a
    /// refusal, retries used up, or an expired URL to renew).
    async fn retrying<'a>(
        &self,
        job: &Job,
        step: &mut dyn FnMut() -> Pending<'a>,
    ) -> Result<Answer, LockerError> {
        loop {
            let e = match step().await {
                Err(e) => e,
                ok => return ok,
            };
            match self.step_failed(job, &e).await {
                Some(delay) => sleep(delay, job.signal.as_ref()).await?,
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

    async fn run(&self, job: &Job) -> Result<JsValue, LockerError> {
        let signal = job.signal.as_ref();
        self.check(job)?;
        let size = job.file.size();

        let sha256 = {
            let _slot = self.hash_slots.acquire(signal).await?;
            job.tracked.apply(Event::Start);
            let tracked = job.tracked.clone();
            let progress = move |bytes: f64| {
                tracked.events.emit(
                    "hash-progress",
                    &[("loaded", bytes.into()), ("total", size.into())],
                );
                tracked.apply(Event::HashProgress(bytes as u64));
            };
            hash_in_worker(&job.file, self.options.reading, signal, progress).await?
        };
        job.tracked.apply(Event::Hashed);

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
            // One request, as before multipart existed, until the Uploader sends parts.
            multipart: Some(false),
        };
        let request =
            serde_json::to_string(&request).map_err(|e| LockerError::invalid(e.to_string()))?;

        let locker_ref = loop {
            let answer = self
                .retrying(job, &mut || {
                    self.api(Method::POST, "/v1/uploads", Some(&request), signal)
                })
                .await?;
            let plan =
                match answer.decode::<Reserved>("the reservation")? {
                    Reserved::Deduplicated(d) => {
                        job.tracked.apply(Event::Deduplicated);
                        self.emit("deduplicated", job, &[("ref", d.locker_ref.clone().into())]);
                        break (d.locker_ref, true);
                    }
                    Reserved::Upload(plan) => plan,
                    Reserved::Multipart(_) => return Err(LockerError::invalid(
                        "the Worker answered a multipart plan, which this Uploader does not send",
                    )),
                };
            job.tracked
                .reservation
                .replace(Some(plan.upload_id.clone()));
            job.tracked.apply(Event::Reserved);
            match self.transfer_and_complete(job, &plan).await {
                Ok(r) => break (r, false),
                // The signed URL ran out (a slow link, a long pause; the Worker's JSON `expired`
                // and a storage server's XML "Request has expired" alike): the machine released
                // the reservation and went back to reserving, for a freshly signed URL.
                Err(_) if job.tracked.phase() == Phase::Reserving => {}
                Err(e) => return Err(e),
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
            ("id", job.tracked.events.id.as_str().into()),
        ]);
        self.emit("complete", job, &[("result", result.clone())]);
        Ok(result)
    }

    async fn transfer_and_complete(
        &self,
        job: &Job,
        plan: &UploadPlan,
    ) -> Result<String, LockerError> {
        let signal = job.signal.as_ref();
        self.retrying(job, &mut || {
            let tracked = job.tracked.clone();
            let sent = send(
                &plan.method,
                &plan.url,
                &plan.headers,
                &job.file,
                signal,
                self.options.reading.stall_ms,
                move |loaded, total| {
                    tracked.events.emit(
                        "upload-progress",
                        &[("loaded", loaded.into()), ("total", total.into())],
                    );
                    tracked.apply(Event::TransferProgress(loaded as u64));
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
        job.tracked.apply(Event::Transferred);
        let complete = ["/v1/uploads/", &plan.upload_id, "/complete"].concat();
        let done = self
            .retrying(job, &mut || self.api(Method::POST, &complete, None, signal))
            .await?;
        let done = done.decode::<Complete>("the completion")?;
        job.tracked.reservation.take();
        job.tracked.apply(Event::Completed);
        Ok(done.locker_ref)
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
#[derive(Clone)]
struct EventsFor {
    target: EventTarget,
    file: Blob,
    id: String,
}

impl EventsFor {
    /// `state-change`: where the upload is now and was before (`null` for a new one).
    fn emit_state(&self, previous: Option<Phase>, s: &Upload) {
        let (loaded, total) = s.progress();
        let error = s.error.as_ref().map_or(JsValue::NULL, |f| {
            LockerError {
                code: f.code.clone(),
                message: f.message.clone(),
                status: f.status,
            }
            .into()
        });
        self.emit(
            "state-change",
            &[
                ("state", s.phase.as_str().into()),
                (
                    "previous",
                    previous.map_or(JsValue::NULL, |p| p.as_str().into()),
                ),
                // Byte counts of a Blob: exact in f64.
                ("loaded", (loaded as f64).into()),
                ("total", (total as f64).into()),
                ("attempt", s.attempt.into()),
                ("error", error),
            ],
        );
    }

    fn emit(&self, kind: &str, props: &[(&str, JsValue)]) {
        let detail = obj(props);
        let _ = js_sys::Reflect::set(&detail, &"file".into(), &self.file);
        let _ = js_sys::Reflect::set(&detail, &"id".into(), &self.id.as_str().into());
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
                uploads: Uploads::default(),
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
        let id = get_string(&options, "id").unwrap_or_else(|| {
            let n = NEXT_ID.with(|n| n.replace(n.get().wrapping_add(1)));
            ["upload-", &n.to_string()].concat()
        });
        // A Blob's size is a whole number of bytes.
        let size = file.size() as u64;
        let before = inner.uploads.borrow().get(&id).cloned();
        if before.as_ref().is_some_and(|b| !b.phase.is_final()) {
            let e = LockerError::invalid(["an upload with the id ", &id, " is running"].concat());
            return Promise::reject(&e.into());
        }
        let tracked = Rc::new(Tracked {
            events: EventsFor {
                target: inner.events.clone(),
                file: file.clone(),
                id: id.clone(),
            },
            machine: Machine {
                retry: inner.options.retry,
                max_reservations: MAX_RESERVATIONS,
            },
            state: RefCell::new(Upload::new(size)),
            reservation: RefCell::default(),
            uploads: inner.uploads.clone(),
        });
        inner
            .uploads
            .borrow_mut()
            .insert(id.clone(), Upload::new(size));
        match before {
            // The same file again after a failure or cancellation: the same upload, restarted.
            Some(ended) if matches!(ended.phase, Phase::Failed | Phase::Cancelled) => {
                tracked.state.replace(Upload { size, ..ended });
                tracked.apply(Event::Restart);
            }
            _ => tracked.events.emit_state(None, &tracked.state.borrow()),
        }
        let job = Job {
            file,
            name,
            content_type,
            path: get_string(&options, "path"),
            signal: get(&options, "signal").dyn_into::<AbortSignal>().ok(),
            tracked,
        };
        future_to_promise(async move {
            let outcome = inner.run(&job).await;
            if let Err(e) = &outcome {
                // A failure outside the retried steps ends the upload here; one inside them has
                // ended it already.
                if !job.tracked.phase().is_final() {
                    let action = job.tracked.apply(Event::Fatal(failure(e)));
                    inner.act(&job, action).await;
                }
            }
            outcome.map_err(|e| {
                let kind = if e.is_aborted() { "cancel" } else { "error" };
                job.tracked
                    .events
                    .emit(kind, &[("error", e.clone().into())]);
                e.into()
            })
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
  /** The id its events carry (default: one made up, `upload-N`). An upload that failed or was cancelled, given its id again, restarts (`state-change` from "failed"/"cancelled" to "waiting"); the id of one still running is refused. */
  id?: string;
}

/** Where an upload is (`state-change`): waiting -> hashing -> reserving -> transferring -> completing -> stored, or reserving -> deduplicated; failed or cancelled from any of the active ones. */
export type UploadState =
  | "waiting" | "hashing" | "reserving" | "transferring" | "completing"
  | "stored" | "deduplicated" | "failed" | "cancelled";

/** The `state-change` event's detail: one per transition, progress included. */
export interface StateChange {
  state: UploadState;
  /** `null` for a file just added. */
  previous: UploadState | null;
  /** Bytes of the current phase: hashed while hashing and reserving, sent from the transfer on; never decreasing within a run. */
  loaded: number;
  /** The file's size. */
  total: number;
  /** Retries made of the current phase's step. */
  attempt: number;
  /** Why it failed or was cancelled, or what the current retry is about. */
  error: LockerError | null;
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
  /** The id its events carried. */
  id: string;
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

interface FileDetail { file: Blob | File; id: string }
export interface UploaderEventMap {
  "state-change": CustomEvent<FileDetail & StateChange>;
  "hash-progress": CustomEvent<FileDetail & { loaded: number; total: number }>;
  "upload-progress": CustomEvent<FileDetail & { loaded: number; total: number }>;
  "deduplicated": CustomEvent<FileDetail & { ref: string }>;
  "retry": CustomEvent<FileDetail & { step: "reserve" | "transfer" | "complete"; attempt: number; delay: number; error: LockerError }>;
  "complete": CustomEvent<FileDetail & { result: UploadResult }>;
  "error": CustomEvent<FileDetail & { error: LockerError }>;
  "cancel": CustomEvent<FileDetail & { error: LockerError }>;
}
"#;
