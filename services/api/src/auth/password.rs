//! Password hashing with argon2id, on a small bounded pool.
//!
//! The OpenStack clients authenticate on every command, so a verification
//! must stay in the tens of milliseconds: we use argon2id with 19 MiB of
//! memory and two passes (OWASP's minimum recommendation), which costs
//! about 20-40 ms on one core.
//!
//! Those 19 MiB are the danger. Left to itself, every login allocated its
//! own buffer on whichever blocking thread ran it, so 128 concurrent
//! logins (for users that need not even exist) took the process from
//! 26 MiB to 2.4 GiB in seconds, and the allocator kept it: freed
//! buffers stay in per-thread malloc arenas (issue 16, finding 1). So:
//!
//! - at most [`workers`] hashes run at once (one per core, capped at
//!   [`MAX_WORKERS`]): more would not finish sooner, only hold more memory;
//! - each running hash borrows one of at most [`workers`] buffers,
//!   allocated once and reused, never freed: the memory argon2 uses is
//!   bounded by `workers() × 19 MiB` for the life of the process;
//! - a request waits for a worker at most [`queue_wait`] (5 s), then gets
//!   [`Busy`] (the login answers 503 with `Retry-After`), so a burst costs
//!   time, not memory, and never an unbounded queue of stalled clients;
//! - a login for a user that does not exist does the same hash (with the
//!   current parameters) as one that does, so neither the response time
//!   nor the load reveals which user names exist.
//!
//! The pool is process-wide, not per `AppState`: the cores and the memory
//! it protects belong to the process, and the bootstrap and `cloud-aio`
//! hash passwords before any state exists.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use cloud_model::Error;
use rand::rngs::OsRng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// argon2id memory per hash, in KiB (19 MiB).
const M_COST_KIB: u32 = 19 * 1024;
/// argon2id passes.
const T_COST: u32 = 2;
/// argon2id lanes.
const P_COST: u32 = 1;
/// Length of the hash output in bytes.
const OUTPUT_LEN: usize = 32;

/// Most hashes at once, however many cores: each holds 19 MiB, so this
/// caps argon2's memory at about 150 MiB on a big machine while leaving
/// the other cores to the rest of the API.
pub const MAX_WORKERS: usize = 8;

/// What a client is told to wait (`Retry-After`, seconds) when every
/// worker stayed busy for the whole [`queue_wait`].
pub const RETRY_AFTER_SECS: u64 = 2;

/// How long a request waits for a worker by default before [`Busy`].
const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The salt of the hash done for users that do not exist (its value does
/// not matter: the result is thrown away; only the work counts).
const DUMMY_SALT: &[u8] = b"cloud-no-such-user-salt";

/// Every worker stayed busy for the whole [`queue_wait`]: try again later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

impl From<Busy> for Error {
    fn from(_: Busy) -> Error {
        Error::unavailable("Too many password checks are in progress; retry in a few seconds.")
    }
}

/// The bounded pool: permits for the workers and their reusable buffers.
struct Pool {
    permits: Semaphore,
    workers: usize,
    /// Buffers not in use; at most `workers` exist, since a buffer is taken
    /// only while holding a permit.
    idle: Mutex<Vec<Vec<Block>>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = cores.clamp(1, MAX_WORKERS);
        Pool {
            permits: Semaphore::new(workers),
            workers,
            idle: Mutex::new(Vec::with_capacity(workers)),
        }
    })
}

/// How many hashes may run at once in this process (the cores, at most
/// [`MAX_WORKERS`]); argon2's memory stays below this many times 19 MiB.
pub fn workers() -> usize {
    pool().workers
}

/// The queue wait in milliseconds (see [`set_queue_wait`]).
static QUEUE_WAIT_MS: AtomicU64 = AtomicU64::new(DEFAULT_QUEUE_WAIT.as_millis() as u64);

/// How long a request waits for a free worker before [`Busy`].
pub fn queue_wait() -> Duration {
    Duration::from_millis(QUEUE_WAIT_MS.load(Ordering::Relaxed))
}

/// Changes [`queue_wait`] for the whole process (tests use a short wait to
/// see the 503 without a long burst).
pub fn set_queue_wait(wait: Duration) {
    QUEUE_WAIT_MS.store(wait.as_millis() as u64, Ordering::Relaxed);
}

/// Password verifications done so far in this process, for users that
/// exist and for those that do not alike (the tests check that both
/// cost one).
static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many password verifications this process has done.
pub fn verifications() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).expect("valid argon2 parameters")
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// Runs `job` on a blocking thread with one worker's buffer, after waiting
/// at most [`queue_wait`] for a worker.
///
/// The permit and the buffer move into the blocking task and are given
/// back there, so a request cancelled while its hash runs (a client that
/// hangs up) can neither let more hashes run at once nor lose a buffer.
async fn on_worker<T, F>(job: F) -> Result<T, Busy>
where
    T: Send + 'static,
    F: FnOnce(&mut [Block]) -> T + Send + 'static,
{
    let pool = pool();
    let permit: SemaphorePermit<'static> =
        match tokio::time::timeout(queue_wait(), pool.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                cloud_service_common::metrics::count(
                    "cloud_api_password_busy_total",
                    "Password checks refused (503) because every worker stayed busy.",
                    &[],
                    1,
                );
                return Err(Busy);
            }
        };
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut buffer = pool
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| vec![Block::default(); params().block_count()]);
        let out = job(&mut buffer);
        pool.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buffer);
        out
    })
    .await
    // A panic inside argon2 is a bug, not load; the caller treats the
    // answer as a failed check (or a failed hash).
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing task failed");
        Busy
    })
}

