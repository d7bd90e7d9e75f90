"""The handoff gateway: the one public process (aiohttp).

It owns conversations and their event log (SQLite), relays shopper text to
Rasa while a conversation is in bot mode, and serves the web pages.
"""
