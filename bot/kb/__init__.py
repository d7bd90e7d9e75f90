"""The knowledge base: articles as Markdown files, a MiniLM + FAISS index, and the
decision of what to answer. See :mod:`bot.kb.articles`, :mod:`bot.kb.index`,
:mod:`bot.kb.answer` and :mod:`bot.kb.log`."""
