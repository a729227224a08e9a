"""wikitext: the loader on locally built data sets in WikiText-2's schema (save_to_disk, and a
folder of data files as a clone of the Hub repository has), both tokenizers, the fail-fast path,
the Markov stand-in's entropy and perplexity floor, the metric, and end to end at scale=smoke."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from aebench.task import ConfigError
from tasks.wikitext import EOS, UNK, MarkovSource, WikiTextTask, build_vocab
from tests.helpers import read_curves, run_in_process

datasets = pytest.importorskip("datasets")

# rows as WikiText-2 raw has them: headings, empty rows between paragraphs, trailing newlines
TRAIN_ROWS = [
    "",
    " = Valkyria Chronicles III = \n",
    "",
    " The game began development in 2010 , carrying over a large portion of the work . \n",
    " The game 's battle system , the BliTZ system , is carried over . \n",
    "",
    " = = Gameplay = = \n",
    " The game is a tactical role @-@ playing game . Ça va . \n",
] * 20
VALID_ROWS = ["", " = Tower Building = \n", " The game was built in 1885 . \n"] * 10
TEST_ROWS = ["", " The tower is a game . \n"] * 10
SMALL = {"seq_len": 16, "d_model": 16, "n_layers": 1, "n_heads": 2, "batch_size": 4}


def wikitext_dataset_dict():
    """A DatasetDict with Salesforce/wikitext's schema: one string column ``text``."""
    features = datasets.Features({"text": datasets.Value("string")})
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict({"text": rows}, features=features)
            for split, rows in (
                ("train", TRAIN_ROWS),
                ("validation", VALID_ROWS),
                ("test", TEST_ROWS),
            )  # fmt: skip
        }
    )


@pytest.fixture(scope="module")
def wikitext_on_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "wikitext2"
    wikitext_dataset_dict().save_to_disk(str(path))
    return path


def real(path: Path | str | None = None, **data) -> dict:  # noqa: ANN003
    return {"source": "real", "path": str(path) if path else None, **data}


# ------------------------------------------------------------------ loader and tokenizers
def test_byte_tokens_are_the_utf8_of_the_rows(wikitext_on_disk: Path) -> None:
    task = WikiTextTask(seed=0, tokenizer="byte", eval_tokens=None, data=real(wikitext_on_disk),
                        **SMALL)  # fmt: skip
    assert task.data_source == "real" and task.vocab_size == 256
    assert bytes(task.train_tokens.to(torch.uint8).tolist()) == "".join(TRAIN_ROWS).encode()
    assert bytes(task.val_tokens.to(torch.uint8).tolist()) == "".join(VALID_ROWS).encode()


def test_word_vocabulary_comes_from_train_with_min_count_and_unk(wikitext_on_disk: Path) -> None:
    task = WikiTextTask(seed=0, tokenizer="word", min_count=20, eval_tokens=None,
                        data=real(wikitext_on_disk), **SMALL)  # fmt: skip
    vocab = build_vocab(TRAIN_ROWS, 20)
    assert task.vocab_size == len(vocab)
    assert list(vocab)[:2] == [UNK, EOS]
    assert "game" in vocab and "Valkyria" in vocab  # 20 and 20 occurrences
    assert "Tower" not in vocab  # validation only
    ids = {i: w for w, i in vocab.items()}
    val_words = [ids[i] for i in task.val_tokens.tolist()]
    assert val_words[:5] == ["=", UNK, UNK, "=", EOS]  # "Tower Building" never in train
    lines = sum(1 for r in VALID_ROWS if r.strip())
    assert val_words.count(EOS) == lines
    raised = WikiTextTask(seed=0, tokenizer="word", min_count=21, eval_tokens=None,
                          data=real(wikitext_on_disk), **SMALL)  # fmt: skip
    assert raised.vocab_size < task.vocab_size


def test_loads_a_folder_of_data_files_like_a_hub_clone(tmp_path: Path) -> None:
    # git clone https://huggingface.co/datasets/Salesforce/wikitext has one folder per config
    folder = tmp_path / "wikitext" / "wikitext-2-raw-v1"
    folder.mkdir(parents=True)
    dd = wikitext_dataset_dict()
    for split in dd:
        dd[split].to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    task = WikiTextTask(seed=0, tokenizer="byte", eval_tokens=None,
                        data=real(tmp_path / "wikitext", cache_dir=str(tmp_path / "cache")),
                        **SMALL)  # fmt: skip
    assert bytes(task.train_tokens.to(torch.uint8).tolist()) == "".join(TRAIN_ROWS).encode()


