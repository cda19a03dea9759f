from __future__ import annotations

import os

import pytest

from payoff._errors import PriceNotFoundError
from payoff.prices import (
    HardwareKind,
    choose_cpu,
    choose_gpu,
    detect_hardware,
    load_price_book,
    resolve_hardware,
)


@pytest.fixture(scope="module")
def book():
    return load_price_book()


def test_detect_hardware_on_this_machine_picks_a_cpu_entry(book) -> None:
    import torch

    choice = detect_hardware(book)
    if torch.cuda.is_available():
        # On a GPU machine the GPU is what a trial rents.
        assert choice.entry.kind is HardwareKind.GPU and "GPU" in choice.reason
        return
    n_cpus = len(os.sched_getaffinity(0))
    assert choice.entry.kind is HardwareKind.CPU
    assert f"detected {n_cpus} CPU core" in choice.reason
    assert str(choice.entry.n_cpus) in choice.reason
    closest = min(abs(h.n_cpus - n_cpus) for h in book.hardware.values() if h.kind == "cpu")
    assert abs(choice.entry.n_cpus - n_cpus) == closest


@pytest.mark.parametrize(
    ("n_cpus", "expected"),
    [
        (1, "aws-m7i-large"),
        (2, "aws-m7i-large"),
        (3, "aws-m7i-large"),
        (4, "aws-m7i-xlarge"),
        (8, "aws-m7i-2xlarge"),
        (96, "aws-m7i-4xlarge"),
    ],
)
def test_choose_cpu_prefers_closest_count_then_m7i(book, n_cpus: int, expected: str) -> None:
    choice = choose_cpu(book, n_cpus)
    assert choice.entry.name == expected
    assert choice.reason.endswith(f"{expected} has the closest vCPU count ({choice.entry.n_cpus})")


def test_choose_cpu_without_m7i_takes_the_cheapest(book) -> None:
    only_two = load_price_book(
        {"hardware": {"aws-m7i-large": {"n_cpus": 64}, "aws-m7i-xlarge": {"n_cpus": 64}}}
    )
    assert choose_cpu(only_two, 2).entry.name == "aws-c7i-large"  # cheaper than gcp-n2


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "lambda-h100-sxm"),
        ("NVIDIA H100 PCIe", "lambda-h100-pcie"),
        ("NVIDIA A100-SXM4-40GB", "lambda-a100-40gb"),
        ("NVIDIA L4", "aws-g6-l4"),
    ],
)
def test_choose_gpu_matches_the_device_name(book, device: str, expected: str) -> None:
    choice = choose_gpu(book, device, 1)
    assert choice.entry.name == expected
    assert f"detected 1 CUDA GPU ({device})" in choice.reason


def test_choose_gpu_names_the_other_candidates(book) -> None:
    choice = choose_gpu(book, "NVIDIA H100 80GB HBM3", 8)
    assert "8 CUDA GPUs" in choice.reason
    assert "aws-p5-h100" in choice.reason and "priced per GPU" in choice.reason


def test_choose_gpu_falls_back_to_the_family_and_says_so(book) -> None:
    choice = choose_gpu(book, "NVIDIA A100-PCIE-40GB", 1)
    assert choice.entry.gpu_name is not None and "A100" in choice.entry.gpu_name
    assert "GPU family 'A100'" in choice.reason


def test_choose_gpu_does_not_confuse_l4_with_l40s(book) -> None:
    with pytest.raises(PriceNotFoundError, match="NVIDIA L40S"):
        choose_gpu(book, "NVIDIA L40S", 1)


def test_study_file_gpu_entry_is_detected() -> None:
    entry = {
        "kind": "gpu",
        "usd_per_hour": 1.5,
        "n_cpus": 16,
        "gpu_name": "L40S",
        "tdp_w": 350,
        "peak_flops": 9.16e13,
        "peak_flops_bf16": 3.62e14,
        "mem_bandwidth_bytes_per_s": 8.64e11,
    }
    book = load_price_book({"hardware": {"my-l40s": entry}})
    assert choose_gpu(book, "NVIDIA L40S", 1).entry.name == "my-l40s"


def test_resolve_hardware(book) -> None:
    named = resolve_hardware(book, "aws-m7i-xlarge")
    assert named.entry.name == "aws-m7i-xlarge" and named.reason == "named in the study file"
    assert resolve_hardware(book, "auto").reason.startswith("detected")
    with pytest.raises(PriceNotFoundError, match="Did you mean 'aws-m7i-xlarge'"):
        resolve_hardware(book, "aws-m7i-xlarg")
