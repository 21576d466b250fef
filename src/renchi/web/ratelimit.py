"""Per-user and per-address request limits, kept in memory or in Redis.

The limits follow the moving-window strategy of the `limits` library. Memory
storage counts per process, so each replica has its own budget. With
`RENCHI_REDIS_URL` set, every replica counts in the same Redis. When Redis
cannot be reached, requests pass and the failure is logged and counted: an
outage of the limiter must not take the API down with it.

Webhooks, health and metrics endpoints are never limited.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from starlette.requests import Request

from renchi.config import Settings
from renchi.observability import metrics
from renchi.web.errors import ApiError

logger = structlog.get_logger(__name__)

# Seconds the Redis client waits to connect or for a reply before the
# limiter gives up and lets the request pass.
REDIS_TIMEOUT_SECONDS = 0.5


class RateLimiter:
    """The rate limits of one application; each count is kept per scope and key."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        self._pool: ConnectionPool | None = None
        storage: Storage
        if settings.redis_url is not None:
            url = settings.redis_url.get_secret_value()
            self._pool = ConnectionPool.from_url(
                url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            storage = RedisStorage(
                "async+" + url,
                implementation="redispy",
                key_prefix=settings.rate_limit_key_prefix,
                wrap_exceptions=True,
                # limits passes its options to the redis client unchanged, but
                # types them as scalars only.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        else:
            storage = MemoryStorage()
        self.backend = "redis" if self._pool is not None else "memory"
        self._limiter = MovingWindowRateLimiter(storage)
        self.per_address = parse_many(settings.rate_limit_per_address)
        self.per_user = parse_many(settings.rate_limit_per_user)
        self.login_per_address = parse_many(settings.rate_limit_login_per_address)
        self.login_per_email = parse_many(settings.rate_limit_login_per_email)

    async def hit(self, scope: str, items: Sequence[RateLimitItem], key: str) -> None:
        """Count one request for `key`; raise 429 with Retry-After when over a limit."""
        if not self.enabled:
            return
        for item in items:
            try:
                allowed = await self._limiter.hit(item, scope, key)
                if allowed:
                    continue
                stats = await self._limiter.get_window_stats(item, scope, key)
            except StorageError as error:
                metrics.rate_limit_errors.labels(self.backend).inc()
                logger.warning(
                    "rate limit storage failed; request allowed",
                    backend=self.backend,
                    error=str(error.storage_error),
                )
                return
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            metrics.rate_limited.labels(scope).inc()
            raise ApiError(
                "RATE_LIMITED",
                f"Too many requests; retry in {retry_after} seconds.",
                headers={"Retry-After": str(retry_after)},
            )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def client_address(request: Request) -> str:
    # NOTE: behind a proxy this is the proxy's address, since `renchi serve`
    # does not trust X-Forwarded-For; every client behind it then shares one
    # per-address budget.
    return request.client.host if request.client else "unknown"


def rate_limiter_of(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter
