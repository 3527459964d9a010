//! One module per command group.

pub(crate) mod admin;
pub(crate) mod doctor;
pub(crate) mod files;
pub(crate) mod logs;
pub(crate) mod profile;
pub(crate) mod put;

use locker_core::{Location, LockerRef};

use crate::Fail;

/// A `locker://ns/path` argument naming one file.
pub(crate) fn file_ref(arg: &str) -> Result<LockerRef, Fail> {
    match Location::parse(arg) {
        Ok(Location::File(r)) => Ok(r),
        Ok(Location::Place(p)) => Err(Fail::Usage(format!(
            "{p} is a prefix; this command wants one file (locker://ns/path)"
        ))),
        Err(e) => Err(Fail::Usage(format!("{arg}: {e}"))),
    }
}
