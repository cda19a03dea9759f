from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from payoff._errors import ConfigError, PriceNotFoundError
from payoff.prices import STUDY_FILE_SOURCE, HardwareKind, Price, load_price_book

BUNDLED = Path(__file__).parents[2] / "src" / "payoff" / "prices" / "book.yaml"


def _all_prices(book) -> list[tuple[str, Price]]:
    prices = [
        ("electricity_usd_per_kwh", book.electricity_usd_per_kwh),
        ("pue", book.pue),
        ("grid_gco2_per_kwh", book.grid_gco2_per_kwh),
        ("engineer_usd_per_hour", book.engineer_usd_per_hour),
    ]
    prices += [(f"labels.{k}", p) for k, p in book.labels_usd_per_example.items()]
    prices += [(f"hardware.{k}", h.usd_per_hour) for k, h in book.hardware.items()]
    return prices


def test_bundled_book_loads_and_every_price_has_source_and_date() -> None:
    book = load_price_book()
    assert book.version and book.updated
    assert book.country_iso_code == "USA"
    for item, price in _all_prices(book):
        assert price.source.strip(), item
        dt.date.fromisoformat(price.as_of)  # a real date
        assert price.value >= 0, item
        assert price.unit, item
    for name, entry in book.hardware.items():
        assert entry.name == name
        assert entry.spec_source.strip(), name
        assert entry.peak_flops > 0 and entry.mem_bandwidth_bytes_per_s > 0, name
        if entry.kind is HardwareKind.GPU:
            assert entry.gpu_name and entry.peak_flops_bf16, name
        else:
            assert entry.gpu_name is None, name


def test_bundled_book_has_the_documented_entries() -> None:
    book = load_price_book()
    for name in [
        "aws-m7i-large",
        "aws-m7i-xlarge",
        "aws-m7i-2xlarge",
        "aws-c7i-large",
        "gcp-n2-standard-2",
        "laptop-cpu",
        "lambda-a100-40gb",
        "lambda-h100-sxm",
        "aws-p5-h100",
        "aws-g6-l4",
    ]:
        assert name in book.hardware
    assert set(book.labels_usd_per_example) >= {"crowd", "expert", "in-house"}
    assert book.hardware["aws-m7i-large"].usd_per_hour.note.startswith("on-demand list price")


def test_rows_flatten_every_price() -> None:
    book = load_price_book()
    rows = book.rows()
    assert len(rows) == len(_all_prices(book))
    assert all(set(row) == {"item", "value", "unit", "source", "as_of"} for row in rows)
    assert {"item": "pue", "value": "1.56"}.items() <= rows[1].items()
    assert "hardware.aws-m7i-large.usd_per_hour" in {row["item"] for row in rows}


def test_overrides_apply_with_study_file_source() -> None:
    today = dt.date.today().isoformat()
    book = load_price_book(
        {
            "electricity_usd_per_kwh": 0.3,
            "pue": 1.2,
            "grid_gco2_per_kwh": 50,
            "engineer_usd_per_hour": 90,
            "labels_usd_per_example": {"crowd": 0.05, "medical": 2.5},
            "hardware": {
                "aws-m7i-large": {"usd_per_hour": 0.2},
                "my-box": {
                    "kind": "cpu",
                    "usd_per_hour": 0.05,
                    "n_cpus": 8,
                    "tdp_w": 65,
                    "peak_flops": 5e11,
                    "mem_bandwidth_bytes_per_s": 5e10,
                },
            },
        }
    )
    assert book.electricity_usd_per_kwh == Price(0.3, "USD/kWh", STUDY_FILE_SOURCE, today)
    assert book.pue.value == 1.2 and book.pue.source == STUDY_FILE_SOURCE
    assert book.grid_gco2_per_kwh.value == 50 and book.grid_gco2_per_kwh.as_of == today
    assert book.engineer_usd_per_hour.value == 90
    assert book.label_price("crowd") == Price(0.05, "USD/example", STUDY_FILE_SOURCE, today)
    assert book.label_price("medical").value == 2.5
    assert book.label_price("expert").source != STUDY_FILE_SOURCE  # untouched
    m7i = book.hardware_entry("aws-m7i-large")
    assert m7i.usd_per_hour.value == 0.2 and m7i.usd_per_hour.source == STUDY_FILE_SOURCE
    assert m7i.n_cpus == 2  # specs kept
    box = book.hardware_entry("my-box")
    assert box.kind is HardwareKind.CPU and box.usd_per_hour.source == STUDY_FILE_SOURCE
    assert box.spec_source == STUDY_FILE_SOURCE
    # Overrides do not leak into the next load.
    assert load_price_book().hardware_entry("aws-m7i-large").usd_per_hour.value == 0.1008


