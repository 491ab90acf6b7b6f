"""What a xiaozhi device shows besides the audio: the user's words (``stt``) on its screen.

The session tells its observers each transcript; this one passes the user's on to the
call's device when the call is a xiaozhi device's (the firmware shows ``stt`` text as the
user's line). The agent's own words would be ``tts sentence_start``, but they arrive when
the reply is generated, not when it plays, so they are left for a later change.
"""

from __future__ import annotations

from pipeline.observers import ObservedCall, SessionObserver
from transports.xiaozhi.port import XiaozhiPort
from transports.xiaozhi.protocol import XiaozhiProtocol


class DeviceCaptions(SessionObserver):
    def on_transcript(self, session: ObservedCall, turn_id: int, role: str, text: str) -> None:
        port = session.port
        if isinstance(port, XiaozhiPort) and role == "user" and text:
            port.post(XiaozhiProtocol.stt(text))
