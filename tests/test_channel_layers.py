"""The channels-redis core layer, configured as settings/base.py configures it, against the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A socket waiting for its next message on the core layer: channels-redis blocks 5 s in BZPOPMIN, then
# blocks again. With redis-py 8's default 5 s read timeout this raised "Timeout reading from Redis" and
# closed every idle socket of the process (BENCHMARKS.md). Here the wait outlasts two blocks.
IDLE_RECEIVE = """
import asyncio, django
django.setup()
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

async def main():
    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer), type(layer)
    channel = await layer.new_channel()
    try:
        await asyncio.wait_for(layer.receive(channel), timeout=layer.brpop_timeout * 2 + 1)
    except asyncio.TimeoutError:
        print("still waiting, no error")
    await layer.send(channel, {"type": "after.idle"})
    print((await layer.receive(channel))["type"])

asyncio.run(main())
"""


def test_an_idle_receive_on_the_core_layer_waits_without_a_redis_timeout():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "teamaroundchild.settings.test", "CHANNEL_LAYER": "core"}
    result = subprocess.run([sys.executable, "-c", IDLE_RECEIVE], cwd=BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["still", "waiting,", "no", "error", "after.idle"]


# 1,000 sockets leaving a workspace at once (a W2 run, or a worker restarting) make one process ask Redis
# 1,000 things at the same moment. redis-py 8's pool allows 100 connections and refuses the 101st
# ("Too many connections"), which crashed those sockets; settings/base.py gives the core layer more.
BURST = """
import asyncio, django
django.setup()
from channels.layers import get_channel_layer

async def main():
    layer = get_channel_layer()
    channels = [await layer.new_channel() for _ in range(500)]
    await asyncio.gather(*(layer.group_add("burst", c) for c in channels))
    await asyncio.gather(*(layer.group_discard("burst", c) for c in channels))
    print("ok", len(channels))

asyncio.run(main())
"""


def test_a_burst_of_500_group_changes_in_one_process_succeeds_on_both_layers():
    for layer in ("core", "pubsub"):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "teamaroundchild.settings.test", "CHANNEL_LAYER": layer}
        result = subprocess.run([sys.executable, "-c", BURST], cwd=BASE_DIR, env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, (layer, result.stderr[-2000:])
        assert result.stdout.split() == ["ok", "500"], layer


# Two deployments on one Redis server: a group event of one must not reach the other. Redis pub/sub
# channels ignore the database number, so only the prefix (CHANNEL_LAYER_PREFIX) separates them; a layer
# with the same prefix does hear it (the control, so the separation is not an accident of timing).
TWO_DEPLOYMENTS = """
import asyncio, django
django.setup()
from django.conf import settings
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

async def main():
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    print(config["prefix"])
    sender = get_channel_layer()
    same, other = (RedisPubSubChannelLayer(**dict(config, prefix=p)) for p in (config["prefix"], "another-deployment"))
    heard = {}
    for name, layer in (("same", same), ("other", other)):
        channel = await layer.new_channel()
        await layer.group_add("workspace.1", channel)
        heard[name] = (layer, channel)
    await asyncio.sleep(0.3)
    await sender.group_send("workspace.1", {"type": "post.created"})
    for name, (layer, channel) in heard.items():
        try:
            await asyncio.wait_for(layer.receive(channel), 2)
            print(name, "heard it")
        except asyncio.TimeoutError:
            print(name, "heard nothing")

asyncio.run(main())
"""


def test_a_deployment_does_not_hear_another_on_the_same_redis():
    """As deployed (production settings read CHANNEL_LAYER_PREFIX; the test settings add a per-run prefix
    of their own, so this sets the environment a deployment would have and uses the base settings)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "teamaroundchild.settings.base", "CHANNEL_LAYER": "pubsub",
           "CHANNEL_LAYER_PREFIX": "tac-deployment-a", "REDIS_URL": "redis://127.0.0.1:6379/3",
           "SECRET_KEY": "not-a-secret-for-this-test"}
    result = subprocess.run([sys.executable, "-c", TWO_DEPLOYMENTS], cwd=BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:3] == ["tac-deployment-a", "same heard it", "other heard nothing"], result.stdout
