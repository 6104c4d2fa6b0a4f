from accounts.roles import Role
from accounts.selectors import user_roles


def roles(request) -> dict:
    held = user_roles(request.user)
    return {
        "user_roles": held,
        "is_reader": bool(held & {Role.REVIEWER, Role.ADJUDICATOR}),
        "is_adjudicator": Role.ADJUDICATOR in held,
        "is_curator": Role.CURATOR in held,
    }
