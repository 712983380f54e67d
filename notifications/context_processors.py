from . import selectors


def unread(request):
    """The navigation's unread badge (base.html), for a signed-in, verified professional. A callable, so
    the count is asked only by a page that shows the navigation, once (base.html reads it in a `with`)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not getattr(user, "is_verified", lambda: False)():
        return {}
    return {"notifications_unread": lambda: selectors.unread_count(professional=user)}
