//! What the `Uploader` remembers of uploads in parts across reloads: one
//! `locker_core::resume::Record` per file and place, in IndexedDB (database `locker`, store
//! `uploads`, the record as JSON under its `record_key`). The digests `rememberDigests` keeps
//! (`remembered`) share the store under their own key prefix.
//!
//! Everything here is best effort: a browser without IndexedDB (some private modes), a full
//! disk or a blocked database only means an upload is not resumed after a reload, so every
//! failure reads as "nothing remembered" and is never an upload's error.

use std::cell::RefCell;

use locker_core::resume::Record;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbFactory, IdbObjectStore, IdbOpenDbRequest, IdbRequest};

use crate::error::LockerError;
use crate::js::{deferred, get, wait};

const DATABASE: &str = "locker";
const STORE: &str = "uploads";

thread_local! {
    /// The database, opened once per page (or worker).
    static DB: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

/// Settles when `request` does: its result, or the error it failed with.
pub(super) async fn settled(request: &IdbRequest) -> Result<JsValue, LockerError> {
    let (promise, finish) = deferred();
    let on_success = {
        let request = request.clone();
        let finish = finish.clone();
        Closure::<dyn FnMut()>::new(move || {
            finish.call(
                request
                    .result()
                    .map_err(|e| LockerError::from_js("IndexedDB", e)),
            );
        })
    };
    let on_error = Closure::<dyn FnMut()>::new(move || {
        finish.call(Err(LockerError::invalid("IndexedDB refused the request")));
    });
    request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
    request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    wait(promise).await
}

async fn open() -> Result<IdbDatabase, LockerError> {
    if let Some(db) = DB.with(|db| db.borrow().clone()) {
        return Ok(db);
    }
    let fail = |e: JsValue| LockerError::from_js("IndexedDB", e);
    // `indexedDB` of the global scope: a window or a worker alike.
    let factory: IdbFactory = get(&js_sys::global(), "indexedDB")
        .dyn_into()
        .map_err(|_| LockerError::invalid("no IndexedDB here"))?;
    let request: IdbOpenDbRequest = factory.open_with_u32(DATABASE, 1).map_err(fail)?;
    let upgrade = {
        let request = request.clone();
        Closure::<dyn FnMut()>::new(move || {
            // Version 1 is the only one: the store is made when the database is.
            if let Ok(db) = request.result().and_then(JsCast::dyn_into::<IdbDatabase>) {
                let _ = db.create_object_store(STORE);
            }
        })
    };
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let db: IdbDatabase = settled(&request)
        .await?
        .dyn_into()
        .map_err(|_| LockerError::invalid("IndexedDB gave no database"))?;
    DB.with(|slot| slot.replace(Some(db.clone())));
    Ok(db)
}

pub(super) async fn store(write: bool) -> Result<IdbObjectStore, LockerError> {
    let db = open().await?;
    let mode = if write {
        web_sys::IdbTransactionMode::Readwrite
    } else {
        web_sys::IdbTransactionMode::Readonly
    };
    db.transaction_with_str_and_mode(STORE, mode)
        .and_then(|t| t.object_store(STORE))
        .map_err(|e| LockerError::from_js("IndexedDB", e))
}

/// The record under `key`, if there is one and it reads as a record.
pub(super) async fn load(key: &str) -> Option<Record> {
    let store = store(false).await.ok()?;
    let request = store.get(&key.into()).ok()?;
    let text = settled(&request).await.ok()?.as_string()?;
    serde_json::from_str(&text).ok()
}

/// Stores `record` under `key`, replacing what was there.
pub(super) async fn save(key: &str, record: &Record) {
    let Ok(text) = serde_json::to_string(record) else {
        return;
    };
    if let Ok(store) = store(true).await {
        if let Ok(request) = store.put_with_key(&text.into(), &key.into()) {
            let _ = settled(&request).await;
        }
    }
}

/// Drops the record under `key`, if any.
pub(super) async fn forget(key: &str) {
    if let Ok(store) = store(true).await {
        if let Ok(request) = store.delete(&key.into()) {
            let _ = settled(&request).await;
        }
    }
}

/// Drops every record that can no longer be resumed at `now_s` (its reservation is over) or
/// does not read as a record: uploads abandoned by closing the page, never picked again.
pub(super) async fn sweep(now_s: u64) {
    let Ok(store) = store(false).await else {
        return;
    };
    let (Ok(keys), Ok(values)) = (store.get_all_keys(), store.get_all()) else {
        return;
    };
    let (Ok(keys), Ok(values)) = (settled(&keys).await, settled(&values).await) else {
        return;
    };
    let (Ok(keys), Ok(values)) = (
        keys.dyn_into::<js_sys::Array>(),
        values.dyn_into::<js_sys::Array>(),
    ) else {
        return;
    };
    // Both lists come in key order from one transaction: the n-th value is the n-th key's.
    for (key, value) in keys.iter().zip(values.iter()) {
        // The digests `rememberDigests` keeps share the store, under their own prefix, and are
        // bounded by `remembered::prune`.
        if key
            .as_string()
            .is_some_and(|k| k.starts_with(super::remembered::PREFIX))
        {
            continue;
        }
        let stale = value
            .as_string()
            .and_then(|t| serde_json::from_str::<Record>(&t).ok())
            .is_none_or(|r| r.is_stale(now_s));
        if let (true, Some(key)) = (stale, key.as_string()) {
            forget(&key).await;
        }
    }
}