/// Hashes `password` into a PHC string (salt and parameters included),
/// on one of the bounded workers.
pub async fn hash_password(password: String) -> Result<String, Error> {
    on_worker(move |buffer| hash_with(buffer, password.as_bytes()))
        .await
        .map_err(Error::from)?
}

fn hash_with(buffer: &mut [Block], password: &[u8]) -> Result<String, Error> {
    let fail = |e: &dyn std::fmt::Display| Error::internal(format!("password hashing failed: {e}"));
    let salt = SaltString::generate(&mut OsRng);
    let mut raw = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut raw).map_err(|e| fail(&e))?;
    let mut out = [0u8; OUTPUT_LEN];
    hasher()
        .hash_password_into_with_memory(password, salt_bytes, &mut out, buffer)
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params()).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored PHC hash, on one of the bounded
/// workers. When there is no user (`hash` is `None`) the same work is done
/// with the current parameters and thrown away, so the response time does
/// not reveal which user names exist. `Err(Busy)` when no worker came free
/// within [`queue_wait`].
pub async fn verify_password(hash: Option<String>, password: String) -> Result<bool, Busy> {
    let known = if hash.is_some() { "known" } else { "unknown" };
    let ok = on_worker(move |buffer| match &hash {
        Some(stored) => verify_with(buffer, stored, password.as_bytes()),
        None => {
            dummy_work(buffer, password.as_bytes());
            false
        }
    })
    .await?;
    VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
    cloud_service_common::metrics::count(
        "cloud_api_password_verifications_total",
        "Password verifications, for existing (known) and missing (unknown) users.",
        &[("user", known)],
        1,
    );
    Ok(ok)
}

/// The hash a login for a missing user (or an unreadable stored hash)
/// costs: the current parameters, in the worker's buffer.
fn dummy_work(buffer: &mut [Block], password: &[u8]) {
    let mut out = [0u8; OUTPUT_LEN];
    let _ = hasher().hash_password_into_with_memory(password, DUMMY_SALT, &mut out, buffer);
}

/// Verifies against a PHC string with the parameters it names (hashes made
/// with older parameters keep working), comparing in constant time.
fn verify_with(buffer: &mut [Block], stored: &str, password: &[u8]) -> bool {
    let Some((argon, salt, expected)) = parse(stored) else {
        dummy_work(buffer, password);
        return false;
    };
    let mut raw = [0u8; 64];
    let Ok(salt_bytes) = salt.as_salt().decode_b64(&mut raw) else {
        dummy_work(buffer, password);
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let done = if argon.params().block_count() <= buffer.len() {
        argon.hash_password_into_with_memory(password, salt_bytes, &mut out, buffer)
    } else {
        // Only a hash made with more memory than today's parameters: it
        // needs its own buffer, still one per worker at a time.
        argon.hash_password_into(password, salt_bytes, &mut out)
    };
    done.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

/// The hasher, salt and expected output a PHC string describes.
fn parse(stored: &str) -> Option<(Argon2<'static>, SaltString, Output)> {
    let parsed = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let salt = SaltString::from_b64(parsed.salt?.as_str()).ok()?;
    let expected = parsed.hash?;
    Some((Argon2::new(algorithm, version, params), salt, expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hash_password("s3cret".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(
            verify_password(Some(h.clone()), "s3cret".into()).await,
            Ok(true)
        );
        assert_eq!(verify_password(Some(h), "wrong".into()).await, Ok(false));
        assert_eq!(verify_password(None, "s3cret".into()).await, Ok(false));
        assert_eq!(
            verify_password(Some("not a hash".into()), "s3cret".into()).await,
            Ok(false)
        );
    }

    /// Hashes stored by the earlier code (argon2's own `hash_password`,
    /// possibly with other parameters) still verify, and ours verify with
    /// argon2's own verifier.
    #[tokio::test]
    async fn compatible_with_argon2s_own_phc_strings() {
        let old = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let stored = old.hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(
            verify_password(Some(stored.clone()), "pw".into()).await,
            Ok(true)
        );
        assert_eq!(verify_password(Some(stored), "pW".into()).await, Ok(false));
        // More memory than a worker's buffer: verified with its own.
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(24 * 1024, 1, 1, None).unwrap(),
        );
        let stored = big.hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(verify_password(Some(stored), "pw".into()).await, Ok(true));

        let ours = hash_password("pw".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(hasher().verify_password(b"pw", &parsed).is_ok());
        assert!(hasher().verify_password(b"px", &parsed).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_buffers_than_workers() {
        let checks: Vec<_> = (0..4 * workers())
            .map(|_| tokio::spawn(verify_password(None, "x".into())))
            .collect();
        for c in checks {
            assert_eq!(c.await.unwrap(), Ok(false));
        }
        let idle = pool().idle.lock().unwrap().len();
        assert!(
            idle <= workers(),
            "{idle} buffers for {} workers",
            workers()
        );
    }
}
