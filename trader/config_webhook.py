"""Whether TELEGRAM_WEBHOOK_URL is a URL Telegram's own Bot API would accept for setWebhook.

Telegram's servers take "HTTPS URL to send updates to" only, and "Ports currently supported
for webhooks: 443, 80, 88, 8443" (https://core.telegram.org/bots/api#setwebhook). Anything
else is refused at every start ("bad webhook: An HTTPS URL must be provided for webhook"),
so with Telegram's own server it is a configuration error, said at start. A local Bot API
server (TELEGRAM_API_URL pointing elsewhere) may "use an HTTP URL for the webhook ... any
local IP address ... any port" (https://core.telegram.org/bots/api#using-a-local-bot-api-server),
so there the URL is left to that server to judge.
"""

from urllib.parse import urlsplit

TELEGRAM_API_HOST = "api.telegram.org"
WEBHOOK_PORTS = (443, 80, 88, 8443)


def webhook_url_problem(webhook_url: str | None, api_url: str | None) -> str | None:
    """One line naming TELEGRAM_WEBHOOK_URL when Telegram's own server would refuse it; None
    when it is fine, unset, or judged by another Bot API server (TELEGRAM_API_URL)."""
    if not webhook_url or (api_url and urlsplit(api_url).hostname != TELEGRAM_API_HOST):
        return None
    parts = urlsplit(webhook_url)
    if parts.scheme != "https":
        return ("TELEGRAM_WEBHOOK_URL must be an https:// URL: Telegram sends updates only to "
                "an HTTPS URL (setWebhook), e.g. https://<app>.herokuapp.com/<path>")
    try:
        port = parts.port or 443
    except ValueError:
        return "TELEGRAM_WEBHOOK_URL has an unreadable port"
    if port not in WEBHOOK_PORTS:
        return (f"TELEGRAM_WEBHOOK_URL port {port}: Telegram sends updates only to ports "
                f"{', '.join(map(str, WEBHOOK_PORTS))} (setWebhook); the public URL is not "
                "$PORT, the host forwards to it")
    return None
