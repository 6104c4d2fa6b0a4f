"""The training and model pages' forms."""

import json

from django import forms
from django.core.exceptions import ValidationError

from core.forms import IdChoiceField
from core.jsonsafe import JSONTooDeep, check_json_depth
from core.limits import field_limits
from curation.models import Snapshot
from ml.hardware import default_preset
from ml.models import LabelIssue, ModelVersion
from ml.training.config import PRESETS
from ml.training.folds import MAX_FOLDS

# Far more than every knob of a training config written out; a bigger paste is a mistake.
CONFIG_MAX_CHARS = 10_000


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class TrainingConfigField(forms.CharField):
    """A JSON object of config overrides (empty: none)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=CONFIG_MAX_CHARS, required=False, **kwargs)

    def clean(self, value) -> dict:
        text = super().clean(value)
        if not text:
            return {}
        try:
            overrides = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError, as is a 5000-digit int
            raise ValidationError(f"not valid JSON ({error}).") from None
        try:
            check_json_depth(overrides)
        except JSONTooDeep as error:
            raise ValidationError(f"not valid JSON ({error}).") from None
        if not isinstance(overrides, dict):
            raise ValidationError(
                f'must be a JSON object such as {{"stage1_epochs": 10}}, not {type(overrides).__name__}.'
            )
        return overrides


class TrainingRunForm(forms.Form):
    snapshot = IdChoiceField(Snapshot.objects.all(), noun="snapshot", label="Snapshot")
    preset = forms.ChoiceField(label="Preset", required=False, choices=[(name, name) for name in PRESETS])
    config = TrainingConfigField(label="Config overrides")
    cross_val = forms.IntegerField(
        label="Cross-validation folds",
        required=False,
        min_value=2,
        max_value=MAX_FOLDS,
        help_text="empty: a plain run; K: K fold models for suspected label errors, then the model",
    )

    def clean_preset(self) -> str:
        return self.cleaned_data["preset"] or default_preset()


class ModelCompareForm(forms.Form):
    a = IdChoiceField(ModelVersion.objects.all(), noun="model version", label="Compare")
    b = IdChoiceField(ModelVersion.objects.all(), noun="model version", label="With")


class PromoteForm(forms.Form):
    force = forms.BooleanField(label="Promote even though it is refused", required=False)
    reason = forms.CharField(label="Reason", required=False, max_length=2000)


class ScoreForm(forms.Form):
    snapshot = IdChoiceField(
        Snapshot.objects.all(), noun="snapshot", label="Snapshot", required=False, help_text="empty: every image"
    )


class LabelIssuesForm(forms.Form):
    snapshot = IdChoiceField(Snapshot.objects.all(), noun="snapshot", label="Snapshot", required=False)
    open = forms.BooleanField(label="Only open suggestions", required=False)


class LabelIssueDismissForm(forms.Form):
    reason = forms.CharField(
        label="Why the suggestion is wrong", required=False, **field_limits(LabelIssue, "dismissed_reason")
    )
