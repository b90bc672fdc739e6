//! Per-process limits that need no sharing between server processes: failed attempts per
//! client address (several `evoucher serve` processes behind a load balancer each keep their
//! own count, which at worst multiplies the allowance by the number of processes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The client's address, as the connection gave it (none in in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    /// The connection's peer; when that peer is a configured trusted proxy, the address it
    /// put last in `X-Forwarded-For` (the client it saw), so that everyone behind one proxy
    /// does not share one allowance.
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let trusted = parts
            .extensions
            .get::<crate::AppState>()
            .is_some_and(|s| peer.is_some_and(|p| s.trusted_proxies.contains(&p)));
        if trusted {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back();
            if forwarded.is_some() {
                return Ok(ClientAddr(forwarded));
            }
        }
        Ok(ClientAddr(peer))
    }
}

/// Counts failures per key (a client address, an account name) in a fixed window; past `max`
/// failures the key is refused until its window ends.
#[derive(Debug)]
pub struct FailureLimiter<K = ClientAddr> {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<K, (u32, Instant)>>,
}

impl<K: std::hash::Hash + Eq> FailureLimiter<K> {
    pub fn new(max: u32, window: Duration) -> Self {
        FailureLimiter {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when this address has failed too often.
    pub fn check(&self, who: &K) -> Result<(), u64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get(who) {
            Some((n, since)) if *n >= self.max && since.elapsed() < self.window => {
                Err((self.window - since.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Count one failure.
    pub fn fail(&self, who: K) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            let window = self.window;
            seen.retain(|_, (_, since)| since.elapsed() < window);
        }
        let e = seen.entry(who).or_insert((0, Instant::now()));
        if e.1.elapsed() >= self.window {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }
}
