"""API request parsers (kept apart from core.api: DRF imports them while it defines APIView)."""

from django.conf import settings
from rest_framework import exceptions, parsers

from core.jsonsafe import JSONTooDeep, check_json_depth


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing (400, not 500) bodies nested deeper than DERMCURATE_JSON_MAX_DEPTH."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return check_json_depth(super().parse(stream, media_type, parser_context))
        except (RecursionError, JSONTooDeep):
            limit = settings.DERMCURATE_JSON_MAX_DEPTH
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {limit} levels.") from None
