from curation.models import LabelClass
from curation.taxonomy import normalize_folder_name


def label_class_list() -> list[LabelClass]:
    return list(LabelClass.objects.order_by("index"))


def label_classes_by_code() -> dict[str, LabelClass]:
    return {label.code: label for label in LabelClass.objects.all()}


def folder_name_index() -> dict[str, str]:
    """Normalized folder name → class code, from each class's aliases, name and code."""
    index: dict[str, str] = {}
    for label in LabelClass.objects.all():
        for name in (*label.aliases, label.name, label.code.replace("_", " ")):
            key = normalize_folder_name(name)
            if key:
                index.setdefault(key, label.code)
    return index
