//! Small helpers for talking to JavaScript values: property access, plain objects, timers and
//! abort signals. Property access on objects the module created cannot fail; where it can
//! (caller-supplied values), a missing or throwing property reads as `undefined`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use crate::error::LockerError;

#[wasm_bindgen]
extern "C" {
    /// The global `setTimeout`, in a window and in a worker alike.
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    /// `setTimeout(handler, ms, arg)`: `handler(arg)` after `ms`.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout_with(handler: &Function, ms: f64, arg: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// `value[name]`, or `undefined`.
pub(crate) fn get(value: &JsValue, name: &str) -> JsValue {
    if !value.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A string property, if it is one.
pub(crate) fn get_string(value: &JsValue, name: &str) -> Option<String> {
    get(value, name).as_string()
}

/// A number property, if it is one.
pub(crate) fn get_number(value: &JsValue, name: &str) -> Option<f64> {
    get(value, name).as_f64()
}

/// A plain object with the given properties.
pub(crate) fn obj(props: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in props {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

/// Runs `f` once when `signal` aborts. The listener is removed when the guard is dropped.
pub(crate) struct AbortListener {
    signal: AbortSignal,
    closure: Closure<dyn FnMut()>,
}

pub(crate) fn on_abort(signal: &AbortSignal, f: impl FnOnce() + 'static) -> AbortListener {
    let mut f = Some(f);
    let closure = Closure::<dyn FnMut()>::new(move || {
        if let Some(f) = f.take() {
            f();
        }
    });
    let _ = signal.add_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
    AbortListener {
        signal: signal.clone(),
        closure,
    }
}

impl Drop for AbortListener {
    fn drop(&mut self) {
        let _ = self
            .signal
            .remove_event_listener_with_callback("abort", self.closure.as_ref().unchecked_ref());
    }
}

/// A promise settled from callbacks, once: later settlements are ignored. `finish` is cheap to
/// clone into every callback that may end the operation; `wait` awaits the outcome.
pub(crate) fn deferred() -> (Promise, Finish) {
    let slot: Rc<RefCell<Option<(Function, Function)>>> = Rc::default();
    let promise = {
        let slot = slot.clone();
        Promise::new(&mut move |resolve, reject| {
            *slot.borrow_mut() = Some((resolve, reject));
        })
    };
    (promise, Finish(slot))
}

#[derive(Clone)]
pub(crate) struct Finish(Rc<RefCell<Option<(Function, Function)>>>);

impl Finish {
    pub(crate) fn call(&self, result: Result<JsValue, LockerError>) {
        if let Some((resolve, reject)) = self.0.borrow_mut().take() {
            let _ = match result {
                Ok(v) => resolve.call1(&JsValue::NULL, &v),
                Err(e) => reject.call1(&JsValue::NULL, &e.into()),
            };
        }
    }
}

/// Awaits a [`deferred`] promise; a rejection comes back as the `LockerError` it carried.
pub(crate) async fn wait(promise: Promise) -> Result<JsValue, LockerError> {
    JsFuture::from(promise)
        .await
        .map_err(LockerError::from_rejection)
}

/// Fails with [`LockerError::aborted`] if `signal` has already fired.
pub(crate) fn check_aborted(signal: Option<&AbortSignal>) -> Result<(), LockerError> {
    if signal.is_some_and(AbortSignal::aborted) {
        Err(LockerError::aborted())
    } else {
        Ok(())
    }
}

/// Runs `on_stall` if `arm` is not called again within `ms` milliseconds of the last call.
/// Dropping it stops the timer, so the callback never outlives its owner.
pub(crate) struct Watchdog {
    ms: f64,
    handle: RefCell<JsValue>,
    fire: Closure<dyn FnMut()>,
}

impl Watchdog {
    pub(crate) fn new(ms: f64, on_stall: impl FnMut() + 'static) -> Self {
        Self {
            ms,
            handle: RefCell::new(JsValue::UNDEFINED),
            fire: Closure::new(on_stall),
        }
    }

    /// (Re)starts the countdown.
    pub(crate) fn arm(&self) {
        self.arm_for(self.ms);
    }

    /// (Re)starts the countdown with `ms` instead of the usual wait, this time only.
    pub(crate) fn arm_for(&self, ms: f64) {
        let next = set_timeout(self.fire.as_ref().unchecked_ref(), ms);
        clear_timeout(&self.handle.replace(next));
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        clear_timeout(&self.handle.replace(JsValue::UNDEFINED));
    }
}

/// Settles as `promise` does, or with `None` if `ms` milliseconds pass first.
pub(crate) async fn within(promise: &Promise, ms: f64) -> Result<Option<JsValue>, JsValue> {
    let late = Object::new();
    let mut handle = JsValue::UNDEFINED;
    let timer = Promise::new(&mut |resolve, _| {
        handle = set_timeout_with(&resolve, ms, &late);
    });
    let outcome = JsFuture::from(Promise::race(&js_sys::Array::of2(promise, &timer))).await;
    clear_timeout(&handle);
    outcome.map(|v| (!Object::is(&v, &late)).then_some(v))
}

/// Waits `ms` milliseconds, or until `signal` aborts (then fails with `aborted`).
pub(crate) async fn sleep(ms: f64, signal: Option<&AbortSignal>) -> Result<(), LockerError> {
    check_aborted(signal)?;
    let mut handle = JsValue::UNDEFINED;
    let mut reject_fn: Option<Function> = None;
    let timer = Promise::new(&mut |resolve, reject| {
        handle = set_timeout(&resolve, ms);
        reject_fn = Some(reject);
    });
    let _listener = match (signal, reject_fn) {
        (Some(s), Some(reject)) => Some(on_abort(s, move || {
            let _ = reject.call1(&JsValue::NULL, &LockerError::aborted().into());
        })),
        _ => None,
    };
    let outcome = JsFuture::from(timer).await;
    clear_timeout(&handle);
    outcome.map(|_| ()).map_err(LockerError::from_rejection)
}

/// A typed value handed to JavaScript as a plain object: encoded by serde in its wire form (the
/// same JSON the Worker sends), parsed by the browser's `JSON`.
pub(crate) fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, LockerError> {
    let text = serde_json::to_string(value)
        .map_err(|e| LockerError::new(crate::error::code::BAD_ANSWER, e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|e| LockerError::from_js("JSON.parse", e))
}