def test_missing_split_or_column_is_one_line(tmp_path: Path) -> None:
    dd = wikitext_dataset_dict()
    datasets.DatasetDict({"train": dd["train"]}).save_to_disk(str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="no split validation") as info:
        WikiTextTask(seed=0, data=real(tmp_path / "a"), **SMALL)
    assert "\n" not in str(info.value)
    renamed = datasets.DatasetDict({s: d.rename_column("text", "line") for s, d in dd.items()})
    renamed.save_to_disk(str(tmp_path / "b"))
    with pytest.raises(ConfigError, match="no column text"):
        WikiTextTask(seed=0, data=real(tmp_path / "b"), **SMALL)
    task = WikiTextTask(seed=0, data=real(tmp_path / "b", text_column="line"), eval_tokens=None,
                        **SMALL)  # fmt: skip
    assert task.data_source == "real"


def test_missing_data_fails_fast_with_instructions(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        WikiTextTask(seed=0, data=real(cache_dir=str(tmp_path / "empty")), **SMALL)
    assert time.perf_counter() - t0 < 5.0
    message = str(info.value)
    assert "\n" not in message and "WikiText-2" in message
    assert "'Salesforce/wikitext', 'wikitext-2-raw-v1'" in message
    for how in ("save_to_disk", "task.data.path=DIR", "Hugging Face cache",
                "task.data.online=true", "task.data.source=synthetic"):  # fmt: skip
        assert how in message, how


def test_missing_data_stops_the_job_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="task.data.path=.*nowhere: no such folder"):
        run_in_process(["task=wikitext", "task.data.source=real",
                        f"task.data.path={tmp_path / 'nowhere'}"], out)  # fmt: skip
    assert not (out / "result.json").exists()


def test_real_data_runs_end_to_end_and_is_recorded_as_real(
    wikitext_on_disk: Path, tmp_path: Path
) -> None:
    _, rec = run_in_process(
        [
            "task=wikitext",
            "task.data.source=real",
            f"task.data.path={wikitext_on_disk}",
            "task.tokenizer=word",
            "task.min_count=2",
            "task.eval_tokens=null",
            "steps=5",
            "trainer.threads=1",
        ],  # fmt: skip
        tmp_path,
    )
    assert rec["status"] == "completed", rec["error"]
    assert rec["data_source"] == "real"
    assert rec["metric"]["name"] == "ppl" and rec["metric"]["mode"] == "min"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"tokenizer": "bpe"}, "task.tokenizer=bpe"),
        ({"n_heads": 3}, "task.n_heads=3"),
        ({"markov": {"order": 3}}, "task.markov.order=3"),
        ({"markov": {"blend": 1.5}}, "task.markov.blend=1.5"),
        ({"dropout": 1.0}, "task.dropout=1.0"),
        ({"data": {"source": "web"}}, "task.data.source=web"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_key(kwargs: dict, key: str) -> None:
    params = {**SMALL, "n_train_tokens": 2000, "eval_tokens": 256, **kwargs}
    with pytest.raises(ConfigError, match=key):
        WikiTextTask(seed=0, **params)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["task.data.val_every=abc"], "task.data.val_every=abc: must be an integer"),
        (["task.markov.order=1.5"], "task.markov.order=1.5: must be an integer"),
        (["task.markov.oder=2"], "no key 'oder' in task.markov; allowed keys: symbols, order"),
        (["task.markov=null"], "task.markov=null: field 'task.markov' is not Optional"),
        (["task.scales.smoke.d_model=abc"], "task.scales.smoke.d_model=abc: must be an integer"),
        (["task=python_docs", "task.data.val_every=abc"], "task.data.val_every=abc"),
    ],  # fmt: skip
)
def test_bad_nested_values_are_refused_by_the_preflight_in_one_line(
    argv: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    """The task's own dataclasses type ``data``, ``markov`` and the scale presets: the schema
    derived from its constructor refuses these before any job starts."""
    import sys

    from aebench import cli

    task = [] if any(a.startswith("task=") for a in argv) else ["task=wikitext"]
    argv = [*task, *argv, f"hydra.run.dir={tmp_path / 'run'}"]
    monkeypatch.setattr(sys, "argv", ["aebench", *argv])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], lines
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ the Markov stand-in
@pytest.mark.parametrize("order", [1, 2])
def test_markov_entropy_rate_matches_the_sampled_chain(order: int) -> None:
    g = torch.Generator().manual_seed(0)
    src = MarkovSource(symbols=8, order=order, concentration=0.5, blend=0.5, g=g)
    s = src.sample(200_000, g)
    k = 8
    ctx = s[:-order] if order == 1 else s[:-2] * k + s[1:-1]
    nxt = s[order:]
    # mean log-loss of the true conditionals along the sample: its expectation is the rate
    nll = -torch.log(src.transition[ctx, nxt]).mean()
    assert float(nll) == pytest.approx(src.entropy_rate, abs=0.02)
    # the sample's context frequencies match the stationary distribution
    freq = torch.bincount(ctx, minlength=k**order).double() / len(ctx)
    assert torch.allclose(freq, src.stationary, atol=0.01)
    assert 0 < src.entropy_rate < math.log(k)


