"""``python -m handoff``: run the gateway with settings from the environment."""

from bot.settings import load_settings
from handoff.app import run

run(load_settings())
