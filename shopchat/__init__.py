"""Operator tools for shopchat: the ``shopchat`` CLI, training, evaluation, the process stack."""
