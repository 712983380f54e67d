"""The ASGI module freezes what it loaded (teamaroundchild/asgi.py says why: the garbage collector's full
collections were the live path's longest pauses; BENCHMARKS.md, W3)."""

import gc


def test_what_the_asgi_module_loaded_is_out_of_the_collectors_way():
    import teamaroundchild.asgi  # noqa: F401

    assert gc.get_freeze_count() > 10_000
