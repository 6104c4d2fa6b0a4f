from curation.models import LabelClass


def label_class_list() -> list[LabelClass]:
    return list(LabelClass.objects.order_by("index"))
