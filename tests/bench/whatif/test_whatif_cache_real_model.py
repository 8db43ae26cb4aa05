"""The semantic cache with the bundled all-MiniLM-L6-v2 on a support log (examples/whatif): requests of
opposite meaning ("turn on" / "turn off dark mode") sit closer than true paraphrases ("make the text bigger"
/ "increase the font size"), and the false-hit rate catches the wrong answers they would be served."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.whatif.cache import CacheSpec, analyse_cache
from bench.whatif.embed import OfflineEmbedder, find_model
from bench.whatif.requestlog import read_request_log

LOG = Path(__file__).resolve().parents[3] / "examples" / "whatif" / "support-log.jsonl"


@pytest.mark.slow  # loading the embedding model takes about 7 s
def test_false_hits_of_opposite_meaning_are_caught(tmp_path: Path) -> None:
    log = read_request_log(LOG)
    spec = CacheSpec(fill_share=0.5, thresholds=(0.85, 0.9, 0.95))
    report = analyse_cache(log, spec, embedder=OfflineEmbedder(find_model(None, tmp_path)))
    at = {r.threshold: r for r in report.semantic}
    served = {(q, s) for q, s, _ in at[0.9].false_examples}
    assert ("How do I turn off dark mode?", "How do I turn on dark mode?") in served
    assert at[0.9].measured.false_hits >= 2 and at[0.9].measured.false_hit_rate.score > 0.3  # type: ignore[operator]
    assert at[0.9].measured.hits > at[0.9].measured.false_hits  # "switch to dark mode" is a true hit
    # The exact cache only hits the repeated "opening hours" question, and one copy arrived in flight.
    assert report.exact.measured.false_hits == 0
    assert report.exact.fill is not None and report.exact.fill.in_flight_misses == 1
    assert report.chosen_threshold == 0.95


def test_a_missing_model_names_the_folder_to_put_it_in(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_model(tmp_path / "nowhere", tmp_path)
    assert str(tmp_path / "nowhere") in str(info.value) and "modules.json" in info.value.fix
