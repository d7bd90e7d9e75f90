"""Actions under test use the real knowledge base, logging into a temporary var/."""

from __future__ import annotations

import pytest

from actions.faq import KnowledgeBase, knowledge_base
from bot.settings import Settings
from shopchat.kb_eval import build


@pytest.fixture(scope="session", autouse=True)
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    settings = Settings()
    build(settings.kb_articles_path, settings.kb_index_path)
    var = tmp_path_factory.mktemp("kb-var")
    return knowledge_base(settings.model_copy(update={"var_dir": var}))
