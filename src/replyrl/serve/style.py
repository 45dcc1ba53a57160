"""How a reply should sound: a tone preset and the person's own voice, turned into the prompt.

A *tone* is an instruction variant (the system message before the tweet). A *voice* is a few of the
person's own past replies, listed in the instruction as style examples, so a small model can copy
their length, punctuation and register. Without either, the policy gets the instruction it was
trained with (`DEFAULT_INSTRUCTION`, or the run's own with `--run`).

Voice files are plain text, one past reply per line (blank lines and lines starting with `#` are
ignored). They are read strictly: an empty file, one over `MAX_VOICE_BYTES`, more than
`MAX_VOICE_EXAMPLES` replies, or a reply over `MAX_VOICE_CHARS` is an error naming the file and
line, because every example goes into every prompt and a silently cut voice is not the person's.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from replyrl.errors import UserError, missing_path_error

TONES: dict[str, str] = {
    "supportive": (
        "Write a short, warm, supportive reply to this tweet. Encourage or congratulate the "
        "author about what they said, in your own words, and keep it under 280 characters."
    ),
    "curious": (
        "Write a short reply to this tweet that asks the author one specific, genuine question "
        "about what they said. Keep it under 280 characters."
    ),
    "witty": (
        "Write a short, witty reply to this tweet: light, clever and friendly, never mean. "
        "Stay on topic and keep it under 280 characters."
    ),
    "expert": (
        "Write a short reply to this tweet that adds one specific, accurate fact or tip about "
        "its topic, as someone who knows the field. Keep it under 280 characters."
    ),
}
"""Tone presets: name -> the instruction that replaces the default one."""

MAX_VOICE_EXAMPLES = 8
"""Past replies at most in a voice (all go into every prompt)."""
MAX_VOICE_CHARS = 400
"""Characters at most per past reply."""
MAX_VOICE_BYTES = 16 * 1024
"""Size at most of a voice file (a larger one is not a few past replies)."""


class StyleError(UserError, ValueError):
    """An unknown tone or an unusable voice (file)."""


@dataclass(frozen=True)
class Style:
    """A tone preset and voice examples; both optional."""

    tone: str | None = None
    """A key of `TONES`, or None for the model's own instruction."""
    voice: tuple[str, ...] = field(default_factory=tuple)
    """The person's past replies, used as style examples (at most `MAX_VOICE_EXAMPLES`)."""

    def __post_init__(self) -> None:
        check_tone(self.tone)
        object.__setattr__(self, "voice", check_voice(self.voice))

    def instruction(self, base: str) -> str:
        """The system instruction: the tone's (or `base`), then the voice examples if any.

        >>> Style("witty", ("lol same",)).instruction("ignored").endswith('- "lol same"')
        True
        """
        text = TONES[self.tone] if self.tone else base
        if self.voice:
            examples = "\n".join(f'- "{v}"' for v in self.voice)
            text += (
                "\n\nWrite it in the voice of these replies I wrote before (their length, "
                f"wording and punctuation), without copying them:\n{examples}"
            )
        return text

    def to_record(self) -> dict:
        """What feedback rows keep of the style: the tone name and the voice examples."""
        return {"tone": self.tone, "voice": list(self.voice)}


def check_tone(tone: str | None) -> str | None:
    """`tone` if it is None or names a preset; otherwise a StyleError listing the presets."""
    if tone is not None and tone not in TONES:
        raise StyleError(
            f"unknown tone {tone!r}: choose one of {', '.join(TONES)} (or leave it out)"
        )
    return tone


def visible_text(text: str) -> str:
    """`text` with whitespace collapsed and control/format characters (zero-width ones) removed:
    a reply made only of invisible characters is empty."""
    kept = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf") or c.isspace())
    return " ".join(kept.split())


def check_voice(lines: Sequence[str], where: str = "voice") -> tuple[str, ...]:
    """Validate voice examples already split into replies; `where` names them in errors."""
    if isinstance(lines, str):
        raise StyleError(f"{where}: expected a list of past replies, got one string")
    out = []
    for i, text in enumerate(lines, 1):
        if not isinstance(text, str):
            raise StyleError(f"{where} example {i}: expected text, got {type(text).__name__}")
        text = visible_text(text)
        if not text:
            raise StyleError(f"{where} example {i} is empty")
        if len(text) > MAX_VOICE_CHARS:
            raise StyleError(
                f"{where} example {i} has {len(text)} characters (at most {MAX_VOICE_CHARS}): "
                "use short replies you actually posted"
            )
        out.append(text)
    if len(out) > MAX_VOICE_EXAMPLES:
        raise StyleError(
            f"{where} has {len(out)} past replies; give at most {MAX_VOICE_EXAMPLES} "
            "(every one goes into every prompt): keep the most typical ones"
        )
    return tuple(out)


def load_voice(path: str | Path) -> tuple[str, ...]:
    """Read a voice file: one past reply per line; `#` lines and blank lines are skipped.

    Raises StyleError naming the file (and line) when it is missing, a folder, too large, not
    UTF-8 text, has no replies, too many, or a reply that is too long.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise StyleError(str(missing_path_error(p, "voice file")))
    if not p.is_file():
        raise StyleError(f"voice file {p} is not a file (give a text file, one reply per line)")
    size = p.stat().st_size
    if size > MAX_VOICE_BYTES:
        raise StyleError(
            f"voice file {p} is {size:,} bytes (at most {MAX_VOICE_BYTES:,}): give a few "
            f"(at most {MAX_VOICE_EXAMPLES}) of your past replies, one per line"
        )
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise StyleError(f"voice file {p} is not UTF-8 text (byte {e.start})") from None
    lines = [(n, visible_text(line)) for n, line in enumerate(text.splitlines(), 1)]
    replies = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if not replies:
        raise StyleError(
            f"voice file {p} has no replies: write a few of your past replies, one per line"
        )
    for n, line in replies:
        if len(line) > MAX_VOICE_CHARS:
            raise StyleError(
                f"{p}:{n}: a reply of {len(line)} characters (at most {MAX_VOICE_CHARS})"
            )
    return check_voice([line for _, line in replies], where=f"voice file {p}")
