"""Custom Rasa actions. Thin: they read the tracker, call into ``bot``, return events."""

from bot.settings import Settings

# The action server imports this package once at start: the edge where the
# knowledge base's model may be loaded, in the background.
if Settings().kb_warm_up:
    from actions.faq import warm_up

    warm_up()
