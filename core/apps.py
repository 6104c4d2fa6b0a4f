from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom layer: the audit log, the job lifecycle and small shared helpers.

    Every other app imports core; core imports none of them (a test proves it).
    """

    name = "core"
    verbose_name = "Audit log and jobs"
