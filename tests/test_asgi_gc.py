"""The ASGI module freezes what it loaded (teamaroundchild/asgi.py says why: the garbage collector's full
collections were the live path's longest pauses; BENCHMARKS.md, W3)."""

import gc


def test_what_the_asgi_module_loaded_is_out_of_the_collectors_way():
    import teamaroundchild.asgi  # noqa: F401

    assert gc.get_freeze_count() > 10_000


def test_the_channel_layer_is_made_before_the_first_socket():
    """Loaded by the module (and frozen with it), not by the first socket: about 5 MB with channels-redis
    (W4 cold). Redis itself is not contacted until a socket uses the layer."""
    import subprocess
    import sys

    code = ("import sys, gc; import teamaroundchild.asgi; from channels.layers import channel_layers; "
            "print('redis.asyncio' in sys.modules, 'default' in channel_layers.backends)")
    env = {**__import__("os").environ, "REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens there
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]
