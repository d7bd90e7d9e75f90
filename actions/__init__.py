"""Custom Rasa actions. Thin: they read the tracker, call into ``bot``, return events."""

from bot.settings import Settings

# The action server imports this package once at start, before it listens: the edge
# where the knowledge base's model is loaded, so that "healthy" means ready to answer.
if Settings().kb_warm_up:
    from actions.faq import warm_up

    warm_up()
