from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


def request_user(request):
    """The caller of a plain Django view: the session user, else an API token's user."""
    if request.user.is_authenticated:
        return request.user
    try:
        authenticated = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return authenticated[0] if authenticated else None
