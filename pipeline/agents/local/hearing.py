"""Offline speech recognition with pocketsphinx, constrained by a grammar of the dialogue.

An open language model garbles short commands on 8 kHz phone audio ("help" -> "help him",
"hello there" -> "over there"); a JSGF grammar of what the dialogue understands recognises
them reliably (tests/pipeline/agents/test_local_agent_parts.py). Dither is off so recognition
is repeatable.
Each call gets its own grammar decoder because a decoder holds per-utterance state.

"Repeat after me …" needs open vocabulary, which a grammar cannot give. The grammar still
spots the command (it matches the prefix and ignores the rest, in ~50 ms); only then is the
utterance decoded a second time with the general English language model. That decoder costs
about 95 MB and 0.5 s to build, against 29 MB for a grammar decoder, so one LM decoder is
shared by the whole process behind a lock instead of one per call: the command is rare, and
its second pass (0.5-1 s) is the only slow turn.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

RECOGNIZER_RATE_HZ = 16000

#: what the dialogue understands, as a JSGF grammar (pipeline/agents/local/dialogue.py)
INTENT_GRAMMAR = """#JSGF V1.0;
grammar bridge;
public <utterance> = [please] <command> [please];
<command> = <time> | <date> | <greeting> | <goodbye> | <help> | <repeat>;
<time> = [what] [is the] time [is it] | what time is it [now];
<date> = [what is] [the] date [today] | what day is it [today];
<greeting> = hello [there] | hi [there] | hey | good (morning | afternoon | evening);
<goodbye> = goodbye | bye [bye] | hang up | that is all;
<help> = help [me] | what can you do;
<repeat> = repeat after me;
"""

REPEAT_PREFIX = "repeat after me"


class Recognizer:
    """Creates per-call decoders that share one grammar file."""

    _grammar_lock = threading.Lock()
    _grammar_path: Path | None = None

    def __init__(self, grammar: str = INTENT_GRAMMAR) -> None:
        self._grammar = grammar
        self._lm_decoder: Any = None
        self._lm_lock = threading.Lock()

    def _grammar_file(self) -> Path:
        with self._grammar_lock:
            if Recognizer._grammar_path is None:
                directory = Path(tempfile.mkdtemp(prefix="bridge-asr-"))
                path = directory / "intents.jsgf"
                path.write_text(self._grammar)
                Recognizer._grammar_path = path
            return Recognizer._grammar_path

    def new_decoder(self) -> Any:
        """A decoder for one call (blocking, about 0.1-0.5 s: build it off the event loop)."""
        from pocketsphinx import Decoder

        return Decoder(
            samprate=RECOGNIZER_RATE_HZ,
            jsgf=str(self._grammar_file()),
            dither=False,
            loglevel="FATAL",
        )

    def transcribe(self, decoder: Any, pcm16_16k: bytes) -> str:
        """Recognise one whole utterance (blocking); empty string when nothing matched."""
        heard = _decode(decoder, pcm16_16k)
        if not heard.startswith(REPEAT_PREFIX):
            return heard
        with self._lm_lock:
            if self._lm_decoder is None:
                from pocketsphinx import Decoder

                self._lm_decoder = Decoder(
                    samprate=RECOGNIZER_RATE_HZ, dither=False, loglevel="FATAL"
                )
            free_text = _decode(self._lm_decoder, pcm16_16k)
        # Keep the grammar's reliable command word and take only the words after it.
        _, found, rest = free_text.partition(REPEAT_PREFIX)
        return f"{REPEAT_PREFIX} {rest.strip() if found else free_text}".strip()


class CallListener:
    """One call's hearing: its own grammar decoder, used by one recognition at a time.

    A decoder holds the state of the utterance it decodes, so two recognitions must not use
    it at once; yet a barged-in turn's recognition may still run in its thread when the next
    turn's starts, so the second waits for the first behind a lock.
    """

    def __init__(self, recognizer: Recognizer, decoder: Any = None) -> None:
        """``decoder``: one from :meth:`Recognizer.new_decoder` that no other call uses (a
        finished call's, reused); None: built by :meth:`prepare` or the first turn."""
        self._recognizer = recognizer
        self._decoder = decoder
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Build the decoder now (blocking, 0.1-0.5 s), so the first turn does not wait."""
        with self._lock:
            self._ensure_decoder()

    def transcribe(self, pcm16_16k: bytes) -> str:
        """Recognise one whole utterance (blocking); empty string when nothing matched."""
        with self._lock:
            return self._recognizer.transcribe(self._ensure_decoder(), pcm16_16k)

    def release_decoder(self) -> Any:
        """Hand the decoder over for another call; None if a recognition is still using it
        (a cancelled turn's thread) or none was built. The listener builds anew if used."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            decoder, self._decoder = self._decoder, None
            return decoder
        finally:
            self._lock.release()

    def _ensure_decoder(self) -> Any:
        if self._decoder is None:
            self._decoder = self._recognizer.new_decoder()
        return self._decoder


def _decode(decoder: Any, pcm16_16k: bytes) -> str:
    decoder.start_utt()
    decoder.process_raw(pcm16_16k, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return str(hypothesis.hypstr) if hypothesis is not None else ""
