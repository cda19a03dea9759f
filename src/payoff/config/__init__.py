"""The study file: schema, loading and validation messages."""

from __future__ import annotations

from payoff.config._load import config_from_dict, load_config, suggest
from payoff.config._schema import StudyConfig

__all__ = ["StudyConfig", "config_from_dict", "load_config", "suggest"]
