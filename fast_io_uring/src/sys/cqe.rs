//! What a transfer's CQE result means when it is an error: `-errno` becomes the error the
//! contract names (C7). Which errors stick is `fast_io::Sticky`'s rule, shared by every backend.

use std::io;

use fast_io::Error;

/// The error for a CQE result `-errno` of a transfer.
pub(crate) fn transfer_error(result: i32) -> Error {
    Error::from_os(io::Error::from_raw_os_error(-result))
}
