"""What a xiaozhi device shows besides the audio: the user's words (``stt``) on its screen.

The session tells its observers each transcript; this one passes the user's on to the
call's device when the call is a xiaozhi device's (the firmware shows ``stt`` text as the
user's line), typed turns included. The agent's own words are not observed here: they must
reach the screen as their audio plays, so they travel with the audio as captions
(``pipeline/captions.py``) and the port sends each as ``tts sentence_start`` right before
its sentence's first packet, with one ``llm`` face per reply (``transports/xiaozhi/port.py``).
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
