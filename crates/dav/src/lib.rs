//! CalDAV and WebDAV over HTTP (placeholder until the CalDAV issue lands).
#![deny(missing_docs)]

pub mod auth;
