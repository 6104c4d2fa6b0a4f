"""Page input of the labeling views: bad input is a 400 with a message naming the field."""

from django import forms
from django.core.exceptions import ValidationError

from curation.models import ExclusionReason, LabelClass
from labeling.models import CannotJudgeReason
from labeling.selectors.agreement import CONFIDENCE_FILTERS

_MAX_ID = 2**63 - 1


def _class_choices() -> list[tuple[str, str]]:
    return [("", "—"), *LabelClass.objects.order_by("index").values_list("code", "name")]


class AdjudicationForm(forms.Form):
    """A class, or cannot-judge with a reason; an optional note."""

    label = forms.ChoiceField(required=False)
    cannot_judge = forms.BooleanField(required=False)
    reason = forms.ChoiceField(choices=[("", "—"), *CannotJudgeReason.choices], required=False)
    note = forms.CharField(required=False, max_length=4000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = _class_choices()

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if data.get("cannot_judge"):
            if data.get("label"):
                raise ValidationError("Give either a class or cannot be judged, not both.")
            if not data.get("reason"):
                self.add_error("reason", "Cannot be judged needs a reason.")
        elif not data.get("label"):
            self.add_error("label", "Choose a class, or cannot be judged with a reason.")
        elif data.get("reason"):
            self.add_error("reason", "A reason goes with cannot be judged only.")
        return data


class AdjudicationUndoForm(forms.Form):
    image = forms.IntegerField(min_value=1, max_value=_MAX_ID)


class OverrideForm(forms.Form):
    """A curator's final class or exclusion, with the reason (kept in the audit log) and a confirmation."""

    label = forms.ChoiceField(required=False, label="Final class")
    exclusion_reason = forms.ChoiceField(
        choices=[("", "—"), *ExclusionReason.choices], required=False, label="or exclude because"
    )
    reason = forms.CharField(
        max_length=2000, label="Why (goes in the audit log)", help_text="e.g. biopsy result, duplicate of #12"
    )
    confirm = forms.BooleanField(label="I override the readers' decision on this image")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = _class_choices()

    def clean(self):
        data = super().clean()
        fields_valid = not self.has_error("label") and not self.has_error("exclusion_reason")
        if fields_valid and bool(data.get("label")) == bool(data.get("exclusion_reason")):
            raise ValidationError("Give either a class or an exclusion reason.")
        return data


class AgreementFilterForm(forms.Form):
    min_overlap = forms.IntegerField(
        required=False, min_value=2, max_value=1_000_000, label="Least overlap for a kappa", initial=10
    )
    confidence = forms.ChoiceField(
        required=False, choices=list(CONFIDENCE_FILTERS.items()), label="Images", initial="all"
    )

    def values(self) -> dict:
        return {
            "min_overlap": self.cleaned_data.get("min_overlap") or 10,
            "confidence": self.cleaned_data.get("confidence") or "all",
        }


class HistorySearchForm(forms.Form):
    image = forms.IntegerField(required=False, min_value=1, max_value=_MAX_ID, label="Image id")
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)


class _IdListInput(forms.Textarea):
    """Image ids as repeated fields (checkboxes on a list of images) or typed into one box."""

    def value_from_datadict(self, data, files, name):
        return data.getlist(name) if hasattr(data, "getlist") else [data.get(name, "")]

    def format_value(self, value):
        return " ".join(value) if isinstance(value, list) else value


class ImageIdsField(forms.Field):
    """A list of image ids, separated by commas, spaces or new lines, in the order given, without repeats."""

    widget = _IdListInput

    def __init__(self, *, max_ids: int, **kwargs):
        self.max_ids = max_ids
        super().__init__(**kwargs)

    def to_python(self, value) -> list[int]:
        values = value if isinstance(value, list) else [value or ""]
        ids: list[int] = []
        for part in " ".join(str(v) for v in values).replace(",", " ").split():
            if not part.isdigit() or not 1 <= int(part) <= _MAX_ID:
                shown = part if len(part) <= 40 else f"{part[:40]}…"
                raise ValidationError(f"{shown!r} is not an image id.")
            ids.append(int(part))
        ids = list(dict.fromkeys(ids))
        if len(ids) > self.max_ids:
            raise ValidationError(f"At most {self.max_ids} images at once ({len(ids)} given).")
        return ids

    def validate(self, value):
        if self.required and not value:
            raise ValidationError("Name at least one image.", code="required")


class RereviewRequestForm(forms.Form):
    """Send images back for a fresh blind read; `next` is where to go back to (a page of this site)."""

    images = ImageIdsField(max_ids=1000, label="Images")
    reason = forms.CharField(required=False, max_length=500, label="Why (kept with the round)")
    next = forms.CharField(required=False, max_length=2000)


class RereviewListForm(forms.Form):
    state = forms.ChoiceField(
        required=False,
        label="Rounds",
        choices=[("", "all"), ("open", "open"), ("closed", "closed"), ("changed", "changed the label"),
                 ("unchanged", "kept the label")],
    )  # fmt: skip
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)


class DisagreementListForm(forms.Form):
    label = forms.ChoiceField(required=False, label="Class of record")
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [("", "any"), *_class_choices()[1:]]
