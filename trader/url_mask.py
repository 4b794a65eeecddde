"""Credentials inside URLs (a password in user:pw@, a healthchecks ping path): masked for
display, and named for the log filter (trader/logs.py)."""

from urllib.parse import urlsplit, urlunsplit

# URLs whose path is the credential (a healthchecks ping URL: whoever has it can ping).
SECRET_PATH_URLS = {"heartbeat_url"}


def masked_url(url: str, *, hide_path: bool = False) -> str:
    """`url` with a password (user:pw@) and, with `hide_path`, the path and query masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":********@", 1)
    path, query = ("/********", "") if hide_path and (parts.path.strip("/") or parts.query) \
        else (parts.path, parts.query)
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment if not hide_path else ""))


def url_secrets(url: str | None) -> list[str]:
    """What `masked_url` hides in `url`, for the log filter: its password and, for the
    heartbeat URL, the path (empty parts left out)."""
    if not url:
        return []
    parts = urlsplit(url)
    return [part for part in (parts.password or "", parts.path.strip("/")) if part]
