"""Characters the model emits, and LibriSpeech-style text normalisation.

The vocabulary is fixed: index 0 is the CTC blank, then space, apostrophe and A-Z. Transcripts are normalised the
way LibriSpeech's are (upper case, punctuation dropped, numbers spelled out) before they are encoded.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

from num2words import num2words

BLANK = "<blank>"
DEFAULT_TOKENS: tuple[str, ...] = (BLANK, " ", "'", *string.ascii_uppercase)


@dataclass(frozen=True)
class Vocabulary:
    """Maps characters to model output indices; index 0 is always the CTC blank."""

    tokens: tuple[str, ...] = DEFAULT_TOKENS

    def __post_init__(self):
        if not self.tokens or self.tokens[0] != BLANK:
            raise ValueError(f"the first token must be the CTC blank {BLANK!r}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        object.__setattr__(self, "_index", {token: i for i, token in enumerate(self.tokens)})

    @property
    def blank(self) -> int:
        return 0

    @property
    def space(self) -> int:
        """The word separator's index (-1 if the vocabulary has none)."""
        return self._index.get(" ", -1)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Indices of the characters of already-normalised `text`; raises ValueError on a character outside it."""
        try:
            return [self._index[char] for char in text]
        except KeyError as error:
            raise ValueError(f"character {error.args[0]!r} is not in the vocabulary; "
                             "normalise the text first") from None

    def decode(self, indices) -> str:
        """Text of label indices (blanks dropped; no CTC collapsing, which is the decoder's job)."""
        return "".join(self.tokens[i] for i in indices if i != 0)


_ORDINAL = re.compile(r"^(\d+)(ST|ND|RD|TH)$")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_SYMBOL_WORDS = {"&": " AND ", "%": " PERCENT ", "+": " PLUS ", "@": " AT "}


def normalize_text(text: str) -> str:
    """LibriSpeech-style normalisation: "Mr. Smith paid $42, didn't he?" -> "MR SMITH PAID FORTY TWO DIDN'T HE".

    Upper case A-Z, apostrophes inside words kept, other punctuation dropped, numbers and ordinals spelled out,
    accents removed, single spaces.
    """
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = "".join(char for char in text if not unicodedata.combining(char)).upper()
    for symbol, word in _SYMBOL_WORDS.items():
        text = text.replace(symbol, word)
    words = []
    for token in re.split(r"[\s\-\u2013\u2014/]+", text):
        words.extend(_normalize_token(token))
    return " ".join(word for word in words if word)


def _normalize_token(token: str) -> list[str]:
    ordinal = _ORDINAL.match(token.strip(string.punctuation.replace("'", "")))
    if ordinal:
        return [_spell(int(ordinal.group(1)), ordinal=True)]
    plural = re.fullmatch(r"\W*(\d+)'?S\W*", token)
    if plural:  # "1990s" -> NINETEEN NINETIES, "4's" -> FOURS
        words = _spell_number(plural.group(1))
        return [words[:-1] + "IES" if words.endswith("Y") else words + "S"]
    pieces = []
    position = 0
    for match in _NUMBER.finditer(token):  # numbers may sit inside a token: "$42,"
        pieces.append(_letters(token[position:match.start()]))
        pieces.append(_spell_number(match.group()))
        position = match.end()
    pieces.append(_letters(token[position:]))
    return [piece for piece in pieces if piece]


def _letters(text: str) -> str:
    kept = "".join(char if ("A" <= char <= "Z" or char == "'") else " " for char in text)
    # An apostrophe belongs to a word ("DON'T", "JAMES'"); it never stands alone, opens a word, or closes a quote.
    words = []
    for word in kept.split():
        quoted = word.startswith("'") and word.endswith("'")
        word = word.strip("'") if quoted else word.lstrip("'")
        if word:
            words.append(word)
    return " ".join(words)


_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # 1,000 / 12,345,678.5: commas that group thousands


def _spell_number(digits: str) -> str:
    if "," in digits and not _THOUSANDS.fullmatch(digits):
        # Not thousands ("11,5", "3,5,7"): a decimal comma or a list; each part is read as its own number.
        return " ".join(_spell_number(part) for part in digits.split(",") if part)
    grouped, digits = "," in digits, digits.replace(",", "")
    if digits.count(".") == 1:
        whole, fraction = digits.split(".")
        return f"{_spell(int(whole))} POINT " + " ".join(_spell(int(d)) for d in fraction)
    if "." in digits:  # 1.2.3: a version or a date; each part on its own
        return " ".join(_spell_number(part) for part in digits.split(".") if part)
    if not grouped and len(digits) == 4 and 1100 <= int(digits) <= 2099 and not 2000 <= int(digits) <= 2009:
        return _spell(int(digits), year=True)  # years are read in pairs: EIGHTEEN THIRTY SEVEN
    return _spell(int(digits))


def _spell(number: int, ordinal: bool = False, year: bool = False) -> str:
    words = num2words(number, to="ordinal" if ordinal else "year" if year else "cardinal", lang="en")
    return re.sub(r"[\s,\-]+", " ", words.upper().replace(" AND ", " ")).strip()
