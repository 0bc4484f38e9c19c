//! How alarms are fired and delivered: the operator's choices.
//!
//! Owns the alarm engine's settings (lateness window, retry policy,
//! channels, the server-wide webhook and SMTP relay) and their defaults.
//! It must never hold state: it only describes.

use std::time::Duration;

use tocsin_calendar::AlarmPolicy;

/// The server-wide webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Where alarms are POSTed.
    pub url: String,
    /// The HMAC-SHA256 key for the signature header (none: unsigned).
    pub secret: Option<String>,
}

/// The SMTP relay alarms are mailed through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `smtp://[user:password@]host[:port][?tls=required]` or `smtps://…`.
    pub url: String,
    /// The From address of alarm emails.
    pub from: String,
}

/// Everything the alarm engine is told.
#[derive(Debug, Clone)]
pub struct AlarmConfig {
    /// How far the calendar core looks, and the minimum instance interval.
    pub policy: AlarmPolicy,
    /// An alarm found overdue by more than this (after downtime) is
    /// recorded as skipped instead of delivered (invariant 8).
    pub lateness_window: Duration,
    /// Channels of users who chose none: `log`, plus `webhook` and `email`
    /// when the server has them.
    pub default_channels: Vec<String>,
    /// The server-wide webhook.
    pub webhook: Option<WebhookConfig>,
    /// The SMTP relay.
    pub smtp: Option<SmtpConfig>,
    /// Whether EMAIL alarms may go to addresses other than the user's own
    /// (a calendar server must not be an open relay).
    pub email_other_recipients: bool,
    /// Attempts per delivery before it is given up.
    pub delivery_attempts_max: u32,
    /// The first retry delay; doubled per attempt up to the maximum.
    pub retry_delay_initial: Duration,
    /// The longest retry delay.
    pub retry_delay_max: Duration,
    /// Timeout of one webhook request.
    pub webhook_timeout: Duration,
    /// Deliveries sent at the same time.
    pub deliveries_in_flight_max: usize,
    /// Objects planned per scheduler round.
    pub scheduler_batch_objects_max: usize,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig {
            policy: AlarmPolicy::default(),
            lateness_window: Duration::from_secs(2 * 3600),
            default_channels: vec!["log".to_owned()],
            webhook: None,
            smtp: None,
            email_other_recipients: false,
            delivery_attempts_max: 8,
            retry_delay_initial: Duration::from_secs(5),
            retry_delay_max: Duration::from_secs(600),
            webhook_timeout: Duration::from_secs(5),
            deliveries_in_flight_max: 128,
            scheduler_batch_objects_max: 512,
        }
    }
}

impl AlarmConfig {
    /// The delay before attempt `attempt + 1`, after `attempt` failures
    /// (1-based): exponential, capped.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.retry_delay_initial
            .saturating_mul(factor)
            .min(self.retry_delay_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let config = AlarmConfig::default();
        assert_eq!(config.retry_delay(1), Duration::from_secs(5));
        assert_eq!(config.retry_delay(2), Duration::from_secs(10));
        assert_eq!(config.retry_delay(4), Duration::from_secs(40));
        assert_eq!(config.retry_delay(30), Duration::from_secs(600));
    }
}
