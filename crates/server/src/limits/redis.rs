//! [`RedisLimits`]: placeholder, replaced by the Redis backend.
