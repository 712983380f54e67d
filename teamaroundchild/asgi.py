"""First the client address (X-Forwarded-For believed only from TAC_TRUSTED_PROXIES: proxy.py). Then HTTP
goes to Django; websockets go through, in order: Origin validation against ALLOWED_HOSTS, the session and
user from the cookie, a check that the session passed 2FA, then messaging's routes.

The module is the ASGI application for any server (daphne in deploy/, uvicorn or hypercorn work too)."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "teamaroundchild.settings.production")
django_asgi_app = get_asgi_application()

from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from accounts.ws import VerifiedSessionMiddlewareStack  # noqa: E402
from messaging.routing import websocket_urlpatterns  # noqa: E402
from teamaroundchild.proxy import TrustedProxyMiddleware  # noqa: E402

application = TrustedProxyMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                VerifiedSessionMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)

# The channel layer (with channels-redis: redis-py, msgpack and their modules, about 5 MB) is otherwise
# made by the first socket, which then costs what a thousand others do (W4 cold; BENCHMARKS.md). Made
# here, it is loaded once before any socket and frozen below with the rest. It connects to Redis only
# when first used.
get_channel_layer()

# Everything loaded so far (Django, the apps, their libraries: about 115,000 objects) lives as long as the
# process. Frozen, it is out of the cyclic garbage collector's way, whose full collections then walk only
# what sockets and requests made since: with a thousand sockets open they were the live path's slowest
# moments (W3: pauses of 85-133 ms, 42-54 ms frozen; BENCHMARKS.md). As the gc module's documentation
# advises for a server, collected first so no garbage is frozen with it.
gc.collect()
gc.freeze()

