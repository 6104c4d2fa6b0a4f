"""Signals the base layer sends so that upper layers can react without being imported.

`audit_event` is sent, inside the writer's transaction, for every change to an
image's curated state and for other decisions that must be audited (the
labeling app records them in its append-only audit log).
"""

from django.dispatch import Signal

# kwargs: actor (User | None), action (str), image (Image | None),
#         target (str: "model:pk" of the thing changed), before (dict), after (dict)
audit_event = Signal()

# kwargs: image_ids (list[int]) — images created by an import, for consensus on trusted sources
images_imported = Signal()
