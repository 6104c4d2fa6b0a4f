"""The clinical context of an image that a reader may see before deciding.

The same keys as `curation.selectors.images.image_clinical_context` (which gives them as imported),
here in words for a screen. Only these keys of `Image.metadata` ever leave this module: never a source
label, a diagnosis (`dx`), a lesion or patient id, or any other column of the
source file.
"""

from curation.selectors.images import CLINICAL_CONTEXT_FIELDS

CLINICAL_KEYS = CLINICAL_CONTEXT_FIELDS
_FITZPATRICK = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI"}
_MODALITIES = {"clinical": "Clinical photo", "dermoscopic": "Dermoscopic", "dermoscopy": "Dermoscopic"}
_UNKNOWN = {"", "unknown", "none", "nan", "null", "?"}


def _text(value) -> str:
    text = str(value).strip() if value is not None else ""
    return "" if text.lower() in _UNKNOWN else text


def _age(value) -> str:
    text = _text(value)
    try:
        return f"{float(text):g}" if text else ""
    except ValueError:
        return text


def _fitzpatrick(value) -> str:
    text = _text(value).upper().removeprefix("TYPE").strip()
    return _FITZPATRICK.get(text, text)


def _modality(value) -> str:
    text = _text(value)
    return _MODALITIES.get(text.lower(), text.capitalize())


def clinical_context(metadata: dict | None) -> list[dict]:
    """[{key, name, value}] in a fixed order, for the keys that have a value."""
    metadata = metadata if isinstance(metadata, dict) else {}
    values = {
        "age": ("Age", _age(metadata.get("age"))),
        "sex": ("Sex", _text(metadata.get("sex")).capitalize()),
        "body_site": ("Body site", _text(metadata.get("body_site")).replace("_", " ").capitalize()),
        "fitzpatrick": ("Fitzpatrick type", _fitzpatrick(metadata.get("fitzpatrick"))),
        "modality": ("Modality", _modality(metadata.get("modality"))),
    }
    return [{"key": key, "name": name, "value": value} for key, (name, value) in values.items() if value]
