"""Parse texts with a trained Rasa model, in bulk, without a server.

Runs under ``.venv-rasa`` (Python 3.10, Rasa 3.6), so it imports nothing from
this project. Input: a JSON file holding a list of texts. Output: a JSON file
holding, per text, the predicted intent, its confidence, the runner-up
intents and the entities.

    .venv-rasa/bin/python bot/rasa_parse.py --model M --texts in.json --out out.json
"""

import argparse
import asyncio
import json
import logging
import os
import sys

# config.yml names the project's own components (bot.nlu.*) by module path:
# import them from the project (the working directory), as `rasa` itself does.
sys.path.insert(1, os.getcwd())


def _summary(result):
    intent = result.get("intent") or {}
    return {
        "intent": intent.get("name"),
        "confidence": float(intent.get("confidence") or 0.0),
        "ranking": [
            {"name": r.get("name"), "confidence": float(r.get("confidence") or 0.0)}
            for r in (result.get("intent_ranking") or [])[:5]
        ],
        "entities": [
            {"entity": e.get("entity"), "value": e.get("value")}
            for e in result.get("entities") or []
        ],
    }


async def _parse_all(model, texts):
    from rasa.core.agent import Agent

    agent = Agent.load(model_path=model)
    return [_summary(await agent.parse_message(text)) for text in texts]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--texts", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with open(args.texts, encoding="utf-8") as handle:
        texts = json.load(handle)
    results = asyncio.run(_parse_all(args.model, texts))
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main()
