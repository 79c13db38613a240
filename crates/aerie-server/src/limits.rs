//! Limits on what clients may make the server do, so that no client — signed in or not — can
//! take its memory, its cores or its database.
//!
//! - [`ClientIp`]: who the client is, from the connection, or from `X-Forwarded-For` only
//!   through the configured number of trusted proxies.
//! - [`ApiLimits`]: budgets per client address and per token, separate for reads, searches,
//!   writes and sign-ins, answered with the IETF draft's `RateLimit-Policy` and `RateLimit`
//!   headers, and 429 with `Retry-After` when spent. Publishes also take from their
//!   namespace's budget in the database, shared by replicas (`aerie_db::Database::take_publish`).
//! - [`LoginBackoff`]: after a few failed sign-ins an account waits, longer after each.
//! - [`PasswordWork`]: password hashing (argon2, 19 MiB and most of a core each) runs a few at a
//!   time with a short queue; beyond it a request is turned away at once.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The client's address as the server sees it: the connection's peer, or, behind trusted
/// proxies, the address the nearest of them says it served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The client of a request that came from `peer` with `headers`, with `trusted` proxies in
    /// front of the server: each appends the address it was called from to
    /// `X-Forwarded-For`, so the client is the `trusted`-th entry from the right. Entries a
    /// client wrote itself further left are ignored.
    pub fn of(peer: IpAddr, headers: &HeaderMap, trusted: usize) -> ClientIp {
        if trusted == 0 {
            return ClientIp(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse().ok())
            .collect();
        let index = forwarded.len().saturating_sub(trusted);
        ClientIp(forwarded.get(index).copied().unwrap_or(peer))
    }
}

/// The settings of every limit here.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Reads (GET, HEAD) per minute, per client address and per token.
    /// `AERIE_READS_PER_MINUTE`.
    pub reads_per_minute: u32,
    /// Searches per minute, per client address and per token. `AERIE_SEARCHES_PER_MINUTE`.
    pub searches_per_minute: u32,
    /// Changes per minute, per client address and per token. `AERIE_WRITES_PER_MINUTE`.
    pub writes_per_minute: u32,
    /// Sign-ins, sign-ups and token creations per minute, per client address.
    /// `AERIE_LOGINS_PER_MINUTE`.
    pub logins_per_minute: u32,
    /// Failed sign-ins an account may have before it must wait. `AERIE_LOGIN_FAILURES`.
    pub login_failures_before_backoff: u32,
    /// The longest an account waits after failed sign-ins, in seconds (the wait doubles with
    /// each failure from one second). `AERIE_LOGIN_BACKOFF_MAX_SECONDS`.
    pub login_backoff_max_seconds: u64,
    /// Publishes a namespace may make at once. `AERIE_PUBLISH_BURST`.
    pub publish_burst: u32,
    /// Seconds for a namespace to earn one more publish. `AERIE_PUBLISH_REFILL_SECONDS`.
    pub publish_refill_seconds: u64,
    /// Passwords hashed or checked at once; 0 for one per core. `AERIE_PASSWORD_HASHES`.
    pub password_hashes: usize,
    /// Password checks that may wait for one of those; more are turned away (503).
    /// `AERIE_PASSWORD_QUEUE`.
    pub password_queue: usize,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            reads_per_minute: 1200,
            searches_per_minute: 300,
            writes_per_minute: 120,
            logins_per_minute: 10,
            login_failures_before_backoff: 5,
            login_backoff_max_seconds: 300,
            publish_burst: 30,
            publish_refill_seconds: 60,
            password_hashes: 0,
            password_queue: 16,
        }
    }
}