def test_true_chain_reaches_the_logged_perplexity_floor_on_eval_windows() -> None:
    """The floor is what the data-generating chain itself scores under the task's evaluation
    (windows without context); a trained model cannot beat it in expectation."""
    task = WikiTextTask(seed=2, tokenizer="byte", seq_len=16, d_model=16, n_layers=1, n_heads=2,
                        n_train_tokens=2000, eval_tokens=160_000)  # fmt: skip
    src, t = task.source, task.seq_len
    k = src.symbols

    class TrueChain(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # logits at position j predict token j + 1
            logp = torch.full((*x.shape, 256), -1e9)
            pairs = src.stationary.view(k, k)
            logp[:, 0, :k] = torch.log(pairs[x[:, 0]] / pairs[x[:, 0]].sum(-1, keepdim=True))
            logp[:, 1:, :k] = torch.log(src.transition[x[:, :-1] * k + x[:, 1:]])
            return logp

    ppl = task.evaluate(TrueChain())
    assert ppl == pytest.approx(task.ppl_floor, rel=0.02)
    assert task.ppl_floor == pytest.approx(math.exp(src.window_floor(t)))
    assert task.ppl_floor > math.exp(src.entropy_rate)  # the short first context costs extra


def test_metric_is_exp_of_the_mean_nll() -> None:
    task = WikiTextTask(seed=0, n_train_tokens=2000, eval_tokens=512, **SMALL)

    class Uniform(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(*x.shape, 256)

    assert task.evaluate(Uniform()) == pytest.approx(256.0, rel=1e-5)  # float32 sums


def test_synthetic_source_is_seeded_and_batches_are_shifted_windows() -> None:
    a = WikiTextTask(seed=3, n_train_tokens=5000, eval_tokens=256, **SMALL)
    b = WikiTextTask(seed=3, n_train_tokens=5000, eval_tokens=256, **SMALL)
    c = WikiTextTask(seed=4, n_train_tokens=5000, eval_tokens=256, **SMALL)
    assert a.data_source == "synthetic" and a.corpus is None
    assert torch.equal(a.train_tokens, b.train_tokens)
    assert not torch.equal(a.train_tokens, c.train_tokens)
    batch = next(a.train_batches())
    assert batch.shape == (SMALL["batch_size"], SMALL["seq_len"] + 1)
    assert torch.equal(batch, next(b.train_batches()))
    assert int(batch.max()) < a.source.symbols


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize("ae", ["off", "on"])
def test_smoke_run_completes(ae: str, tmp_path: Path) -> None:
    _, rec = run_in_process(["task=wikitext", f"ae={ae}", "trainer.threads=1"], tmp_path)
    assert rec["status"] == "completed", rec["error"]
    assert rec["data_source"] == "synthetic" and rec["steps"] == rec["budget"] == 30
    rows = read_curves(tmp_path / "curves.csv")
    ppl = [float(r["val_ppl"]) for r in rows if r.get("val_ppl")]
    assert ppl[-1] < ppl[0] < 300  # starts near the 256-way uniform, learns
    floors = {float(r["ppl_floor"]) for r in rows if r.get("ppl_floor")}
    assert len(floors) == 1 and 1 < floors.pop() < ppl[-1]
    if ae == "on":
        assert any(r.get("rho") for r in rows)


def test_nonfinite_loss_is_an_incident(tmp_path: Path) -> None:
    _, rec = run_in_process(
        ["task=wikitext", "optimizer=sgd", "optimizer.lr=1e8", "trainer.threads=1"], tmp_path
    )
    assert rec["status"] == "diverged"
    assert rec["incidents"]["divergence"] == 1


# ------------------------------------------------------------------ data.source=text_files
def write_corpus(root: Path, n: int = 5) -> list[Path]:
    """``n`` small UTF-8 files in two folders (one without a final newline, one non-ASCII)."""
    files = []
    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        text = f"Document {i}: the quick brown fox.\nIt jumps over déjà vu {i}.\n" * 8
        path = folder / f"doc{i}.rst.txt"
        path.write_text(text if i != 3 else text.rstrip("\n"), encoding="utf-8")
        files.append(path)
    return files


def text_files(root: Path, **kw: object) -> dict:
    return {"source": "text_files", "files": [str(root / "**" / "*.rst.txt")],
            "name": "tiny corpus", **kw}  # fmt: skip


def test_text_files_split_every_kth_sorted_file(tmp_path: Path) -> None:
    from tasks.text_files import match_files, split_files

    write_corpus(tmp_path, n=7)
    files = match_files([str(tmp_path / "**" / "*.rst.txt"), str(tmp_path / "a" / "doc1.rst.txt")])
    assert len(files) == 7 and files == sorted(files, key=str)  # each file once, sorted
    train, val = split_files(files, val_every=3)
    assert val == [files[2], files[5]] and train == [f for f in files if f not in val]


def test_text_files_bytes_are_the_train_files_concatenated(tmp_path: Path) -> None:
    from tasks.text_files import match_files, split_files

    write_corpus(tmp_path, n=5)
    task = WikiTextTask(seed=0, tokenizer="byte", eval_tokens=None,
                        data=text_files(tmp_path, val_every=5), **SMALL)  # fmt: skip
    assert task.data_source == "real" and task.vocab_size == 256
    assert task.corpus == "tiny corpus"  # data.name, for the record's extra.data
    train, val = split_files(match_files([str(tmp_path / "**" / "*.rst.txt")]), 5)

    def blob(paths: list[Path]) -> bytes:
        texts = [p.read_text(encoding="utf-8") for p in paths]
        return "".join(t if t.endswith("\n") else t + "\n" for t in texts).encode()

    assert bytes(task.train_tokens.to(torch.uint8).tolist()) == blob(train)
    assert bytes(task.val_tokens.to(torch.uint8).tolist()) == blob(val)
    assert "é".encode() in blob(train)  # UTF-8 multi-byte kept as bytes


def test_text_files_word_tokens_come_from_lines(tmp_path: Path) -> None:
    write_corpus(tmp_path, n=4)
    task = WikiTextTask(seed=0, tokenizer="word", min_count=1, eval_tokens=None,
                        data=text_files(tmp_path, val_every=4), **SMALL)  # fmt: skip
    assert task.vocab_size > 10
    # 16 lines a file, three train files: one <eos> per non-empty line
    assert int((task.train_tokens == 1).sum()) == 48


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"files": []}, "task.data.files=\\[\\]"),
        ({"files": ["/nonexistent/**/*.txt"]}, "matches no file"),
        ({"val_every": 10}, "fewer than task.data.val_every=10"),
        ({"val_every": 1}, "task.data.val_every=1"),
    ],  # fmt: skip
)
def test_text_files_errors_are_one_line(tmp_path: Path, data: dict, match: str) -> None:
    write_corpus(tmp_path, n=3)
    with pytest.raises(ConfigError, match=match) as err:
        WikiTextTask(seed=0, data={**text_files(tmp_path), **data}, **SMALL)
    assert "\n" not in str(err.value)


