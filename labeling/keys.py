"""The keyboard map of the review and adjudication screens (shown on every button)."""

from curation.models import LabelClass
from labeling.models import CannotJudgeReason

# Keys 0–9 are classes 0–9; class 10 (warts, molluscum, viral) is W.
CLASS_KEYS = {index: str(index) for index in range(10)} | {10: "W"}
REASON_KEYS = {
    CannotJudgeReason.NOT_SKIN: "1",
    CannotJudgeReason.BLURRY: "2",
    CannotJudgeReason.LIGHTING: "3",
    CannotJudgeReason.MULTIPLE_CONDITIONS: "4",
    CannotJudgeReason.TEXT_OR_DIAGRAM: "5",
    CannotJudgeReason.OTHER: "6",
}
# What a phone's narrow button shows; the full name stays its accessible name and tooltip.
SHORT_NAMES = {
    "atopic_dermatitis": "Atopic dermatitis",
    "bcc": "BCC",
    "melanocytic_nevi": "Nevus (NV)",
    "bkl": "BKL",
    "psoriasis_lichen_planus": "Psoriasis, LP",
    "seborrheic_keratoses": "Seb. keratosis",
    "fungal_infections": "Fungal",
    "viral_infections": "Viral, warts",
}


def class_buttons() -> list[dict]:
    return [
        {
            "key": CLASS_KEYS.get(label.index, ""),
            "code": label.code,
            "name": label.name,
            "short": SHORT_NAMES.get(label.code, label.name),
            "index": label.index,
        }
        for label in LabelClass.objects.order_by("index")
    ]


def reason_buttons() -> list[dict]:
    return [{"key": key, "code": reason.value, "name": reason.label} for reason, key in REASON_KEYS.items()]
