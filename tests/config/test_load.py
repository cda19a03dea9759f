from __future__ import annotations

from pathlib import Path

import pytest

from payoff import ConfigError, load_config
from payoff.config import config_from_dict
from tests.conftest import write_study


def test_valid_study_loads(study_file: Path) -> None:
    config = load_config(study_file)
    assert config.study == "tiny"
    assert config.lever_values() == {"data": [0.5, 1.0], "compute": [2, 4]}


def test_relative_csv_path_resolves_against_the_study_file(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x,y\n1,a\n2,b\n3,a\n4,b\n")
    path = write_study(tmp_path / "s.yaml", task={"dataset": "csv:d.csv", "label": "y"})
    assert load_config(path).task.dataset == f"csv:{(tmp_path / 'd.csv').resolve()}"


def test_extra_levers_are_allowed_for_trial_functions() -> None:
    config = config_from_dict(
        {
            "study": "f",
            "task": {"function": "mod:fn", "metric": "accuracy"},
            "levers": {"C": [0.1, 1.0]},
        }
    )
    assert config.lever_values() == {"C": [0.1, 1.0]}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"levers": {"optimzer": ["adam"]}}, "Did you mean 'optimizer'?"),
        ({"levers": {"optimizer": ["adm"]}}, "Did you mean 'adam'?"),
        ({"seeds": "three"}, "seeds"),
        ({"levers": {"data": []}}, "levers.data: is empty"),
        ({"design": "gird"}, "Did you mean 'grid'?"),
        ({"train": {"epocs": 3}}, "Did you mean 'epochs'?"),
    ],
)
def test_schema_errors_name_the_field_and_the_fix(
    tmp_path: Path, overrides: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected.replace("?", r"\?").replace(".", r"\.")):
        load_config(write_study(tmp_path / "s.yaml", **overrides))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
