"""Reading pages from the Web API: ``@odata.nextLink`` paging, change-tracking pages, FetchXML.

:func:`follow_pages` sends the first GET and then each ``@odata.nextLink`` unchanged (the
skiptoken must not be edited and no option may be added), with the same ``Prefer`` header on
every page, and stops if a link comes back twice. :func:`change_page` splits a
change-tracking page into rows and ``$deletedEntity`` tombstones. :func:`next_fetch` turns a
FetchXML query and the page it returned into the query for the next page (page number + 1,
the paging cookie decoded twice as documented). Dataverse pages hold at most 5000 rows.
:func:`rebased_link` makes a *stored* link (a delta link saved by an earlier run) relative to
the Web API root, so it is followed under today's base URL: local mode's emulator gets a new
port on every start, and an organization URL can change spelling (``localhost`` vs
``127.0.0.1``) without the stored cursor becoming useless.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from connector.dataverse.transport import WebApi
from connector.errors import DataverseError
from connector.ports import ChangePage

MAX_PAGE_SIZE = 5000
_PAGING_COOKIE = re.compile(r'pagingcookie="([^"]*)"')
_DELETED = "$deletedEntity"
_API_ROOT = re.compile(r"/api/data/v[0-9]+(?:\.[0-9]+)*/")


@dataclass(frozen=True, slots=True)
class FetchPage:
    """One page of a FetchXML query and the paging annotations for the next one."""

    rows: list[dict[str, Any]]
    more_records: bool
    paging_cookie: str | None


def max_page_preference(page_size: int) -> str:
    """``odata.maxpagesize=N`` (N capped at Dataverse's 5000)."""
    return f"odata.maxpagesize={max(1, min(page_size, MAX_PAGE_SIZE))}"


def follow_pages(
    api: WebApi, path: str, query: str | None, prefer: str | None
) -> Iterator[Mapping[str, Any]]:
    """Each page's JSON body, following ``@odata.nextLink`` until there is none."""
    headers = {"Prefer": prefer} if prefer else {}
    seen: set[str] = set()
    next_path: str | None = path
    while next_path is not None:
        body = api.send("GET", next_path, query=query, headers=headers).json() or {}
        yield body
        link = body.get("@odata.nextLink")
        if link is not None and link in seen:
            raise DataverseError(f"GET {path}: the same @odata.nextLink came back twice")
        if link:
            seen.add(link)
        next_path, query = link, None


def rebased_link(link: str) -> str | None:
    """``link``'s path and query after its Web API root (``/api/data/vX.Y/``), or None.

    A relative link is returned as is; an absolute one that is not under any Web API root
    gives None (the caller drops it). The result is relative, so the transport puts it under
    the current base: the token still goes only to the configured organization.
    """
    if not link.startswith(("http://", "https://")):
        return link.lstrip("/") or None
    parts = urlsplit(link)
    match = _API_ROOT.search(parts.path)
    if match is None or not parts.path[match.end() :]:
        return None
    rest = parts.path[match.end() :]
    return f"{rest}?{parts.query}" if parts.query else rest


def change_page(body: Mapping[str, Any]) -> ChangePage:
    """Rows, deleted ids (tombstones) and the delta link (last page only) of one page."""
    rows, deleted = [], []
    for row in body.get("value", []):
        if _DELETED in str(row.get("@odata.context", "")) or row.get("reason") == "deleted":
            deleted.append(str(row["id"]).lower())
        else:
            rows.append(row)
    return ChangePage(rows, deleted, body.get("@odata.deltaLink"))


def fetch_page(body: Mapping[str, Any]) -> FetchPage:
    """Rows and paging annotations of a FetchXML answer."""
    return FetchPage(
        rows=list(body.get("value", [])),
        more_records=bool(body.get("@Microsoft.Dynamics.CRM.morerecords", False)),
        paging_cookie=body.get("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"),
    )


def next_fetch(fetch: str, page: FetchPage) -> str | None:
    """The FetchXML for the page after ``page``, or None when it was the last one."""
    if not page.more_records:
        return None
    root = ET.fromstring(fetch)  # noqa: S314 - our own query text, not input from outside
    root.set("page", str(int(root.get("page", "1")) + 1))
    match = _PAGING_COOKIE.search(page.paging_cookie or "")
    if match:
        root.set("paging-cookie", unquote(unquote(match.group(1))))
    return ET.tostring(root, encoding="unicode")
