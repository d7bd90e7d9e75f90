"""Shopchat's own Rasa NLU components.

The components (``encoder``, ``classifier``) run inside Rasa, in ``.venv-rasa``
(Python 3.10, Rasa 3.6), and are listed in ``config.yml`` by module path; Rasa
finds them because it runs with the project as its working directory. They
import nothing else from the project except ``bot.nlu.calibration``, which
needs only numpy and so also serves ``shopchat eval nlu`` on the 3.11 side.
Keep all three files valid Python 3.10.
"""
