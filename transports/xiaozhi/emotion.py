"""The face a xiaozhi device shows with a reply: one ``llm`` emotion per reply, from its words.

The firmware draws one of a fixed set of emotions (``main/display``), each with its emoji;
the reference server asks its model for an emoji and sends the emotion it stands for. Our
agents are told to answer without emoji, so the words decide, simply and predictably:

1. an emoji of the firmware's set in the text wins (the first one found);
2. else the first keyword of :data:`KEYWORDS` found (whole words, any case; a few Chinese
   ones, since these devices are mostly used in Chinese);
3. else ``neutral``.

Only the reply's first sentence is known when its audio starts, so that is what is read.
"""

from __future__ import annotations

import re

#: the firmware's emotions and their emoji
EMOJI = {
    "neutral": "😶",
    "happy": "🙂",
    "laughing": "😆",
    "funny": "😂",
    "sad": "😔",
    "angry": "😠",
    "crying": "😭",
    "loving": "😍",
    "embarrassed": "😳",
    "surprised": "😯",
    "shocked": "😱",
    "thinking": "🤔",
    "winking": "😉",
    "cool": "😎",
    "relaxed": "😌",
    "delicious": "🤤",
    "kissy": "😘",
    "confident": "😏",
    "sleepy": "😴",
    "silly": "😜",
    "confused": "🙄",
}
NEUTRAL = "neutral"
_BY_EMOJI = {emoji: emotion for emotion, emoji in EMOJI.items()}

#: words that set the face, in the order they are tried
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("laughing", ("haha", "hahaha", "lol", "哈哈")),
    ("sad", ("sorry", "unfortunately", "sadly", "抱歉", "对不起", "遗憾")),
    ("surprised", ("wow", "whoa", "哇")),
    ("thinking", ("hmm", "let me think", "let me check", "让我想想")),
    ("loving", ("love", "爱你")),
    (
        "happy",
        ("great", "glad", "happy", "wonderful", "awesome", "congratulations", "太好了", "开心"),
    ),
)
_PATTERNS = [
    (
        emotion,
        re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words if w.isascii()) + r")\b", re.I),
        [w for w in words if not w.isascii()],
    )
    for emotion, words in KEYWORDS
]


def emotion_of(text: str) -> tuple[str, str]:
    """The emotion for a reply that begins with ``text``, and its emoji."""
    for char in text:
        emotion = _BY_EMOJI.get(char)
        if emotion is not None:
            return emotion, char
    for emotion, ascii_words, other_words in _PATTERNS:
        if ascii_words.search(text) or any(word in text for word in other_words):
            return emotion, EMOJI[emotion]
    return NEUTRAL, EMOJI[NEUTRAL]