/// What each tenant's plugins may consume: the operator's defaults and ceilings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimitsConfig {
    /// Memory a call gets, across all its component's memories, unless its manifest asks
    /// for more (which needs consent). `AERIE_PLUGIN_MEMORY_MIB`.
    pub memory_mib: u64,
    /// The most memory a manifest may ask for (also each slot of the instance pool).
    /// `AERIE_PLUGIN_MAX_MEMORY_MIB`.
    pub max_memory_mib: u64,
    /// Seconds a call may take unless its manifest asks for more.
    /// `AERIE_PLUGIN_TIMEOUT_SECONDS`.
    pub timeout_seconds: u64,
    /// The longest a manifest may ask for. `AERIE_PLUGIN_MAX_TIMEOUT_SECONDS`.
    pub max_timeout_seconds: u64,
    /// Calls from outside a space running at once, across its plugins.
    /// `AERIE_SPACE_CONCURRENCY`.
    pub space_concurrency: u32,
    /// Plugins installed in one space, dependencies included.
    /// `AERIE_INSTALLATIONS_PER_SPACE`.
    pub installations_per_space: usize,
    /// Bytes of a key-value key. `AERIE_KV_MAX_KEY_BYTES`.
    pub kv_max_key_bytes: usize,
    /// Bytes of a key-value value. `AERIE_KV_MAX_VALUE_BYTES`.
    pub kv_max_value_bytes: usize,
    /// Keys a space's plugins may hold together. `AERIE_KV_KEYS_PER_SPACE`.
    pub kv_keys_per_space: u64,
    /// Bytes (keys and values) a space's plugins may hold together.
    /// `AERIE_KV_MIB_PER_SPACE`, in MiB.
    pub kv_mib_per_space: u64,
}

impl Default for PluginLimitsConfig {
    fn default() -> PluginLimitsConfig {
        PluginLimitsConfig {
            memory_mib: 64,
            max_memory_mib: 1024,
            timeout_seconds: 10,
            max_timeout_seconds: 300,
            space_concurrency: 128,
            installations_per_space: 100,
            kv_max_key_bytes: 1024,
            kv_max_value_bytes: 1024 * 1024,
            kv_keys_per_space: 100_000,
            kv_mib_per_space: 256,
        }
    }
}

impl PluginLimitsConfig {
    /// The limits a plugin whose manifest asks for nothing gets.
    pub fn defaults(&self) -> aerie_host::Limits {
        aerie_host::Limits {
            memory: self.memory_mib.saturating_mul(1024 * 1024),
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            ..aerie_host::Limits::default()
        }
    }

    /// The most a manifest may ask for.
    pub fn ceiling(&self) -> aerie_host::Limits {
        aerie_host::Limits {
            memory: self.max_memory_mib.saturating_mul(1024 * 1024),
            timeout: Duration::from_secs(self.max_timeout_seconds.max(1)),
            ..aerie_host::Limits::default()
        }
    }

    /// The key-value quota of each space.
    pub fn state_quota(&self) -> aerie_db::StateQuota {
        aerie_db::StateQuota {
            keys: self.kv_keys_per_space,
            bytes: self.kv_mib_per_space.saturating_mul(1024 * 1024),
        }
    }
}

/// Which budget a request takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Reading.
    Read,
    /// Searching the catalogue.
    Search,
    /// Changing something.
    Write,
    /// Signing in or up, or creating a token with a password.
    Login,
}

impl Budget {
    /// Its name in the `RateLimit` headers.
    pub fn name(self) -> &'static str {
        match self {
            Budget::Read => "reads",
            Budget::Search => "searches",
            Budget::Write => "writes",
            Budget::Login => "logins",
        }
    }

    /// The budget a request takes from; `None` for health checks, metric scrapes and the
    /// web UI's static assets (embedded, immutable, served from memory). The web UI's
    /// sign-in, sign-up and search take from the same budgets as the API's.
    pub fn of(method: &Method, path: &str) -> Option<Budget> {
        if matches!(path, "/healthz" | "/readyz" | "/metrics") || path.starts_with("/static/") {
            return None;
        }
        if *method == Method::POST
            && matches!(
                path,
                "/api/v1/sessions" | "/api/v1/users" | "/api/v1/tokens" | "/login" | "/signup"
            )
        {
            return Some(Budget::Login);
        }
        if matches!(path, "/api/v1/search" | "/search") {
            return Some(Budget::Search);
        }
        Some(if method.is_safe() {
            Budget::Read
        } else {
            Budget::Write
        })
    }
}

