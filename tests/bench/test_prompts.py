"""Prompt building: exact token lengths with real tokenizers, determinism, distributions, files, prefixes."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest
from pydantic import ValidationError
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from bench.errors import ConfigError, UsageError
from bench.prompts import PromptSpec, build_requests, iter_requests, parse_length
from bench.prompts.synthetic import _WORDS
from bench.tokenizer import ApproxTokenizer, HFTokenizer, load_tokenizer

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def chatml(user: str) -> str:
    """What CHATML renders for one user message, written out by hand."""
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny byte-level BPE (vocab 500) trained on text that only partly covers the prompt words."""
    rng = random.Random(0)
    words = [*_WORDS[::2], "zorb", "quix", "menta"]  # half the words are unseen: they split into pieces
    lines = [" ".join(rng.choices(words, k=12)) for _ in range(2000)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    folder = tmp_path_factory.mktemp("bpe")
    tok.save(str(folder / "tokenizer.json"))
    config = {"chat_template": CHATML, "eos_token": {"content": "<|im_end|>"}, "tokenizer_class": "X"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def raw(bpe_dir: Path) -> Tokenizer:
    return Tokenizer.from_file(str(bpe_dir / "tokenizer.json"))


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_synthetic_prompts_have_exact_lengths_as_the_server_counts_them(
    bpe_dir: Path, raw: Tokenizer, api: str
) -> None:
    tok = load_tokenizer(bpe_dir)
    assert not tok.approximate and tok.chat_exact
    spec = PromptSpec(unit="model", api=api, input_tokens="uniform:20:700", output_tokens="normal:64:16")
    requests = build_requests(spec, 150, seed=3, tokenizer=tok)
    lengths = random.Random("3:input-lengths")
    for i, request in enumerate(requests):
        target = spec.input_tokens.sample(lengths)
        if api == "chat":
            assert request.messages is not None and request.prompt is None
            seen = len(raw.encode(chatml(request.messages[0]["content"]), add_special_tokens=False).ids)
        else:
            assert request.prompt is not None and request.messages is None
            seen = len(raw.encode(request.prompt).ids)
        assert request.request_id == i
        assert seen == request.input_tokens == target


def test_byte_tokenizer_where_every_word_is_several_tokens() -> None:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    raw = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok = HFTokenizer(raw, name="bytes")
    for request in build_requests(
        PromptSpec(unit="model", api="completions", input_tokens="uniform:1:300"), 100, 1, tok
    ):
        assert request.prompt is not None
        assert len(request.prompt.encode()) == request.input_tokens


def test_same_seed_same_requests_other_seed_other_requests(bpe_dir: Path) -> None:
    tok = load_tokenizer(bpe_dir)
    spec = PromptSpec(
        unit="model", input_tokens="uniform:10:100", output_tokens="uniform:1:50", temperature=0.5
    )
    first = build_requests(spec, 20, seed=7, tokenizer=tok)
    assert first == build_requests(spec, 20, seed=7, tokenizer=load_tokenizer(bpe_dir))
    other = build_requests(spec, 20, seed=8, tokenizer=tok)
    assert [r.messages for r in first] != [r.messages for r in other]
    assert len({r.messages[0]["content"] for r in first if r.messages}) == 20  # all distinct prompts
    stream = iter_requests(spec, 7, tok)
    assert [next(stream) for _ in range(20)] == first  # a list is a prefix of the endless stream
    assert all(r.temperature == 0.5 and not r.ignore_eos for r in first)


def test_length_distributions() -> None:
    rng = random.Random(1)
    assert [parse_length("128").sample(rng) for _ in range(3)] == [128, 128, 128]
    assert parse_length(" fixed:5 ").sample(rng) == 5
    uniform = [parse_length("uniform:64:256").sample(rng) for _ in range(4000)]
    assert min(uniform) == 64 and max(uniform) == 256
    normal = [parse_length("normal:512:64").sample(rng) for _ in range(4000)]
    assert abs(statistics.mean(normal) - 512) < 5 and abs(statistics.stdev(normal) - 64) < 5
    assert min(parse_length("normal:2:50").sample(rng) for _ in range(200)) == 1  # clamped at 1 token
    assert str(parse_length("uniform:1:2")) == "uniform:1:2"


@pytest.mark.parametrize(
    "bad", ["0", "-3", "abc", "uniform:9", "uniform:9:3", "normal:5:x", "poisson:3:4", ""]
)
def test_bad_length_strings_name_the_flag(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_length(bad, flag="--output-tokens")
    assert info.value.flag == "--output-tokens" and "--output-tokens" in str(info.value)


def test_approximate_tokenizer_is_labelled_and_sizes_by_characters() -> None:
    tok = load_tokenizer(None)
    assert isinstance(tok, ApproxTokenizer) and tok.approximate and tok.name == "approx:chars/4"
    requests = build_requests(
        PromptSpec(unit="model", api="completions", input_tokens="uniform:1:200"), 50, 2
    )
    lengths = random.Random("2:input-lengths")
    dist = parse_length("uniform:1:200")
    for request in requests:
        assert request.input_tokens is None  # an estimate is never passed off as a token count
        assert request.prompt is not None
        assert -(-len(request.prompt) // 4) == dist.sample(lengths)


def test_load_tokenizer_from_file_folder_and_errors(bpe_dir: Path, tmp_path: Path) -> None:
    assert load_tokenizer(bpe_dir / "tokenizer.json").count("the of") == load_tokenizer(bpe_dir).count(
        "the of"
    )
    with pytest.raises(ConfigError, match="neither"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"no tokenizer\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{broken")
    with pytest.raises(ConfigError, match="cannot read tokenizer"):
        load_tokenizer(tmp_path)


def test_chat_rendering_matches_transformers(bpe_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(bpe_dir / "tokenizer.json"), chat_template=CHATML
    )
    ours = load_tokenizer(bpe_dir)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "the of and"}]
    expected = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert isinstance(ours, HFTokenizer) and ours.render_chat(messages) == expected
    assert ours.count_chat(messages) == len(hf(expected, add_special_tokens=False)["input_ids"])


def test_shared_prefix_requests_share_exact_token_prefixes(bpe_dir: Path, raw: Tokenizer) -> None:
    tok = load_tokenizer(bpe_dir)
    spec = PromptSpec(
        unit="model", kind="shared-prefix", num_prefixes=3, prefix_tokens=64, input_tokens="uniform:8:40"
    )
    requests = build_requests(spec, 12, seed=5, tokenizer=tok)
    ids = [
        raw.encode(chatml(r.messages[0]["content"]), add_special_tokens=False).ids
        for r in requests
        if r.messages
    ]
    header = len(raw.encode(chatml("")[: chatml("").index("<|im_end|>")]).ids)
    overhead = len(raw.encode(chatml(""), add_special_tokens=False).ids)
    lengths = random.Random("5:suffix-lengths")
    for i, tokens in enumerate(ids):
        twin = ids[i % 3]
        shared = next((k for k, (a, b) in enumerate(zip(tokens, twin, strict=False)) if a != b), len(tokens))
        assert shared >= header + 64  # the whole prefix is the same tokens in every request that carries it
        assert len(tokens) == requests[i].input_tokens == overhead + 64 + spec.input_tokens.sample(lengths)
    assert ids[0][header : header + 64] != ids[1][header : header + 64]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_sharegpt_file(tmp_path: Path, bpe_dir: Path) -> None:
    data = [
        {
            "conversations": [
                {"from": "human", "value": "What is up?"},
                {"from": "gpt", "value": "the of and to"},
            ]
        },
        {"conversations": [{"from": "gpt", "value": "no human turn: skipped"}]},
        {"conversations": [{"from": "system", "value": "sys"}, {"from": "human", "value": "Hi"}]},
    ]
    path = _write(tmp_path / "sg.json", json.dumps(data))
    tok = load_tokenizer(bpe_dir)
    spec = PromptSpec(unit="model", kind="file", dataset=path, output_tokens=None, shuffle=False)
    requests = build_requests(spec, 5, 0, tok)
    assert [r.messages[0]["content"] for r in requests if r.messages] == ["What is up?", "Hi"] * 2 + [
        "What is up?"
    ]
    assert requests[0].max_tokens == tok.count("the of and to")  # sized by the recorded reply
    assert requests[1].max_tokens == 128  # no reply: the default
    assert requests[0].input_tokens == tok.count_chat(requests[0].messages or [])
    fixed = build_requests(spec.model_copy(update={"output_tokens": parse_length("9")}), 2, 0, tok)
    assert [r.max_tokens for r in fixed] == [9, 9]
    shuffled = build_requests(PromptSpec(kind="file", dataset=path, output_tokens=None), 40, 1, tok)
    assert len({r.messages[0]["content"] for r in shuffled if r.messages}) == 2


def test_jsonl_file_prompts_messages_and_max_tokens(tmp_path: Path) -> None:
    lines = [
        json.dumps({"prompt": "Complete this", "max_tokens": 7}),
        "",
        json.dumps({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]}),
    ]
    path = _write(tmp_path / "p.jsonl", "\n".join(lines))
    spec = PromptSpec(kind="file", dataset=path, output_tokens=None, shuffle=False, api="completions")
    first, second = build_requests(spec, 2, 0)
    assert (first.prompt, first.max_tokens, first.input_tokens) == ("Complete this", 7, None)
    assert (second.prompt, second.max_tokens) == ("S\nU", 128)
    chat = build_requests(spec.model_copy(update={"api": "chat"}), 2, 0)
    assert chat[0].messages == [{"role": "user", "content": "Complete this"}]
    assert chat[1].messages is not None and len(chat[1].messages) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt": "ok"}\n{"prompt": broken}\n', ":2: not valid JSON"),
        ('{"prompt": "ok"}\n\n{"text": "x"}\n', ":3: a prompt line needs"),
        ('{"prompt": "ok", "max_tokens": 0}\n', ":1: max_tokens must be"),
        ('{"messages": []}\n', ":1: 'messages' must be"),
        ("[1, 2]", "entry 0 is not a ShareGPT conversation"),
        ('[{"conversations": [{"from": "human"}]}]', "turn 0 needs"),
        ("[{", ":1: not valid JSON"),
        ("\n\n", "no usable prompts"),
    ],
)
def test_malformed_prompt_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", text)
    with pytest.raises(ConfigError) as info:
        build_requests(PromptSpec(kind="file", dataset=path), 1, 0)
    assert str(path) in str(info.value) and message in str(info.value)
    assert info.value.file == str(path)


