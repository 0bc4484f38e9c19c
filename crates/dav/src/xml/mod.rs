//! The XML of WebDAV and CalDAV: parsing request bodies into trees
//! ([`tree`]) and writing responses ([`write`]). Only this crate knows XML.

pub mod tree;
pub mod write;

pub use tree::{Element, XmlError, XmlLimits, parse};
pub use write::{APPLE_ICAL, CALDAV, CALSERVER, DAV, Multistatus, Prop, PropStat, Value};
