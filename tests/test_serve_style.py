"""Tone presets and voice files: the instruction they build, and one clear error per bad input."""

from __future__ import annotations

import pytest

from replyrl.errors import UserError
from replyrl.serve.style import (
    MAX_VOICE_BYTES,
    MAX_VOICE_CHARS,
    MAX_VOICE_EXAMPLES,
    TONES,
    Style,
    StyleError,
    load_voice,
)

BASE = "Write a short reply."


def test_instruction_without_and_with_tone_and_voice():
    assert Style().instruction(BASE) == BASE
    assert set(TONES) == {"supportive", "curious", "witty", "expert"}
    assert Style("expert").instruction(BASE) == TONES["expert"]
    text = Style(None, ("  lol   same ", "big if true")).instruction(BASE)
    assert text.startswith(BASE + "\n\n")
    assert text.endswith('\n- "lol same"\n- "big if true"')  # whitespace collapsed
    assert Style("witty", ("x",)).to_record() == {"tone": "witty", "voice": ["x"]}


def test_unknown_tone_is_one_clear_error():
    with pytest.raises(StyleError, match=r"unknown tone 'sarcastic': choose one of supportive, "):
        Style("sarcastic")
    assert issubclass(StyleError, UserError)


def test_voice_file_reads_one_reply_per_line(tmp_path):
    f = tmp_path / "voice.txt"
    f.write_text("# my replies\n\nship it 🚀\n  nice work!  \n\u200b\n", encoding="utf-8")
    assert load_voice(f) == ("ship it 🚀", "nice work!")  # comments, blanks, zero-width skipped


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "has no replies"),
        (b"\n  \n# only a comment\n", "has no replies"),
        (b"\xe2\x80\x8b\n\x00\x01\n", "has no replies"),  # invisible and control characters only
        (b"\xff\xfe bad bytes\n", "is not UTF-8 text (byte 0)"),
        (b"x" * (MAX_VOICE_BYTES + 1), f"at most {MAX_VOICE_BYTES:,}"),
        (
            b"ok\n" + b"y" * (MAX_VOICE_CHARS + 1) + b"\n",
            f"voice.txt:2: a reply of {MAX_VOICE_CHARS + 1}",
        ),
        (
            "".join(f"reply {i}\n" for i in range(MAX_VOICE_EXAMPLES + 1)).encode(),
            f"has {MAX_VOICE_EXAMPLES + 1} past replies; give at most {MAX_VOICE_EXAMPLES}",
        ),
    ],
    ids=["empty", "blank", "invisible", "not-utf8", "huge", "long-line", "too-many"],
)
def test_bad_voice_files_are_one_clear_error_naming_the_file(tmp_path, content, message):
    f = tmp_path / "voice.txt"
    f.write_bytes(content)
    with pytest.raises(StyleError) as e:
        load_voice(f)
    assert message in str(e.value) and "voice.txt" in str(e.value)
    assert "\n" not in str(e.value)


def test_voice_path_that_is_missing_or_a_folder(tmp_path):
    with pytest.raises(StyleError, match="voice file not found"):
        load_voice(tmp_path / "nope.txt")
    with pytest.raises(StyleError, match="is not a file"):
        load_voice(tmp_path)


def test_voice_examples_given_directly_are_checked_too():
    with pytest.raises(StyleError, match="example 2 is empty"):
        Style(None, ("fine", " \u200b "))
    with pytest.raises(StyleError, match="expected a list"):
        Style(None, "one string")  # type: ignore[arg-type]
    with pytest.raises(StyleError, match=f"give at most {MAX_VOICE_EXAMPLES}"):
        Style(None, tuple(f"r{i}" for i in range(MAX_VOICE_EXAMPLES + 1)))
