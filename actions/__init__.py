"""Custom Rasa actions. Thin: they read the tracker, call into ``bot``, return events."""