def test_text_files_not_utf8_names_the_file(tmp_path: Path) -> None:
    files = write_corpus(tmp_path, n=3)
    files[1].write_bytes(b"caf\xe9 latin-1\n" * 40)
    with pytest.raises(ConfigError, match=f"{files[1].name} is not UTF-8 \\(byte 3"):
        WikiTextTask(seed=0, data=text_files(tmp_path, val_every=3), **SMALL)


def test_python_docs_task_is_its_own_name(tmp_path: Path) -> None:
    files = write_corpus(tmp_path, n=10)
    _, rec = run_in_process(
        ["task=python_docs", "scale=cpu", "steps=2", "scale.evals=1", "trainer.threads=1",
         f"task.data.files=[{tmp_path}/**/*.rst.txt]", "task.seq_len=16", "task.d_model=16",
         "task.n_layers=1", "task.n_heads=2", "task.batch_size=2", "task.eval_tokens=64"],
        tmp_path / "run",
    )  # fmt: skip
    assert rec["status"] == "completed", rec["error"]
    assert rec["task"] == "python_docs" and rec["data_source"] == "real"
    data = rec["config"]["task"]["data"]
    assert data["source"] == "text_files" and "WikiText" not in data["name"]
    assert data["val_every"] == 10 and rec["config"]["task"]["markov"]["order"] == 2
    assert rec["optimizer_traits"] == {}  # adamw declares none
    assert len(files) == 10
