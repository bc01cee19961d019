"""WebSub publisher pings: tell the hub which feed URLs changed, in the background.

A ping is one ``POST`` per feed URL (``hub.mode=publish``, ``hub.url=<feed URL>``, form
encoded), the convention hubs such as pubsubhubbub.appspot.com and Switchboard follow. Pings
run on one daemon thread, so neither ``notify`` nor ``close`` ever blocks a build for long or
raises: a hub that is down costs a few logged warnings, never a feed.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from http.client import HTTPMessage
from typing import IO, Literal
from urllib.parse import urlencode

from .._version import __version__
from ..build.outputs import url
from ..build.publisher import BuildReport
from ..config import Settings

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"feedsvc/{__version__} (WebSub publisher)"
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 1.0
DEFAULT_TIMEOUT = 10.0
MAX_BACKOFF = 300.0  # one wait between two attempts never exceeds this ...
MAX_RETRY_AFTER = 120.0  # ... nor does a hub's Retry-After
CLI_WAIT_SECONDS = 5.0  # how long `feedsvc build` waits for its hub pings


def feed_urls(report: BuildReport, settings: Settings) -> list[str]:
    """The WebSub topics of a build: the public URLs of the current feed documents it wrote.

    Taken from the documents the plan listed and the writer wrote (their kind says what they
    are), never guessed from file names: archive pages, HTML pages and ``.gz`` siblings are
    not topics.
    """
    urls = [url(settings.base_url, f.path) for f in report.files if f.kind == "feed"]
    return list(dict.fromkeys(urls))


def announce(
    report: BuildReport,
    settings: Settings,
    notifier: HubNotifier | None = None,
    *,
    wait: float = CLI_WAIT_SECONDS,
) -> list[str]:
    """Ping the hub after a build that wrote feeds; the topics pinged. Never fails a build.

    The daemon passes its long-lived ``notifier`` (the pings go on in the background); the
    CLI passes none: a notifier is made for this build and given ``wait`` seconds to finish.
    """
    hub = settings.websub_hub
    topics = feed_urls(report, settings) if report.files else []
    if not topics or (notifier is None and hub is None):
        return []
    if notifier is not None:
        notifier.notify(topics)
        return topics
    assert hub is not None
    once = HubNotifier(hub, timeout=wait)
    once.notify(topics)
    once.close(timeout=wait)
    return topics


@dataclass(slots=True)
class _Pending:
    attempt: int  # attempts already made
    due: float  # time.monotonic() of the next attempt


@dataclass(frozen=True, slots=True)
class _Result:
    outcome: Literal["ok", "retry", "fail"]
    detail: str
    retry_after: float | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would turn into a GET without the form; report it instead."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> None:
        return None


class HubNotifier:
    """Pings one WebSub hub from a background thread, with retries and exponential backoff.

    ``notify`` only queues (a URL already waiting is not queued twice); connection errors,
    timeouts, 429 and 5xx are retried up to ``retries`` times after the first attempt, waiting
    ``backoff * 2**n`` s plus up to ``jitter`` of that (or the hub's ``Retry-After``, capped);
    other 4xx and 3xx answers are logged and dropped.
    """

    def __init__(
        self,
        hub_url: str,
        *,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = DEFAULT_USER_AGENT,
        jitter: float = 0.1,
        max_retry_after: float = MAX_RETRY_AFTER,
        random_fn: Callable[[], float] = random.random,
    ) -> None:
        self.hub_url = hub_url
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self.timeout = timeout
        self.user_agent = user_agent
        self.jitter = max(0.0, jitter)
        self.max_retry_after = max_retry_after
        self._random = random_fn
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._in_flight: str | None = None
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="websub-notifier", daemon=True)
        self._thread.start()

    # --- the caller's side: never blocks long, never raises --------------------------------
    def notify(self, feed_urls: Iterable[str]) -> None:
        """Queue a ping for each URL and return at once."""
        try:
            urls = list(dict.fromkeys(feed_urls))
            with self._cond:
                if self._closing:
                    log.warning("hub notifier closed: not pinging %s for %s", self.hub_url, urls)
                    return
                now = time.monotonic()
                for url in urls:
                    if url in self._pending:
                        log.debug("ping for %s already pending", url)
                        continue
                    self._pending[url] = _Pending(attempt=0, due=now)
                self._cond.notify_all()
        except Exception:  # a bug here must not fail a build
            log.exception("could not queue WebSub pings")

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for pending pings, then give up on the rest (logged)."""
        try:
            deadline = time.monotonic() + max(0.0, timeout)
            with self._cond:
                self._closing = True
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._done_before(deadline), timeout=max(0.0, timeout))
                left = list(self._pending) + ([self._in_flight] if self._in_flight else [])
                self._closed = True
                self._pending.clear()
                self._cond.notify_all()
            if left:
                log.warning("gave up on %d WebSub ping(s) to %s: %s", len(left), self.hub_url, left)
        except Exception:
            log.exception("could not close the WebSub notifier")

    def _done_before(self, deadline: float) -> bool:
        """Nothing in flight, and nothing pending that could still be tried before ``deadline``."""
        if self._in_flight is not None:
            return False
        return all(p.due >= deadline for p in self._pending.values())

    # --- the worker thread -------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                url = self._next()
                if url is None:
                    return
                job = self._pending.pop(url)
                self._in_flight = url
            try:
                result = self._ping(url)
            except Exception as e:  # a bug in a ping must not stop the others
                log.exception("WebSub ping for %s failed", url)
                result = _Result("fail", repr(e))
            with self._cond:
                self._in_flight = None
                self._settle(url, job, result)
                self._cond.notify_all()

    def _next(self) -> str | None:
        """The next URL whose attempt is due (waiting for it), or None once closed."""
        while not self._closed:
            if not self._pending:
                self._cond.wait()
                continue
            url, job = min(self._pending.items(), key=lambda item: item[1].due)
            wait = job.due - time.monotonic()
            if wait <= 0:
                return url
            self._cond.wait(wait)
        return None

    def _settle(self, url: str, job: _Pending, result: _Result) -> None:
        attempt = job.attempt + 1
        if result.outcome == "ok":
            log.info("pinged WebSub hub %s for %s (%s)", self.hub_url, url, result.detail)
            return
        if result.outcome == "fail" or attempt > self.retries:
            log.error(
                "WebSub ping to %s for %s failed after %d attempt(s), giving up: %s",
                self.hub_url,
                url,
                attempt,
                result.detail,
            )
            return
        delay = self._delay(job.attempt, result.retry_after)
        log.warning(
            "WebSub ping to %s for %s failed (%s); retry %d of %d in %.2f s",
            self.hub_url,
            url,
            result.detail,
            attempt,
            self.retries,
            delay,
        )
        if self._closed or url in self._pending:  # re-notified meanwhile: that one stands
            return
        self._pending[url] = _Pending(attempt=attempt, due=time.monotonic() + delay)

    def _delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        base = min(self.backoff * 2.0**retry, MAX_BACKOFF)
        return base + base * self.jitter * self._random()

    def _ping(self, url: str) -> _Result:
        body = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
        request = urllib.request.Request(
            self.hub_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": self.user_agent,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(64 * 1024)
                return _Result("ok", f"HTTP {response.status}")
        except urllib.error.HTTPError as e:
            e.close()
            detail = f"HTTP {e.code} {e.reason}"
            if e.code == 429 or e.code >= 500:
                return _Result("retry", detail, _retry_after(e.headers))
            return _Result("fail", detail)
        except urllib.error.URLError as e:  # refused, unknown host, timeout while connecting
            return _Result("retry", str(e.reason) or type(e.reason).__name__)
        except (OSError, http.client.HTTPException) as e:  # reset, timeout, garbled answer
            return _Result("retry", str(e) or type(e).__name__)
        except ValueError as e:  # not a URL urllib can open
            return _Result("fail", str(e))


def _retry_after(headers: Message | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
