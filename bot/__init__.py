"""Shared domain code for shopchat: settings, intents, escalation rules.

Imported by the custom actions (rasa-sdk, Python 3.11) and by the gateway.
Nothing here may import Rasa itself: Rasa lives in its own Python 3.10 venv.
"""
