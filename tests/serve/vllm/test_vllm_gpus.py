"""GPU listing and selection from canned nvidia-smi output."""

from __future__ import annotations

import pytest

from serve.errors import ServeError
from serve.gpus import MIB, list_gpus, parse_gpu_list, select_gpus

CANNED = """\
0, 1200, 81559
1, 80000, 81559
2, 40000, 81559
3, 79000, 81559
"""


def test_parse_and_pick_most_free() -> None:
    gpus = list_gpus(lambda: CANNED)
    assert [g.index for g in gpus] == [0, 1, 2, 3]
    assert gpus[1].free_bytes == 80000 * MIB and gpus[1].total_bytes == 81559 * MIB
    assert [g.index for g in select_gpus(gpus, 2)] == [1, 3]
    assert [g.index for g in select_gpus(gpus, 1)] == [1]


def test_requested_indices_win() -> None:
    gpus = list_gpus(lambda: CANNED)
    assert [g.index for g in select_gpus(gpus, 2, [0, 2])] == [0, 2]
    with pytest.raises(ServeError, match="not found"):
        select_gpus(gpus, 1, [7])


def test_no_nvidia_smi_means_no_gpus() -> None:
    assert list_gpus(lambda: None) == []
    with pytest.raises(ServeError, match="2 GPUs needed"):
        select_gpus([], 2)


def test_parse_gpu_list() -> None:
    assert parse_gpu_list("0,1, 3") == [0, 1, 3]
    with pytest.raises(ServeError):
        parse_gpu_list("a,b")
