//! Passwords and HTTP Basic authentication.
//!
//! Owns how passwords are hashed (argon2id, a random salt per hash) and
//! verified — on a few dedicated threads ([`PasswordWorkers`]) so memory
//! stays bounded — and a bounded cache of recently verified credentials so a
//! client that sends Basic auth on every request does not pay an argon2
//! verification each time. A cache entry is valid only while the stored
//! hash it was checked against is unchanged, so a password change or a
//! removed user takes effect on the next request. Failed attempts are
//! never cached. It must never log or keep a password in clear.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Verified credentials remembered; past it the cache is cleared.
const VERIFIED_CREDENTIALS_MAX: usize = 10_000;

/// argon2id with OWASP's recommended parameters (19 MiB, 2 passes).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `stored`.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Threads that hash and verify passwords.
const PASSWORD_THREADS: usize = 2;
/// Password jobs waiting for a thread; callers wait when it is full.
const PASSWORD_JOBS_QUEUED_MAX: usize = 256;

enum PasswordJob {
    Verify {
        password: String,
        stored: String,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    Hash {
        password: String,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
}

/// A small, fixed set of threads for argon2id work. Each hash holds
/// 19 MiB while it runs, and the allocator keeps a thread's peak for that
/// thread: on a few dedicated threads the server's memory stays bounded
/// (about 40 MiB for this), however many clients log in at once.
#[derive(Clone)]
pub struct PasswordWorkers {
    jobs: std::sync::mpsc::SyncSender<PasswordJob>,
}

impl PasswordWorkers {
    /// Starts the threads.
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<PasswordJob>(PASSWORD_JOBS_QUEUED_MAX);
        let queue = std::sync::Arc::new(Mutex::new(queue));
        for n in 0..PASSWORD_THREADS {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || run_password_thread(&queue))?;
        }
        Ok(PasswordWorkers { jobs })
    }

    /// Whether `password` matches `stored` (false if the workers are gone).
    pub async fn verify(&self, password: String, stored: String) -> bool {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let jobs = self.jobs.clone();
        let job = PasswordJob::Verify {
            password,
            stored,
            reply,
        };
        let sent = tokio::task::spawn_blocking(move || jobs.send(job).is_ok())
            .await
            .unwrap_or(false);
        sent && answer.await.unwrap_or(false)
    }

    /// A new PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let jobs = self.jobs.clone();
        let job = PasswordJob::Hash { password, reply };
        let sent = tokio::task::spawn_blocking(move || jobs.send(job).is_ok())
            .await
            .unwrap_or(false);
        if !sent {
            return Err("password workers stopped".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("password workers stopped".into()))
    }
}

fn run_password_thread(queue: &Mutex<std::sync::mpsc::Receiver<PasswordJob>>) {
    loop {
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            Ok(PasswordJob::Verify {
                password,
                stored,
                reply,
            }) => {
                let _ = reply.send(verify_password(&password, &stored));
            }
            Ok(PasswordJob::Hash { password, reply }) => {
                let _ = reply.send(hash_password(&password));
            }
            Err(_) => return,
        }
    }
}

/// User name and password from an `Authorization: Basic …` header value.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Credentials verified recently, keyed by a salted hash of (user,
/// password) and remembering the stored hash they matched.
pub struct CredentialCache {
    key: [u8; 32],
    verified: Mutex<HashMap<[u8; 32], String>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        CredentialCache {
            key,
            verified: Mutex::new(HashMap::new()),
        }
    }
}

impl CredentialCache {
    fn fingerprint(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(user.as_bytes());
        hasher.update([0]);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// Whether these credentials were verified against this same stored hash.
    pub fn is_verified(&self, user: &str, password: &str, stored: &str) -> bool {
        let fingerprint = self.fingerprint(user, password);
        self.verified
            .lock()
            .map(|cache| cache.get(&fingerprint).is_some_and(|s| s == stored))
            .unwrap_or(false)
    }

    /// Remembers a successful verification.
    pub fn remember(&self, user: &str, password: &str, stored: &str) {
        let fingerprint = self.fingerprint(user, password);
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CREDENTIALS_MAX {
                cache.clear();
            }
            cache.insert(fingerprint, stored.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn basic_credentials_are_decoded() {
        assert_eq!(
            parse_basic("Basic YWxpY2U6czNjcjM6dA=="),
            Some(("alice".into(), "s3cr3:t".into()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[test]
    fn the_cache_forgets_credentials_when_the_stored_hash_changes() {
        let cache = CredentialCache::default();
        cache.remember("alice", "pw", "hash-1");
        assert!(cache.is_verified("alice", "pw", "hash-1"));
        assert!(!cache.is_verified("alice", "pw", "hash-2"));
        assert!(!cache.is_verified("alice", "other", "hash-1"));
        assert!(!cache.is_verified("bob", "pw", "hash-1"));
    }
}