def test_prompt_spec_validation(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs 'dataset'"):
        PromptSpec(kind="file")
    with pytest.raises(ValidationError, match="extra"):
        PromptSpec(input_tokenz="5")  # type: ignore[call-arg]
    with pytest.raises(UsageError, match="--input-tokens"):
        PromptSpec(input_tokens="uniform:5")
    with pytest.raises(ConfigError, match="cannot read prompt file"):
        build_requests(PromptSpec(kind="file", dataset=tmp_path / "none.jsonl"), 1, 0)


def test_messages_the_template_cannot_render_are_a_config_error(tmp_path: Path, bpe_dir: Path) -> None:
    line = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    path = _write(tmp_path / "m.jsonl", json.dumps(line))
    with pytest.raises(ConfigError, match="cannot render these messages"):
        build_requests(PromptSpec(kind="file", dataset=path), 1, 0, load_tokenizer(bpe_dir))


def test_exact_lengths_when_merges_cross_word_boundaries() -> None:
    """No pre-tokenizer split at spaces: token counts of words do not add up, the offset path fits."""
    rng = random.Random(1)
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    raw.train_from_iterator([" ".join(rng.choices(_WORDS, k=10)) for _ in range(3000)], trainer=trainer)
    tok = HFTokenizer(raw, name="cross-word")
    requests = build_requests(
        PromptSpec(unit="model", api="completions", input_tokens="uniform:1:400"), 60, 4, tok
    )
    lengths = random.Random("4:input-lengths")
    for request in requests:
        assert request.prompt is not None
        assert (
            len(raw.encode(request.prompt).ids)
            == request.input_tokens
            == parse_length("uniform:1:400").sample(lengths)
        )


def test_without_a_chat_template_chat_lengths_are_not_claimed(bpe_dir: Path, raw: Tokenizer) -> None:
    tok = HFTokenizer(raw, name="no-template")
    assert not tok.chat_exact
    chat = build_requests(PromptSpec(unit="model", api="chat", input_tokens="50"), 3, 0, tok)
    assert [r.input_tokens for r in chat] == [None] * 3
    assert all(r.messages and tok.count(r.messages[0]["content"]) == 50 for r in chat)  # the text itself
    completions = build_requests(PromptSpec(unit="model", api="completions", input_tokens="50"), 3, 0, tok)
    assert [r.input_tokens for r in completions] == [50] * 3


@pytest.mark.slow  # several seconds: left to scripts/test, kept out of scripts/check
def test_real_model_folder_renders_like_transformers(tiny_random_dir: Path) -> None:
    """The builtin tiny model's folder: our template rendering and counts agree with transformers."""
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(tiny_random_dir))
    tok = load_tokenizer(tiny_random_dir)
    assert isinstance(tok, HFTokenizer) and tok.chat_exact
    for request in build_requests(PromptSpec(unit="model", input_tokens="uniform:20:200"), 5, 0, tok):
        assert request.messages is not None
        text = hf.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
        assert len(hf(text, add_special_tokens=False)["input_ids"]) == request.input_tokens


