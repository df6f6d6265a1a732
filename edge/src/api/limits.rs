//! Rate limits: a token bucket (GCRA, [`governor`]) per caller and class
//! of route: reads, writes and sign-ins, each with its own rate. A caller
//! is its principal when signed in, else its client address. Over the
//! limit: 429 `rate_limited` with `Retry-After` and the IETF httpapi
//! draft's `RateLimit-Policy` and `RateLimit` headers, before any service
//! is called.
//!
//! `/health` and `/openapi.json` are not limited: probes and tools read
//! them often, and they call no service.

use super::error::ApiError;
use crate::auth::{Principal, Verified};
use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use http::{HeaderName, HeaderValue, Method, StatusCode, header::RETRY_AFTER};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

/// How often callers whose buckets are full again are forgotten, so the
/// limiters hold only recent callers.
const FORGET_EVERY: Duration = Duration::from_secs(60);

const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Requests per second each caller may make, by class of route; a burst
/// may hold twice as many. 0: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// GETs.
    pub reads: u32,
    /// POSTs and PATCHes, but sign-ins.
    pub writes: u32,
    /// `POST /api/dev/sign-in`.
    pub sign_ins: u32,
}

/// Who a bucket is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CallerKey {
    Principal(Arc<Principal>),
    Address(IpAddr),
}

/// The buckets of one class of route.
#[derive(Debug)]
struct Class {
    name: &'static str,
    per_second: u32,
    limiter: DefaultKeyedRateLimiter<CallerKey>,
}

impl Class {
    fn new(name: &'static str, per_second: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not 0"));
        Some(Self {
            name,
            per_second,
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        })
    }

    /// The refusal of a request `wait` too early.
    fn refused(&self, wait: Duration) -> Response {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "over the limit of {} {} a second: retry after {seconds} s",
                self.per_second, self.name
            ),
        )
        .into_response();
        let headers = response.headers_mut();
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        let policy = format!("\"{}\";q={};w=1", self.name, self.per_second);
        let state = format!("\"{}\";r=0;t={seconds}", self.name);
        for (name, value) in [(RATE_LIMIT_POLICY, policy), (RATE_LIMIT, state)] {
            headers.insert(name, HeaderValue::try_from(value).expect("a header value"));
        }
        response
    }
}

/// The limiters of every class.
#[derive(Debug)]
pub(crate) struct RateLimits {
    reads: Option<Class>,
    writes: Option<Class>,
    sign_ins: Option<Class>,
}

impl RateLimits {
    pub(crate) fn new(settings: RateLimitSettings) -> Self {
        Self {
            reads: Class::new("reads", settings.reads),
            writes: Class::new("writes", settings.writes),
            sign_ins: Class::new("sign-ins", settings.sign_ins),
        }
    }

    /// The class of a request, if it is limited.
    fn class_of(&self, method: &Method, path: &str) -> Option<&Class> {
        if !path.starts_with("/api/") {
            return None;
        }
        match *method {
            Method::GET | Method::HEAD => self.reads.as_ref(),
            Method::POST if path == "/api/dev/sign-in" => self.sign_ins.as_ref(),
            _ => self.writes.as_ref(),
        }
    }

    /// Forgets callers whose buckets are full again, every
    /// [`FORGET_EVERY`], for as long as `limits` are in use.
    pub(crate) fn keep_forgetting(limits: &Arc<Self>) {
        let limits = Arc::downgrade(limits);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FORGET_EVERY).await;
                let Some(limits) = limits.upgrade() else { return };
                for class in [&limits.reads, &limits.writes, &limits.sign_ins]
                    .into_iter()
                    .flatten()
                {
                    class.limiter.retain_recent();
                    class.limiter.shrink_to_fit();
                }
            }
        });
    }
}

/// The middleware: inside authentication, which names the principal.
pub(crate) async fn limit(State(limits): State<Arc<RateLimits>>, request: Request, next: Next) -> Response {
    let Some(class) = limits.class_of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let key = match request.extensions().get::<Verified>() {
        Some(verified) => CallerKey::Principal(verified.principal.clone()),
        None => CallerKey::Address(
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| peer.ip()),
        ),
    };
    match class.limiter.check_key(&key) {
        Ok(()) => next.run(request).await,
        Err(not_until) => class.refused(not_until.wait_time_from(class.limiter.clock().now())),
    }
}