def test_hardware_spec_override_is_recorded_in_spec_source() -> None:
    book = load_price_book({"hardware": {"laptop-cpu": {"n_cpus": 8, "tdp_w": 15}}})
    laptop = book.hardware_entry("laptop-cpu")
    assert laptop.n_cpus == 8 and laptop.tdp_w == 15
    assert "n_cpus, tdp_w from the study file" in laptop.spec_source
    assert laptop.usd_per_hour.source != STUDY_FILE_SOURCE


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"electricty_usd_per_kwh": 0.3}, "unknown key 'electricty_usd_per_kwh'"),
        ({"hardware": {"aws-m7i-large": {"usd_per_hr": 1}}}, "usd_per_hour"),
        ({"labels_usd_per_example": {"crowd": "cheap"}}, "labels_usd_per_example.crowd"),
    ],
)
def test_bad_override_key_says_which_and_what_is_allowed(overrides, expected) -> None:
    with pytest.raises(ConfigError, match="prices") as info:
        load_price_book(overrides)
    assert expected in str(info.value)


def test_unknown_key_lists_the_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        load_price_book({"electricty_usd_per_kwh": 0.3})
    assert "allowed keys there:" in str(info.value)
    assert "electricity_usd_per_kwh" in str(info.value).split("allowed keys there:")[1]


@pytest.mark.parametrize(
    "overrides",
    [
        {"electricity_usd_per_kwh": -0.1},
        {"engineer_usd_per_hour": -1},
        {"labels_usd_per_example": {"crowd": -0.05}},
        {"hardware": {"aws-m7i-large": {"usd_per_hour": -0.2}}},
        {"pue": 0.9},
    ],
)
def test_negative_price_is_a_config_error(overrides) -> None:
    key = next(iter(overrides))
    with pytest.raises(ConfigError, match=key):
        load_price_book(overrides)


def test_new_hardware_needs_a_whole_entry() -> None:
    with pytest.raises(ConfigError, match="needs a whole entry") as info:
        load_price_book({"hardware": {"my-box": {"usd_per_hour": 1.0}}})
    assert "missing key 'n_cpus'" in str(info.value)


def test_new_gpu_needs_gpu_name() -> None:
    entry = {
        "kind": "gpu",
        "usd_per_hour": 1.0,
        "n_cpus": 8,
        "tdp_w": 300,
        "peak_flops": 1e13,
        "mem_bandwidth_bytes_per_s": 1e12,
    }
    with pytest.raises(ConfigError, match="gpu_name"):
        load_price_book({"hardware": {"my-gpu": entry}})


def test_overrides_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_price_book([("pue", 1.2)])  # type: ignore[arg-type]


def test_unknown_hardware_suggests_the_nearest_name() -> None:
    book = load_price_book()
    with pytest.raises(PriceNotFoundError, match="Did you mean 'lambda-h100-sxm'") as info:
        book.hardware_entry("h100-sxm")
    assert isinstance(info.value, LookupError)
    assert "aws-m7i-large" in str(info.value)  # lists the known names


def test_unknown_label_kind_suggests_the_nearest_kind() -> None:
    with pytest.raises(PriceNotFoundError, match="Did you mean 'crowd'"):
        load_price_book().label_price("crwd")


def test_load_from_path(tmp_path: Path) -> None:
    data = yaml.safe_load(BUNDLED.read_text())
    data["version"] = "test-1"
    data["pue"]["value"] = 1.1
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(data))
    book = load_price_book(path=path)
    assert book.version == "test-1" and book.pue.value == 1.1
    assert load_price_book({"pue": 1.3}, path=str(path)).pue.value == 1.3


def test_book_file_price_without_source_is_rejected(tmp_path: Path) -> None:
    data = yaml.safe_load(BUNDLED.read_text())
    del data["hardware"]["aws-m7i-large"]["usd_per_hour"]["source"]
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="hardware.aws-m7i-large.usd_per_hour.source"):
        load_price_book(path=path)


def test_book_file_unquoted_dates_are_accepted(tmp_path: Path) -> None:
    text = BUNDLED.read_text().replace('as_of: "2023-12-31"', "as_of: 2023-12-31")
    path = tmp_path / "book.yaml"
    path.write_text(text)
    assert load_price_book(path=path).electricity_usd_per_kwh.as_of == "2023-12-31"


def test_unreadable_or_invalid_book_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_price_book(path=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_price_book(path=bad)
