//! The `webhook` channel: an HTTP POST of the alarm document.
//!
//! Headers: `Idempotency-Key` (invariant 6: the same on every retry and
//! after a failover), and `X-Tocsin-Signature: sha256=<hex>`, an
//! HMAC-SHA256 of the body with the webhook's secret, when it has one.
//! Short timeouts; connections are kept alive and reused. A 2xx is
//! delivered; 408, 429 and 5xx are retried; any other answer is final.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SendOutcome;

/// The header with the body's HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Tocsin-Signature";
/// The idempotency header.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The node that sent the delivery (for operators correlating logs).
pub const NODE_HEADER: &str = "X-Tocsin-Node";
/// Idle connections kept per receiver.
const IDLE_CONNECTIONS_PER_HOST_MAX: usize = 32;

/// A webhook client shared by every delivery.
#[derive(Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
}

impl WebhookSender {
    /// A client with `timeout` per request.
    pub fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST_MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        WebhookSender { http }
    }

    /// POSTs `body` to `url`.
    pub async fn send(
        &self,
        url: &str,
        body: String,
        key: &str,
        secret: Option<&str>,
        node: u64,
    ) -> SendOutcome {
        let mut request = self
            .http
            .post(url)
            .header(NODE_HEADER, node.to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, key);
        if let Some(secret) = secret {
            request = request.header(
                SIGNATURE_HEADER,
                format!("sha256={}", sign(secret, body.as_bytes())),
            );
        }
        match request.body(body).send().await {
            Ok(response) => classify(response.status()),
            Err(e) => SendOutcome::Transient(format!("webhook {url}: {e}")),
        }
    }
}

/// HMAC-SHA256 of `body` with `secret`, in hex.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn classify(status: reqwest::StatusCode) -> SendOutcome {
    if status.is_success() {
        SendOutcome::Delivered
    } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        SendOutcome::Transient(format!("webhook answered {status}"))
    } else {
        SendOutcome::Permanent(format!("webhook answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(
            classify(reqwest::StatusCode::NO_CONTENT),
            SendOutcome::Delivered
        );
        assert!(matches!(
            classify(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
            SendOutcome::Transient(_)
        ));
        assert!(matches!(
            classify(reqwest::StatusCode::TOO_MANY_REQUESTS),
            SendOutcome::Transient(_)
        ));
        assert!(matches!(
            classify(reqwest::StatusCode::NOT_FOUND),
            SendOutcome::Permanent(_)
        ));
    }
}
