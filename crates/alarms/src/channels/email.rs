//! The `email` channel: the alarm as a message through an SMTP relay.
//!
//! Plain text and HTML parts with the summary, the time in the calendar's
//! zone, the location and the description. The `Message-ID` is derived
//! from the idempotency key (invariant 6), so a receiver sees a retried or
//! re-sent alarm as the same message. Connections to the relay are pooled.
//! SMTP 5xx is a permanent refusal; anything else is retried.

use lettre::message::{Mailbox, MultiPart, header};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::SendOutcome;
use crate::payload::AlarmPayload;

/// An SMTP relay shared by every delivery.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Why the relay settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EmailConfigError {
    /// The relay URL is not one lettre understands.
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    /// The From address does not parse.
    #[error("invalid From address {0:?}")]
    From(String),
}

impl EmailSender {
    /// A sender through the relay at `url` (`smtp://host:port`,
    /// `smtp://user:pass@host:587?tls=required`, `smtps://host`).
    pub fn new(
        url: &str,
        from: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, EmailConfigError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| EmailConfigError::Url(e.to_string()))?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse()
            .map_err(|_| EmailConfigError::From(from.to_owned()))?;
        Ok(EmailSender { transport, from })
    }

    /// Sends the alarm to `recipient` (a `mailto:` URI or a bare address).
    pub async fn send(
        &self,
        payload: &AlarmPayload,
        recipient: &str,
        late_seconds: f64,
    ) -> SendOutcome {
        let address = recipient.trim_start_matches("mailto:");
        let to: Mailbox = match address.parse() {
            Ok(to) => to,
            Err(e) => return SendOutcome::Permanent(format!("invalid recipient {address:?}: {e}")),
        };
        let message = match compose(&self.from, to, payload, late_seconds) {
            Ok(message) => message,
            Err(e) => return SendOutcome::Permanent(format!("cannot compose the message: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => SendOutcome::Delivered,
            Err(e) if e.is_permanent() => SendOutcome::Permanent(format!("SMTP refused: {e}")),
            Err(e) => SendOutcome::Transient(format!("SMTP: {e}")),
        }
    }
}

/// The Message-ID of a delivery.
pub fn message_id(key: &str) -> String {
    format!("<{key}@tocsin.alarm>")
}

fn compose(
    from: &Mailbox,
    to: Mailbox,
    payload: &AlarmPayload,
    late_seconds: f64,
) -> Result<Message, lettre::error::Error> {
    let subject = format!("Reminder: {}", payload.headline());
    let text = text_body(payload, late_seconds);
    let html = html_body(payload, late_seconds);
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id(&payload.idempotency_key)))
        .header(header::UserAgent::from(
            concat!("tocsin/", env!("CARGO_PKG_VERSION")).to_owned(),
        ))
        .multipart(MultiPart::alternative_plain_html(text, html))
}

fn lines(payload: &AlarmPayload, late_seconds: f64) -> Vec<(&'static str, String)> {
    let mut lines = vec![(
        "What",
        payload
            .summary
            .clone()
            .unwrap_or_else(|| "(no title)".into()),
    )];
    if let Some(when) = &payload.start_local {
        lines.push(("When", format!("{when} ({})", payload.time_zone)));
    }
    if let Some(location) = &payload.location {
        lines.push(("Where", location.clone()));
    }
    lines.push(("Calendar", payload.calendar.name.clone()));
    if late_seconds >= 60.0 {
        lines.push((
            "Note",
            format!("this reminder is {:.0} minutes late", late_seconds / 60.0),
        ));
    }
    lines
}

fn text_body(payload: &AlarmPayload, late_seconds: f64) -> String {
    let mut body: String = lines(payload, late_seconds)
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    if let Some(description) = &payload.description {
        body.push('\n');
        body.push_str(description);
        body.push('\n');
    }
    body
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_body(payload: &AlarmPayload, late_seconds: f64) -> String {
    let mut body = String::from("<!DOCTYPE html><html><body><table>");
    for (k, v) in lines(payload, late_seconds) {
        body.push_str(&format!(
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
            escape_html(&v)
        ));
    }
    body.push_str("</table>");
    if let Some(description) = &payload.description {
        body.push_str(&format!(
            "<p style=\"white-space: pre-wrap\">{}</p>",
            escape_html(description)
        ));
    }
    body.push_str("</body></html>");
    body
}
