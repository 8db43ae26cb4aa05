"""The tiny-skills question set, its training stream and the training loop's determinism (no model build)."""

from __future__ import annotations

import pytest

from serve.tiny import skills_suite
from serve.tiny.skills_data import AREAS, CAPITALS, SUITE_N_PER_AREA, SkillSampler, held_out_questions
from serve.tiny.tokenizer import byte_tokenizer, chatml_prompt, wrap_tokenizer

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def test_suite_is_deterministic_and_balanced() -> None:
    items = skills_suite()
    assert items == skills_suite()
    assert items != skills_suite(seed=1)
    for area in AREAS:
        assert sum(i["area"] == area for i in items) == SUITE_N_PER_AREA
    assert {i["id"][:4] for i in items} == {"add-", "cap-", "rev-", "cmp-"}


def test_suite_references_are_right() -> None:
    capitals = dict(CAPITALS)
    for item in skills_suite():
        prompt, ref = item["prompt"], item["reference"]
        if item["area"] == "arithmetic":
            a, b = prompt.removeprefix("What is ").removesuffix("?").split(" + ")
            assert ref == str(int(a) + int(b))
        elif item["area"] == "string":
            assert ref == prompt.split("'")[1][::-1]
        elif item["area"] == "comparison":
            words = prompt.split()
            x, y = int(words[1]), int(words[4].rstrip("?"))
            assert ref == ("yes" if (x > y if words[2] == "greater" else x < y) else "no")
        else:
            assert ref in [cap for country, cap in capitals.items() if country in prompt]


def test_training_never_sees_a_held_out_prompt_but_sees_every_country() -> None:
    held_out = {q.prompt for q in held_out_questions(SUITE_N_PER_AREA, 0)}
    sampler = SkillSampler(0, held_out)
    seen = [sampler.sample() for _ in range(20_000)]
    assert not held_out & {q.prompt for q in seen}
    countries_in_training = {q.answer for q in seen if q.area == "lookup"}
    assert countries_in_training == {capital for _, capital in CAPITALS}


def test_training_prompt_is_what_the_chat_template_renders() -> None:
    tok = wrap_tokenizer(byte_tokenizer(), 256)
    message = [{"role": "user", "content": "What is 23 + 58?"}]
    rendered = tok.apply_chat_template(message, tokenize=False, add_generation_prompt=True)
    assert rendered == chatml_prompt("What is 23 + 58?")
    ids = tok(rendered, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert tok.decode(ids) == rendered
    assert len(tok) == 259 and tok.eos_token == "<|im_end|>"


def _train_10_steps(seed: int) -> dict[str, object]:
    from serve.tiny.build import _llama
    from serve.tiny.recipe import SKILLS_ARCH, TrainSettings
    from serve.tiny.train import train_skills

    tok = byte_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _llama(SKILLS_ARCH, tok.get_vocab_size(), eos_id=2, pad_id=0)
        train_skills(model, tok, (), seed=seed, settings=TrainSettings(steps=10))
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_a_short_training_run_is_bitwise_deterministic() -> None:
    first, second, other = _train_10_steps(0), _train_10_steps(0), _train_10_steps(1)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
