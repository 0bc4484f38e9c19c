//! The ways an alarm reaches a person: the log, a webhook, email.
//!
//! Each channel sends one outbox entry and says how it went:
//! [`SendOutcome::Delivered`], a transient failure worth retrying, or a
//! permanent refusal. Channels never touch the store; the delivery worker
//! records what they report. Every send is bounded in time.

pub mod email;
pub mod log;
pub mod webhook;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted by the receiver.
    Delivered,
    /// Failed in a way that may pass (connection refused, timeout, 5xx
    /// from a webhook, 4xx from SMTP): retry with backoff.
    Transient(String),
    /// Refused for good (SMTP 5xx, webhook 4xx): do not retry.
    Permanent(String),
}