type Limiter<K> = RateLimiter<
    K,
    governor::state::keyed::DefaultKeyedStateStore<K>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// One budget's buckets: per client address and per token.
struct Buckets {
    budget: Budget,
    quota: Quota,
    /// Its `RateLimit-Policy` header, the same on every answer.
    policy: HeaderValue,
    by_ip: Limiter<IpAddr>,
    by_token: Limiter<[u8; 32]>,
}

/// Where a budget stands after a request took from it.
struct Standing<'a> {
    buckets: &'a Buckets,
    remaining: u32,
}

impl Buckets {
    fn new(budget: Budget, per_minute: u32) -> Buckets {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least one"));
        let window = quota.burst_size_replenished_in().as_secs().max(1);
        let policy = HeaderValue::try_from(format!(
            "\"{}\";q={};w={window}",
            budget.name(),
            quota.burst_size()
        ))
        .expect("a budget's policy is a valid header value");
        Buckets {
            budget,
            quota,
            policy,
            by_ip: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            by_token: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        }
    }

    /// Takes one request for `ip` and (if given) `token`: where the budget stands, or how long
    /// until it has room.
    fn take(&self, ip: IpAddr, token: Option<[u8; 32]>) -> Result<Standing<'_>, Duration> {
        // The limiter's own clock: making a new one reads the CPU's identity every time.
        let now = self.by_ip.clock().now();
        let by_ip = self
            .by_ip
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(now))?;
        let mut remaining = by_ip.remaining_burst_capacity();
        if let Some(token) = token {
            let by_token = self
                .by_token
                .check_key(&token)
                .map_err(|not_until| not_until.wait_time_from(now))?;
            remaining = remaining.min(by_token.remaining_burst_capacity());
        }
        Ok(Standing {
            buckets: self,
            remaining,
        })
    }
}

/// The API's budgets per client address and per token.
pub struct ApiLimits {
    buckets: [Buckets; 4],
}

impl ApiLimits {
    /// Budgets as `config` sets them.
    pub fn new(config: &LimitsConfig) -> ApiLimits {
        ApiLimits {
            buckets: [
                Buckets::new(Budget::Read, config.reads_per_minute),
                Buckets::new(Budget::Search, config.searches_per_minute),
                Buckets::new(Budget::Write, config.writes_per_minute),
                Buckets::new(Budget::Login, config.logins_per_minute),
            ],
        }
    }

    fn buckets(&self, budget: Budget) -> &Buckets {
        self.buckets
            .iter()
            .find(|buckets| buckets.budget == budget)
            .expect("every budget has buckets")
    }

    /// Forgets the buckets of clients not seen lately, so their number stays bounded.
    pub fn forget_idle(&self) {
        for buckets in &self.buckets {
            buckets.by_ip.retain_recent();
            buckets.by_token.retain_recent();
            buckets.by_ip.shrink_to_fit();
            buckets.by_token.shrink_to_fit();
        }
    }
}

/// The headers that tell a client where a budget stands (draft-ietf-httpapi-ratelimit-headers):
/// `RateLimit-Policy: "reads";q=1200;w=60` and `RateLimit: "reads";r=1199;t=1`, `t` being the
/// seconds until the budget is whole again.
fn rate_limit_headers(headers: &mut HeaderMap, standing: &Standing<'_>) {
    let quota = standing.buckets.quota;
    let spent = quota.burst_size().get().saturating_sub(standing.remaining);
    let whole_again = quota.replenish_interval() * spent;
    let reset = whole_again.as_secs() + u64::from(whole_again.subsec_nanos() > 0);
    headers.insert("ratelimit-policy", standing.buckets.policy.clone());
    if let Ok(value) = HeaderValue::try_from(format!(
        "\"{}\";r={};t={reset}",
        standing.buckets.budget.name(),
        standing.remaining
    )) {
        headers.insert("ratelimit", value);
    }
}

