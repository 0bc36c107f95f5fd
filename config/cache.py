"""Django's Redis cache with one client object per connection pool, that degrades to a miss.

Django's RedisCacheClient builds a new `redis.Redis` for every cache call, and each
one fills a table of ~170 response callbacks: about 0.3 ms of CPU per call, three or
more calls a request (queue version, cached page, structure drawings). A `redis.Redis`
is thread-safe (each command takes a connection from the pool), so one per pool is
enough.

The cache only saves work (pages, drawings): with Redis unreachable a read is a miss
and a write is dropped, so pages still render from the database instead of failing.
`incr` still raises (its caller decides). Sessions do not live in the cache.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
_DOWN = (RedisConnectionError, RedisTimeoutError)


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def _down(self, op: str) -> None:
        logger.warning("cache %s skipped: Redis unreachable", op)

    def get(self, key: Any, default: Any) -> Any:
        try:
            return super().get(key, default)
        except _DOWN:
            self._down("get")
            return default

    def get_many(self, keys: Any) -> dict[Any, Any]:
        try:
            return super().get_many(keys)
        except _DOWN:
            self._down("get_many")
            return {}

    def has_key(self, key: Any) -> bool:
        try:
            return super().has_key(key)
        except _DOWN:
            self._down("has_key")
            return False

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        try:
            return super().add(key, value, timeout)
        except _DOWN:
            self._down("add")
            return False

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        try:
            super().set(key, value, timeout)
        except _DOWN:
            self._down("set")

    def set_many(self, data: Any, timeout: Any) -> None:
        try:
            super().set_many(data, timeout)
        except _DOWN:
            self._down("set_many")

    def touch(self, key: Any, timeout: Any) -> bool:
        try:
            return super().touch(key, timeout)
        except _DOWN:
            self._down("touch")
            return False

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            # Building the same client twice in a race is harmless: both share the pool.
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
