"""Custom Rasa actions. Thin: they read the tracker, call into ``bot``, return events."""

import os

from bot.settings import Settings

# The action server (rasa-sdk on Sanic) imports this package in two processes: its
# manager, which only supervises, and the worker that serves, which imports it before
# it answers anything. The worker loads the knowledge base's model here, so that its
# health check (and with it the stack's "ready") means an FAQ question will not wait
# for the model. The manager never needs the model: loading it there cost a second
# copy (about 450 MB), and it fixes multiprocessing's start method to "fork", after
# which Sanic refuses to spawn its worker.
if Settings().kb_warm_up and os.environ.get("SANIC_WORKER_NAME"):
    from actions.faq import warm_up

    warm_up()