/// Middleware: takes the request from its budget per client address and per bearer token, and
/// answers 429 with `Retry-After` when either is spent.
pub async fn api_limits(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(budget) = Budget::of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let ip = crate::auth::client_ip(&state, request.extensions(), request.headers())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| {
            let digest = crate::auth::sha256(token.trim().as_bytes());
            let mut key = [0u8; 32];
            key.copy_from_slice(&digest);
            key
        });
    let buckets = state.api_limits.buckets(budget);
    match buckets.take(ip, token) {
        Ok(standing) => {
            let mut response = next.run(request).await;
            rate_limit_headers(response.headers_mut(), &standing);
            response
        }
        Err(wait) => {
            let mut response = ApiError::too_many(
                "rate_limited",
                format!(
                    "too many {} from this client; try again in {} s",
                    budget.name(),
                    crate::error::retry_after_seconds(wait)
                ),
                wait,
            )
            .into_response();
            rate_limit_headers(
                response.headers_mut(),
                &Standing {
                    buckets,
                    remaining: 0,
                },
            );
            response
        }
    }
}

/// Failed sign-ins per account: after `after` in a row, the account waits one second, then
/// twice as long after each further failure, up to `max`. A success forgets them.
pub struct LoginBackoff {
    after: u32,
    max: Duration,
    failures: moka::sync::Cache<String, (u32, Instant)>,
}

impl LoginBackoff {
    /// Backoff as `config` sets it.
    pub fn new(config: &LimitsConfig) -> LoginBackoff {
        let max = Duration::from_secs(config.login_backoff_max_seconds.max(1));
        LoginBackoff {
            after: config.login_failures_before_backoff.max(1),
            max,
            // Bounded whatever names attackers try; an entry outlives the longest wait.
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(max * 2 + Duration::from_secs(60))
                .build(),
        }
    }

    fn key(username: &str) -> String {
        username.to_ascii_lowercase()
    }

    /// How long `username` must still wait before a sign-in is tried, if it must.
    pub fn wait(&self, username: &str) -> Option<Duration> {
        let (failures, last) = self.failures.get(&Self::key(username))?;
        let over = failures.checked_sub(self.after)?;
        let wait = Duration::from_secs(1u64 << over.min(30)).min(self.max);
        wait.checked_sub(last.elapsed())
            .filter(|left| !left.is_zero())
    }

    /// Counts a failed sign-in for `username`.
    pub fn failed(&self, username: &str) {
        let key = Self::key(username);
        let failures = self.failures.get(&key).map_or(0, |(failures, _)| failures);
        self.failures
            .insert(key, (failures.saturating_add(1), Instant::now()));
    }

    /// Forgets `username`'s failures after a successful sign-in.
    pub fn succeeded(&self, username: &str) {
        self.failures.invalidate(&Self::key(username));
    }
}

/// Password hashing and checking, a few at a time on the blocking threads, with a short queue.
pub struct PasswordWork {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

impl PasswordWork {
    /// `at_once` hashes running (0: one per core) and `queue` more waiting.
    pub fn new(at_once: usize, queue: usize) -> PasswordWork {
        let at_once = if at_once == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            at_once
        };
        PasswordWork {
            running: Arc::new(Semaphore::new(at_once)),
            admitted: Arc::new(Semaphore::new(at_once + queue)),
        }
    }