def test_reference_units_give_every_target_the_same_text_and_scale_its_output(bpe_dir: Path) -> None:
    # Reference tokens: prompts are sized by ⌈bytes ÷ 4⌉, so two tokenizers get the same text from the same
    # seed, and each is asked for as many of its own tokens as make the output length in reference tokens.
    from bench.prompts import output_scale
    from bench.records import reference_tokens

    spec = PromptSpec(input_tokens="40", output_tokens="10")
    bpe = load_tokenizer(bpe_dir)
    with_bpe = build_requests(spec, 40, 3, bpe)
    with_approx = build_requests(spec, 40, 3)
    assert [r.messages for r in with_bpe] == [r.messages for r in with_approx]
    texts = [str((r.messages or [{}])[0]["content"]) for r in with_bpe[:32]]
    assert all(reference_tokens(len(t.encode())) == 40 for t in texts)
    scale = sum(bpe.count(t) for t in texts) / sum(reference_tokens(len(t.encode())) for t in texts)
    assert output_scale(spec, 3, bpe) == scale
    assert {r.max_tokens for r in with_bpe} == {round(10 * scale)}
    assert {r.max_tokens for r in with_approx} == {10}  # the reference count itself: scale 1
    assert all(r.input_tokens is None for r in with_bpe)  # the model's own count comes from usage
