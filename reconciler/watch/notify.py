"""``watch --notify URL``: the events of :mod:`reconciler.watch.events`, sent with apprise.

apprise speaks Slack, Microsoft Teams, Discord, email, generic JSON webhooks
(``json://host/path``) and many more with one URL syntax; it is imported only when a
``--notify`` URL is given. A URL often holds a credential (a webhook token), so no URL is
ever logged or shown: a target is named by its position (``--notify #2``).

Sending runs in a worker thread (apprise is synchronous), bounded by apprise's own
connect and read timeouts; a target that fails is logged as a warning and never stops
the watcher.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.errors import UsageError
from reconciler.watch.events import Event

if TYPE_CHECKING:
    import apprise

__all__ = ["Notifier"]

# Loggers that may write a notify URL (apprise, and requests and urllib3 under it).
_QUIET_LOGGERS: tuple[str, ...] = ("apprise", "requests", "urllib3")

log = logging.getLogger("reconciler.watch")


class Notifier:
    """The ``--notify`` targets; :meth:`send` delivers events to every one."""

    def __init__(self, urls: Sequence[str]) -> None:
        # apprise loads its plugins at the first URL; one of them imports the
        # deprecated imghdr (apprise's to mend): that warning is not the user's.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self._targets = self._parse(urls)

    @staticmethod
    def _parse(urls: Sequence[str]) -> list[apprise.Apprise]:
        import apprise  # only with --notify: it loads requests and its plugins

        # apprise's own log lines may quote a target's URL, and so may those of the HTTP
        # library under it (urllib3 logs each request's path at -vv: a Slack or Discord
        # webhook's token is in it): only ours are written.
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        targets: list[apprise.Apprise] = []
        for number, url in enumerate(urls, start=1):
            target = apprise.Apprise()
            if not target.add(url):
                # The URL itself is not repeated: it may hold a token.
                raise UsageError(
                    f"--notify #{number} is not a URL apprise understands "
                    "(see https://github.com/caronc/apprise/wiki for the syntax)"
                )
            targets.append(target)
        return targets

    def __len__(self) -> int:
        return len(self._targets)

    async def send(self, events: Sequence[Event]) -> int:
        """Deliver each event to every target; how many deliveries succeeded."""
        delivered = 0
        for event in events:
            for number, target in enumerate(self._targets, start=1):
                ok = await asyncio.to_thread(self._notify, target, event)
                if ok:
                    delivered += 1
                else:
                    log.warning(
                        f"notify: --notify #{number} did not take the {event.kind} event",
                        extra={"event": "notify-failed", "kind": event.kind, "target": number},
                    )
        for event in events:
            log.info(
                f"notify: {event.title}",
                extra={"event": "notify", "kind": event.kind, "payload": dict(event.payload)},
            )
        return delivered

    @staticmethod
    def _notify(target: apprise.Apprise, event: Event) -> bool:
        try:
            return bool(
                target.notify(body=event.body, title=event.title, notify_type=event.severity)
            )
        except Exception as exc:  # a plugin's bug must not stop the watcher
            # Its type only: the message or traceback may quote the URL.
            log.warning(f"notify: a target raised {type(exc).__name__}")
            return False