    /// Runs `work` when a hashing slot is free, or fails at once (503) when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ApiResult<T> {
        let _admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::busy(
                    "password_checks_busy",
                    "too many password checks are running; try again in a moment",
                    Duration::from_secs(1),
                )
            })?;
        let _running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::try_from(value).unwrap());
        headers
    }

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let spoofed = forwarded("203.0.113.9, 198.51.100.7");
        // No trusted proxy: whatever the client wrote is ignored.
        assert_eq!(ClientIp::of(peer, &spoofed, 0).0, peer);
        // One proxy appended the address it was called from; what the client wrote before
        // that is ignored.
        assert_eq!(
            ClientIp::of(peer, &spoofed, 1).0,
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            ClientIp::of(peer, &spoofed, 2).0,
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(ClientIp::of(peer, &HeaderMap::new(), 1).0, peer);
        assert_eq!(ClientIp::of(peer, &forwarded("junk"), 1).0, peer);
    }

    #[test]
    fn requests_take_from_their_own_budget() {
        assert_eq!(
            Budget::of(&Method::GET, "/api/v1/search"),
            Some(Budget::Search)
        );
        assert_eq!(
            Budget::of(&Method::POST, "/api/v1/sessions"),
            Some(Budget::Login)
        );
        assert_eq!(
            Budget::of(&Method::POST, "/api/v1/tokens"),
            Some(Budget::Login)
        );
        assert_eq!(
            Budget::of(&Method::GET, "/api/v1/tokens"),
            Some(Budget::Read)
        );
        assert_eq!(
            Budget::of(&Method::DELETE, "/api/v1/tokens/1"),
            Some(Budget::Write)
        );
        assert_eq!(Budget::of(&Method::GET, "/healthz"), None);
    }

    #[test]
    fn a_budget_is_per_address_and_per_token() {
        let buckets = Buckets::new(Budget::Read, 2);
        let (one, two): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!(buckets.take(one, None).unwrap().remaining, 1);
        assert_eq!(buckets.take(one, None).unwrap().remaining, 0);
        assert!(buckets.take(one, None).is_err());
        // Another address has its own budget, but a token's is shared by all its addresses.
        assert!(buckets.take(two, Some([7; 32])).is_ok());
        assert!(buckets.take(two, None).is_ok());
        let three: IpAddr = "192.0.2.3".parse().unwrap();
        assert!(buckets.take(three, Some([7; 32])).is_ok());
        assert!(buckets.take(three, Some([7; 32])).is_err());
    }

    #[test]
    fn failed_sign_ins_make_an_account_wait_longer_each_time_until_one_succeeds() {
        let backoff = LoginBackoff::new(&LimitsConfig {
            login_failures_before_backoff: 2,
            login_backoff_max_seconds: 4,
            ..LimitsConfig::default()
        });
        backoff.failed("Ada");
        assert_eq!(backoff.wait("ada"), None);
        backoff.failed("ada");
        assert!(
            backoff
                .wait("ADA")
                .is_some_and(|wait| wait <= Duration::from_secs(1))
        );
        for _ in 0..10 {
            backoff.failed("ada");
        }
        assert!(
            backoff
                .wait("ada")
                .is_some_and(|wait| wait > Duration::from_secs(3))
        );
        assert_eq!(backoff.wait("bob"), None);
        backoff.succeeded("ada");
        assert_eq!(backoff.wait("ada"), None);
    }

    #[tokio::test]
    async fn password_work_turns_away_what_it_cannot_queue() {
        let work = Arc::new(PasswordWork::new(1, 1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let blocked = {
            let work = Arc::clone(&work);
            let wait = Arc::clone(&wait);
            tokio::spawn(async move { work.run(move || wait.lock().unwrap().recv().ok()).await })
        };
        // One runs (blocked), one may queue; the third is turned away at once.
        while work.running.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued = {
            let work = Arc::clone(&work);
            tokio::spawn(async move { work.run(|| 2).await })
        };
        while work.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = work.run(|| 3).await.unwrap_err();
        assert_eq!(refused.code, "password_checks_busy");
        release.send(()).unwrap();
        assert!(blocked.await.unwrap().is_ok());
        assert_eq!(queued.await.unwrap().unwrap(), 2);
    }
}
