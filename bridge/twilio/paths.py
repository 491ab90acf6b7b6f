"""Where Twilio reaches the bridge, and the absolute URLs we give Twilio to call back.

Kept apart from the route handlers so the REST side (``bridge dial``, transfers) can build
callback URLs without importing Starlette handlers, and the handlers can never disagree with
the URLs handed out.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

#: the voice webhook (answers with ``<Connect><Stream>``)
TWIML_PATH = "/twiml"
#: the Media Stream WebSocket
STREAM_PATH = "/stream"
#: call-progress callbacks (``StatusCallback``): initiated, ringing, answered, completed
STATUS_PATH = "/twilio/status"
#: answering-machine detection verdicts (``AsyncAmdStatusCallback``)
AMD_PATH = "/twilio/amd"
#: the ``<Dial action>`` of a transfer: what happens once the dialled person's leg ended
DIAL_RESULT_PATH = "/twilio/dial-result"


def public_url(host: str, path: str, query: Mapping[str, str] | None = None) -> str:
    """``https://host/path?query``: Twilio only calls back over HTTPS in production, and
    signs exactly this URL (query included), so it is built in one place."""
    url = f"https://{host}{path}"
    if query:
        url += "?" + urlencode(dict(query))
    return url
