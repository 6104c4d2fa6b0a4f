"""The curator pages' forms: every field limited as its model column is."""

from django import forms

from core.forms import IdChoiceField
from core.limits import field_limits
from curation.models import ExclusionReason, Image, ImportBatch, LabelClass, Snapshot, Source, UnmappedPolicy


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
    record_label = forms.ChoiceField(label="Class of record", required=False, help_text="final label, else source")
    exclusion_reason = forms.ChoiceField(
        label="Excluded because", required=False, choices=[("", "any"), *ExclusionReason.choices]
    )
    duplicates = forms.TypedChoiceField(
        label="Near duplicates",
        required=False,
        choices=[("", "any"), ("1", "in a duplicate group"), ("0", "in none")],
        coerce=lambda value: value == "1",
        empty_value=None,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [("", "any"), *_class_choices()]
        self.fields["record_label"].choices = [("", "any"), *_class_choices()]

    def filters(self) -> dict:
        """What image_list() takes: the valid filters, or none when the form was refused."""
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "label": data.get("label") or None,
            "status": data.get("status") or None,
            "source": data.get("source") or None,
            "conflicts": data.get("conflicts"),
            "record_label": data.get("record_label") or None,
            "exclusion_reason": data.get("exclusion_reason") or None,
            "in_duplicate_group": data.get("duplicates"),
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


class ImportUploadForm(forms.Form):
    """The upload page: a zip of class folders, with the same mapping and metadata files as the command line."""

    zip = forms.FileField(label="Zip file", help_text="class folders at any depth (the Kaggle layout)")
    source = forms.CharField(
        label="Source name",
        **field_limits(Source, "name"),
        error_messages={
            "max_length": "The source name can be at most %(limit_value)d characters (it has %(show_value)d)."
        },
    )
    trusted = forms.BooleanField(required=False, label="Trusted source: its folder labels count as one agreeing reader")
    map_file = forms.FileField(
        required=False,
        label="Mapping file (CSV)",
        help_text="columns folder,code; code is a class code, an index or skip",
    )
    unmapped = forms.ChoiceField(
        required=False, choices=UnmappedPolicy.choices, initial=UnmappedPolicy.FAIL, label="Folders that match no class"
    )
    metadata = forms.FileField(
        required=False,
        label="Metadata file (CSV)",
        help_text="joined on image_id or filename; HAM10000 columns as they are",
    )
    label_column = forms.CharField(
        required=False,
        **field_limits(ImportBatch, "label_column"),
        label="Label column",
        help_text="take the source label from this metadata column (e.g. dx) instead of the folder",
    )

    def clean_source(self) -> str:
        return self.cleaned_data["source"].strip()

    def clean_unmapped(self) -> str:
        return self.cleaned_data["unmapped"] or UnmappedPolicy.FAIL


class MetadataFilterForm(forms.Form):
    """Filters of the images page on what metadata files said."""

    modality = forms.ChoiceField(
        required=False, choices=[("", "any"), ("clinical", "clinical"), ("dermoscopic", "dermoscopic")]
    )
    sex = forms.CharField(required=False, max_length=20)
    body_site = forms.CharField(required=False, max_length=100)
    fitzpatrick = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=[("", "any")] + [(str(n), str(n)) for n in range(1, 7)]
    )
    lesion_id = forms.CharField(required=False, max_length=200)
    patient_id = forms.CharField(required=False, max_length=200)


class ResolveConflictsForm(forms.Form):
    prefer = forms.CharField(
        label="Prefer",
        max_length=1000,
        help_text="a folder name or a source name whose label wins, or skip to exclude the images",
    )
