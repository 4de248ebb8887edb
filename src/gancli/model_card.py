"""The README.md model card of an exported model folder: YAML front matter and a body for people.

The front matter follows the Hugging Face model card metadata (``library_name``, ``license``,
``tags``, ``datasets``, ``pipeline_tag``); it is written with JSON-quoted scalars, which YAML
reads as they are. The body says what the model is, shows its samples, how to sample from it
(command line and Python), the training settings, and the measurements recorded for this very
checkpoint, each with its protocol: evaluation reports of ``gancli eval --out`` whose source is
the exported checkpoint (matched by sha256 and generator), and the last training-log values,
labelled as the training losses they are. No number appears without saying what it measures.
"""
from __future__ import annotations

from gancli.model_card_facts import (
    DEFAULT_LICENSE,
    FOLDER_PLACEHOLDER,
    SETTINGS_NAME,
    CardFacts,
    CardInputs,
    check_inputs,
    collect,
)
from gancli.model_card_text import front_matter, render

__all__ = ["CardInputs", "CardFacts", "check_inputs", "collect", "render", "front_matter", "DEFAULT_LICENSE",
           "FOLDER_PLACEHOLDER", "SETTINGS_NAME"]
