"""What every page form shares.

The rule for pages: input goes through a Django form. A request whose input the form
rejects, or that a service refuses, answers 400 and shows again the page the form is
on, with a message that names the field; a request that succeeds redirects.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from core.limits import id_limits

# What a page answers when it refuses its input.
REFUSED = 400


def form_errors_text(form: forms.Form) -> str:
    """One line per error, each starting with the label of the field it is about."""
    lines = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        prefix = "" if name == NON_FIELD_ERRORS or field is None else f"{field.label or name}: "
        lines.extend(f"{prefix}{error}" for error in errors)
    return " ".join(lines)


def refuse(request, error: forms.Form | ValidationError | str) -> int:
    """Tell the person why their request was refused (a message on the page); returns 400."""
    if isinstance(error, forms.Form):
        text = form_errors_text(error)
    elif isinstance(error, ValidationError):
        text = " ".join(error.messages)
    else:
        text = error
    messages.error(request, text)
    return REFUSED


class IdChoiceField(forms.ModelChoiceField):
    """A row chosen by its id: anything that is not an id of a row is 'no such …', never a crash."""

    def __init__(self, queryset, *, noun: str, **kwargs):
        self.noun = noun
        super().__init__(queryset, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            number = forms.IntegerField(**id_limits()).clean(value)
        except ValidationError:
            shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:40]}…"
            raise ValidationError(f"{shown!r} is not the id of any {self.noun}.", code="invalid_choice") from None
        row = self.queryset.filter(pk=number).first()
        if row is None:
            raise ValidationError(f"There is no {self.noun} {number}.", code="invalid_choice")
        return row
