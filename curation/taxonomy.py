"""Matching folder names of image collections to label classes."""

import re
import unicodedata

# "1. Eczema 1677", "3. Atopic Dermatitis - 1.25k", "2. Melanoma 15.75k": a leading
# number and a trailing count that is not the real count.
_LEADING_NUMBER = re.compile(r"^\s*\d+\s*[.)_-]?\s*")
_TRAILING_COUNT = re.compile(r"[\s_-]*\d+(?:[.,]\d+)?\s*k?\s*$", re.IGNORECASE)
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalize_folder_name(name: str) -> str:
    """The comparable form of a folder name or alias: lower case, ASCII letters
    and digits, no leading number, no trailing count."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    text = _LEADING_NUMBER.sub("", text)
    text = _TRAILING_COUNT.sub("", text)
    return " ".join(_NOT_WORD.sub(" ", text).split())
