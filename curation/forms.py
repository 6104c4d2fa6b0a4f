"""The curator pages' forms: every field limited as its model column is."""

from django import forms

from core.forms import IdChoiceField
from core.limits import field_limits
from curation.models import Image, LabelClass, Snapshot, Source


def _class_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in LabelClass.objects.order_by("index").values_list("code", flat=True)]


class ImageFilterForm(forms.Form):
    label = forms.ChoiceField(label="Class", required=False)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "any"), *Image.Status.choices])
    source = forms.CharField(label="Source", required=False, **field_limits(Source, "name"))
    conflicts = forms.TypedChoiceField(
        label="Source labels",
        required=False,
        choices=[("", "any"), ("1", "conflicting"), ("0", "consistent")],
        coerce=lambda value: value == "1",
        empty_value=None,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [("", "any"), *_class_choices()]

    def filters(self) -> dict:
        """What image_list() takes: the valid filters, or none when the form was refused."""
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "label": data.get("label") or None,
            "status": data.get("status") or None,
            "source": data.get("source") or None,
            "conflicts": data.get("conflicts"),
        }


class DuplicateListForm(forms.Form):
    show = forms.ChoiceField(label="Show", required=False, choices=[("open", "open"), ("all", "all")])

    def show_value(self) -> str:
        return (self.cleaned_data.get("show") if self.is_valid() else "") or "open"


class NotDuplicatesForm(forms.Form):
    """No image: the whole group is not duplicates; an image: that one is not a duplicate of the rest."""

    image = IdChoiceField(Image.objects.all(), noun="image", label="Image", required=False)


class KeepOneForm(forms.Form):
    keep = IdChoiceField(Image.objects.all(), noun="image", label="Image to keep")


class SnapshotCreateForm(forms.Form):
    name = forms.CharField(label="Name", **field_limits(Snapshot, "name"))
    ratio_train = forms.FloatField(label="Train ratio", min_value=0, max_value=1)
    ratio_val = forms.FloatField(label="Val ratio", min_value=0, max_value=1)
    ratio_test = forms.FloatField(label="Test ratio", min_value=0, max_value=1)
    seed = forms.IntegerField(label="Seed", required=False, **field_limits(Snapshot, "seed"))
    cap_per_class = forms.IntegerField(
        label="Cap per class", required=False, **{**field_limits(Snapshot, "cap_per_class"), "min_value": 1}
    )
    classes = forms.MultipleChoiceField(label="Classes", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["classes"].choices = _class_choices()

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "seed": data["seed"] if data["seed"] is not None else 0,
            "ratios": [data["ratio_train"], data["ratio_val"], data["ratio_test"]],
            "classes": data["classes"] or None,
            "cap_per_class": data["cap_per_class"],
        }
