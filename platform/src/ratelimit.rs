//! Request rate limits: GCRA in one Redis Lua script (atomic across API processes, on the
//! Redis clock), keyed by tenant and endpoint class, with the plan's rate and burst or an
//! operator's unexpired override (migration 0008).

use crate::authz::Capability;
use crate::ids::TenantId;
use crate::redis_conn::{Redis, RedisError};

/// The classes requests are limited by (named in the API contract as `parse` reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EndpointClass {
    /// Questions (model work).
    Query,
    /// Uploads (parse, embed, index work).
    Upload,
    /// Reads.
    Read,
    /// Managing users, keys, the tenant.
    Admin,
}

impl EndpointClass {
    /// The class a capability's requests count against.
    pub fn of(cap: Capability) -> Self {
        match cap {
            Capability::QueriesAsk => Self::Query,
            Capability::DocumentsWrite => Self::Upload,
            Capability::DocumentsRead
            | Capability::QueriesRead
            | Capability::UsageRead
            | Capability::BillingRead
            | Capability::AuditRead => Self::Read,
            _ => Self::Admin,
        }
    }

    /// Every class.
    pub const ALL: [Self; 4] = [Self::Query, Self::Upload, Self::Read, Self::Admin];

    /// Position in [`EndpointClass::ALL`].
    pub fn index(&self) -> usize {
        *self as usize
    }

    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Upload => "upload",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether requests of this class are refused while the limiter is unreachable. Uploads
    /// and questions create queued work (which needs Redis anyway) and cost money: closed.
    /// Reads and administration are served from PostgreSQL: open, so an outage of the
    /// limiter does not lock customers out of their data or their user management.
    pub fn fails_closed(&self) -> bool {
        matches!(self, Self::Query | Self::Upload)
    }
}

/// A sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests per minute, sustained.
    pub per_minute: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// The limiter's answer, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The burst (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// Seconds to wait when refused (`Retry-After`).
    pub retry_after_secs: u64,
}

/// GCRA. KEYS[1]: the bucket; ARGV[1]: emission interval in ms; ARGV[2]: burst. The theoretical
/// arrival time (TAT) is stored with an expiry at which the bucket would be full anyway.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
";

fn secs(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000)
}

/// Takes one request from the bucket under the platform key `name` (limits that no tenant
/// owns: unauthenticated endpoints per client address and in total).
pub async fn check_key(redis: &Redis, name: &str, limit: Limit) -> Result<Decision, RedisError> {
    let key = format!("{}rl:{name}:{}x{}", redis.prefix(), limit.per_minute, limit.burst);
    gcra(redis, key, limit).await
}

/// True the first time it is asked for `key` within `window` (a Redis `SET NX EX`): one
/// audit event per window for refusals that repeat (a client hammering a limit, a failed
/// login retried), instead of one per request.
pub async fn first_in_window(redis: &Redis, key: &str, window_secs: u64) -> Result<bool, RedisError> {
    let mut conn = redis.conn().await?;
    let set: Option<String> = redis::cmd("SET")
        .arg(format!("{}once:{key}", redis.prefix()))
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(window_secs.max(1))
        .query_async(&mut conn)
        .await?;
    Ok(set.is_some())
}

/// The Redis key of an account for [`count_failure`] and [`locked_for`]: `scope` and a
/// digest of `account` (an email, say), so no address is kept in clear.
pub fn account_key(scope: &str, account: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{scope}:{account}").as_bytes());
    format!("{scope}:{}", hex::encode(&d[..16]))
}

/// Seconds `key` stays locked by [`count_failure`], if it is locked now.
pub async fn locked_for(redis: &Redis, key: &str) -> Result<Option<u64>, RedisError> {
    let mut conn = redis.conn().await?;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}lock:{key}", redis.prefix()))
        .query_async(&mut conn)
        .await?;
    Ok((ttl > 0).then_some(ttl as u64))
}

/// Counts a failure of `key` (within `lockout_secs`); at `max` the key is locked for
/// `lockout_secs` and the wait is returned. The Redis twin of the per-account login
/// throttle in PostgreSQL, for accounts that have no tenant to keep it in (an unknown
/// organisation, an operator).
pub async fn count_failure(
    redis: &Redis,
    key: &str,
    max: u32,
    lockout_secs: u64,
) -> Result<Option<u64>, RedisError> {
    let mut conn = redis.conn().await?;
    let count_key = format!("{}fails:{key}", redis.prefix());
    let (n, _): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg(&count_key)
        .cmd("EXPIRE")
        .arg(&count_key)
        .arg(lockout_secs.max(1))
        .query_async(&mut conn)
        .await?;
    if n as u32 >= max {
        let _: () = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&count_key)
            .ignore()
            .cmd("SET")
            .arg(format!("{}lock:{key}", redis.prefix()))
            .arg(1)
            .arg("EX")
            .arg(lockout_secs.max(1))
            .ignore()
            .query_async(&mut conn)
            .await?;
        return Ok(Some(lockout_secs));
    }
    Ok(None)
}

async fn gcra(redis: &Redis, key: String, limit: Limit) -> Result<Decision, RedisError> {
    let interval = 60_000u64.div_ceil(u64::from(limit.per_minute.max(1)));
    let mut conn = redis.conn().await?;
    let (ok, remaining, reset_ms, retry_ms): (i64, i64, i64, i64) = redis::Script::new(GCRA)
        .key(key)
        .arg(interval)
        .arg(limit.burst.max(1))
        .invoke_async(&mut conn)
        .await?;
    Ok(Decision {
        allowed: ok == 1,
        limit: limit.burst,
        remaining: remaining.max(0) as u32,
        reset_secs: secs(reset_ms),
        retry_after_secs: secs(retry_ms).max(1),
    })
}

/// Takes one request from `tenant`'s bucket for `class`.
pub async fn check(
    redis: &Redis,
    tenant: TenantId,
    class: EndpointClass,
    limit: Limit,
) -> Result<Decision, RedisError> {
    // The limit is part of the key: when it changes (plan change, override set or expired)
    // the new limit starts from a full bucket instead of inheriting a stricter one's debt.
    let key = redis.tenant_key(
        tenant,
        &format!("rl:{}:{}x{}", class.as_str(), limit.per_minute, limit.burst),
    );
    gcra(redis, key, limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_map_to_classes() {
        assert_eq!(
            EndpointClass::of(Capability::DocumentsWrite),
            EndpointClass::Upload
        );
        assert_eq!(EndpointClass::of(Capability::QueriesAsk), EndpointClass::Query);
        assert_eq!(EndpointClass::of(Capability::AuditRead), EndpointClass::Read);
        assert_eq!(EndpointClass::of(Capability::UsersManage), EndpointClass::Admin);
        assert!(EndpointClass::Upload.fails_closed() && !EndpointClass::Read.fails_closed());
        assert_eq!(EndpointClass::parse("read"), Some(EndpointClass::Read));
        assert_eq!(EndpointClass::parse("everything"), None);
        assert_eq!(secs(1), 1);
        assert_eq!(secs(1000), 1);
        assert_eq!(secs(1001), 2);
        assert_eq!(secs(-5), 0);
    }
}
