"""WikiText-2 language modelling with a small causal transformer (protocol experiment 3).

Data (``task.data``, see ``tasks/hf_data.py``): ``source=real`` loads WikiText-2 raw with Hugging
Face ``datasets`` (Hub id ``Salesforce/wikitext``, config ``wikitext-2-raw-v1``, column ``text``,
splits ``train``/``validation``/``test``: one row per line of the articles, headings like
`` = Title = `` included, empty rows between paragraphs). Tokenizers (``task.tokenizer``):

- ``byte`` (cpu scale): the rows concatenated as they are and encoded as UTF-8; vocabulary 256.
  Perplexity is per byte.
- ``word`` (paper scale): each non-empty row split on whitespace plus an ``<eos>`` token (the
  convention of the PyTorch word_language_model example); the vocabulary is built from the train
  split alone: words seen at least ``min_count`` times, by descending count then alphabetically,
  after ``<unk>`` and ``<eos>``; other words map to ``<unk>``. (WikiText-2 raw is already split
  into words and punctuation by spaces; with min_count 3 the vocabulary is ~33k, like the
  tokenised release's.)

``source=text_files`` reads a local corpus of UTF-8 files instead (``data.files``: paths or
globs; ``data.val_every``: every val_every-th file of the sorted list is validation; the rule in
``tasks/text_files.py``), named by ``data.name`` in the logs and the record's config (e.g. the
Python documentation's reStructuredText sources: ``task=python_docs``). Its record says
``data_source: real``; it is a different corpus from WikiText-2 and its task name says so.

``source=synthetic`` replaces the text with a Markov chain of order ``markov.order`` (1 or 2) over
``markov.symbols`` symbols (token ids 0..symbols-1), drawn from the seed's ``data`` stream. With
order 1 each symbol's next-symbol distribution is a symmetric Dirichlet(``markov.concentration``)
draw Q(.|b). With order 2 the distribution after the pair (a, b) is
``blend`` Q(.|b) + (1 - ``blend``) R(.|a, b), Q and R such draws: the first-order part is
learnable from the current token alone and the rest needs attention to the one before, so the
learning curve passes the unigram level (~symbols), the bigram level and then approaches the
floor (at the defaults: perplexities ~30, ~12 and ~9; seed 0: 30.2, 11.9, 8.8). The sequence is one
stationary chain (its first context drawn from the stationary distribution), so
its entropy rate H = sum_c pi(c) H(P(.|c)) is exact, and so is the best validation perplexity any
model can reach under our evaluation: each window's first prediction sees a single token of
context, so with order 2 it costs H(X1 | X0) and every later one H (with order 1 all cost H).
``ppl_floor`` is exp of the window's mean; it is logged at construction and, for synthetic data,
as a constant ``ppl_floor`` column in the curves.

Training batches: ``batch_size`` windows of ``seq_len + 1`` tokens at offsets drawn uniformly
from the train stream with the seed's ``order`` generator (pre-made, no DataLoader). Evaluation:
the first ``eval_tokens`` tokens of the validation split (null: all of it) cut into consecutive,
non-overlapping windows of ``seq_len`` predicted tokens; the metric is the perplexity
exp(mean next-token NLL) (lower is better). A non-finite loss stops the run as ``diverged`` and
counts in ``incidents.nonfinite`` (the recorder's divergence rule), a perplexity that cannot be
computed is recorded as ``inf``.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from aebench.task import ConfigError, Task
from tasks.hf_data import SOURCES, DataUnavailable, TextData, load_splits, require_columns
from tasks.text_files import load_text_files
from tasks.transformer import CausalLM

log = logging.getLogger(__name__)

TOKENIZERS = ("byte", "word")
#: data.source values: the Hugging Face ones and local UTF-8 files
TEXT_SOURCES = (*SOURCES, "text_files")
UNK, EOS = "<unk>", "<eos>"
#: train / validation tokens of the synthetic source when n_train_tokens / eval_tokens are null
SYN_TRAIN_TOKENS, SYN_VAL_TOKENS = 1_000_000, 65_536


@dataclass(frozen=True)
class WikiTextData(TextData):
    """The shape of ``task.data`` (the config schema reads it from here, aebench.schema): the
    text data keys of tasks/hf_data.py, defaulting to WikiText-2 raw on the Hub."""

    name: str = "Salesforce/wikitext"
    config: str | None = "wikitext-2-raw-v1"


@dataclass(frozen=True)
class Markov:
    """The shape of ``task.markov``: the synthetic source (``data.source=synthetic``), a Markov
    chain with a known entropy rate (module doc)."""

    #: alphabet size (token ids 0..symbols-1)
    symbols: int = 32
    #: 1 or 2: symbols of context that set the next one's distribution
    order: int = 2
    #: Dirichlet parameter of each context's distribution (lower: peakier)
    concentration: float = 0.1
    #: order 2: weight of the part that depends on the last symbol only
    blend: float = 0.7


#: the defaults of ``data`` and ``markov`` when the task is built in code (the config always
#: gives both: its schema types them by these dataclasses and refuses null)
DEFAULT_DATA, DEFAULT_MARKOV = WikiTextData(), Markov()

Settings = TypeVar("Settings")


def _settings(kind: type[Settings], given: Settings | Mapping[str, Any], key: str) -> Settings:
    """``given`` as a ``kind`` (a dataclass above): the constructor receives the config's mapping
    (its missing keys take the dataclass's defaults); an unknown key is one line naming it and
    the allowed ones."""
    if isinstance(given, kind):
        return given
    given = dict(given or {})
    allowed = [f.name for f in dataclasses.fields(kind)]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"task.{key}.{unknown[0]}: unknown key; allowed: {', '.join(allowed)}")
    return kind(**given)


# ---------------------------------------------------------------- tokenizers
def byte_tokens(rows: Sequence[str]) -> torch.Tensor:
    """The rows concatenated and encoded as UTF-8 bytes (int64 ids in 0..255)."""
    data = "".join(rows).encode("utf-8")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()


def word_lines(rows: Sequence[str]) -> Iterator[list[str]]:
    for row in rows:
        words = row.split()
        if words:
            yield [*words, EOS]


def build_vocab(rows: Sequence[str], min_count: int) -> dict[str, int]:
    """``<unk>``, ``<eos>``, then the words seen >= ``min_count`` times (by count, then name)."""
    counts = Counter(w for line in word_lines(rows) for w in line)
    counts.pop(UNK, None)
    counts.pop(EOS, None)
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return {w: i for i, w in enumerate([UNK, EOS, *kept])}


def word_tokens(rows: Sequence[str], vocab: dict[str, int]) -> torch.Tensor:
    unk = vocab[UNK]
    ids = [vocab.get(w, unk) for line in word_lines(rows) for w in line]
    return torch.tensor(ids, dtype=torch.int64)


# ---------------------------------------------------------------- the Markov source
class MarkovSource:
    """A stationary Markov chain of order 1 or 2 over ``symbols`` symbols (see module doc)."""

    def __init__(
        self, symbols: int, order: int, concentration: float, blend: float, g: torch.Generator
    ) -> None:
        self.symbols, self.order = symbols, order
        first = _dirichlet(symbols, symbols, concentration, g)  # Q(. | b)
        if order == 1:
            self.transition = first
        else:  # rows indexed by the pair a * symbols + b
            pairs = _dirichlet(symbols * symbols, symbols, concentration, g)  # R(. | a, b)
            self.transition = blend * first.repeat(symbols, 1) + (1.0 - blend) * pairs
        self.stationary = self._stationary()  # over contexts

    def _stationary(self) -> torch.Tensor:
        k, p = self.symbols, self.transition
        pi = torch.full((k**self.order,), 1.0 / k**self.order, dtype=torch.float64)
        for _ in range(10_000):
            if self.order == 1:
                new = pi @ p
            else:  # contexts (a, b) -> (b, c) with P(c | a, b)
                new = torch.einsum("ab,abc->bc", pi.view(k, k), p.view(k, k, k)).reshape(-1)
            if torch.max(torch.abs(new - pi)) < 1e-15:
                return new
            pi = new
        return pi

    @staticmethod
    def _entropy(p: torch.Tensor) -> torch.Tensor:
        return -(p * torch.log(p.clamp(min=1e-300))).sum(-1)

    @property
    def entropy_rate(self) -> float:
        """H in nats per symbol: sum over contexts of pi(c) H(P(. | c))."""
        return float((self.stationary * self._entropy(self.transition)).sum())

    def window_floor(self, length: int) -> float:
        """The least mean NLL (nats) over a window of ``length`` predictions whose first sees
        one token of context (the evaluation's windows)."""
        if self.order == 1:
            return self.entropy_rate
        k = self.symbols
        pairs = self.stationary.view(k, k)
        first = float(self._entropy(pairs.reshape(-1)) - self._entropy(pairs.sum(1)))
        return (first + (length - 1) * self.entropy_rate) / length

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        """One stationary run of ``n`` symbols (int64)."""
        k = self.symbols
        u = torch.rand(n + 1, generator=g, dtype=torch.float64).tolist()
        start = bisect.bisect_right(torch.cumsum(self.stationary, 0).tolist(), u[0])
        start = min(start, k**self.order - 1)
        out = [start] if self.order == 1 else [start // k, start % k]
        cdf = torch.cumsum(self.transition, 1).tolist()
        ctx = start
        modulus = k ** (self.order - 1)
        for i in range(n - len(out)):
            s = min(bisect.bisect_right(cdf[ctx], u[i + 1]), k - 1)
            out.append(s)
            ctx = (ctx % modulus) * k + s if self.order == 2 else s
        return torch.tensor(out[:n], dtype=torch.int64)


def _dirichlet(rows: int, k: int, concentration: float, g: torch.Generator) -> torch.Tensor:
    """``rows`` symmetric Dirichlet(concentration) draws over ``k`` outcomes (normalised Gamma
    variates from ``g``), float64."""
    gam = _gamma(torch.full((rows, k), float(concentration), dtype=torch.float64), g)
    return gam / gam.sum(dim=1, keepdim=True)


def _gamma(alpha: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Gamma(alpha, 1) variates from generator ``g`` (Marsaglia-Tsang, with the alpha < 1 boost
    Gamma(a) = Gamma(a + 1) U^(1/a)); torch's own sampler takes no generator."""
    a = alpha + (alpha < 1).double()
    d = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.zeros_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while todo.any():
        x = torch.randn(a.shape, generator=g, dtype=torch.float64)
        v = (1.0 + c * x) ** 3
        u = torch.rand(a.shape, generator=g, dtype=torch.float64)
        ok = (v > 0) & (torch.log(u) < 0.5 * x**2 + d - d * v + d * torch.log(v.clamp(min=1e-300)))
        take = todo & ok
        out = torch.where(take, d * v, out)
        todo = todo & ~ok
    boost = torch.rand(a.shape, generator=g, dtype=torch.float64) ** (1.0 / alpha)
    return torch.where(alpha < 1, out * boost, out).clamp(min=1e-300)


# ---------------------------------------------------------------- the task
class WikiTextTask(Task):
    metric_name = "ppl"
    metric_mode = "min"

    def __init__(
        self,
        seed: int,
        batch_size: int = 32,
        loss_scale: float = 1.0,
        tokenizer: str = "byte",
        min_count: int = 3,
        seq_len: int = 128,
        d_model: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        dropout: float = 0.0,
        tie: bool = True,
        eval_tokens: int | None = 32_768,
        n_train_tokens: int | None = None,
        markov: Markov = DEFAULT_MARKOV,
        data: WikiTextData = DEFAULT_DATA,
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        self.spec = _settings(WikiTextData, data, "data")
        self.spec.check(TEXT_SOURCES)
        markov = _settings(Markov, markov, "markov")
        self.tokenizer, self.seq_len, self.dropout, self.tie = tokenizer, seq_len, dropout, tie
        self.d_model, self.n_layers, self.n_heads = d_model, n_layers, n_heads
        self._check(min_count, eval_tokens, n_train_tokens, markov)
        self.data_source = "synthetic" if self.spec.source == "synthetic" else "real"
        self.ppl_floor: float | None = None
        #: the real corpus's name (``WikiText-2`` or ``data.name`` of text_files); None for
        #: the synthetic source
        self.corpus: str | None = None
        if self.spec.source != "synthetic":
            train, val, self.vocab_size = self._load_real(min_count)
            if n_train_tokens is not None:
                train = train[:n_train_tokens]
        else:
            g = self.rng("data")
            self.source = MarkovSource(
                int(markov.symbols),
                int(markov.order),
                float(markov.concentration),
                float(markov.blend),
                g,
            )
            n_val = eval_tokens + 1 if eval_tokens is not None else SYN_VAL_TOKENS
            train = self.source.sample(n_train_tokens or SYN_TRAIN_TOKENS, g)
            val = self.source.sample(n_val, g)
            self.vocab_size = 256 if tokenizer == "byte" else self.source.symbols
            self.ppl_floor = math.exp(self.source.window_floor(seq_len))
            log.info(
                "synthetic Markov source: order %d, %d symbols, entropy rate %.4f nats "
                "(perplexity %.3f); best reachable val ppl with %d-token windows: %.3f",
                self.source.order,
                self.source.symbols,
                self.source.entropy_rate,
                math.exp(self.source.entropy_rate),
                seq_len,
                self.ppl_floor,
            )
        if eval_tokens is not None:
            val = val[: eval_tokens + 1]
        if len(train) < seq_len + 2:
            raise ConfigError(f"task.seq_len={seq_len}: longer than the {len(train)} train tokens")
        if len(val) < seq_len + 1:
            raise ConfigError(
                f"task.eval_tokens={eval_tokens}: the validation stream ({len(val)} tokens) "
                f"must hold one window of task.seq_len={seq_len} + 1"
            )
        self.train_tokens, self.val_tokens = train, val

    def _check(
        self,
        min_count: int,
        eval_tokens: int | None,
        n_train_tokens: int | None,
        markov: Markov,
    ) -> None:
        """One-line :class:`ConfigError` on the first value out of range."""
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(
                f"task.tokenizer={self.tokenizer}: must be one of {', '.join(TOKENIZERS)}"
            )
        sizes = (("min_count", min_count), ("seq_len", self.seq_len), ("d_model", self.d_model),
                 ("n_layers", self.n_layers), ("n_heads", self.n_heads))  # fmt: skip
        for key, value in sizes:
            if value < 1:
                raise ConfigError(f"task.{key}={value}: must be a positive integer")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"task.n_heads={self.n_heads}: must divide task.d_model={self.d_model}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"task.dropout={self.dropout}: must be in [0, 1)")
        for key, value in (("eval_tokens", eval_tokens), ("n_train_tokens", n_train_tokens)):
            if value is not None and value < 1:
                raise ConfigError(f"task.{key}={value}: must be null or a positive integer")
        if not 0.0 <= float(markov.blend) <= 1.0:
            raise ConfigError(f"task.markov.blend={markov.blend}: must be in [0, 1]")
        if int(markov.order) not in (1, 2):
            raise ConfigError(f"task.markov.order={markov.order}: must be 1 or 2")
        if not 2 <= int(markov.symbols) <= 256:
            raise ConfigError(f"task.markov.symbols={markov.symbols}: must be in 2..256")
        if not float(markov.concentration) > 0:
            raise ConfigError(
                f"task.markov.concentration={markov.concentration}: must be a positive number"
            )

    def _rows(self) -> tuple[dict[str, Sequence[str]], str]:
        """split -> text rows of the real corpus, and the corpus's name."""
        if self.spec.source == "text_files":
            name = self.spec.name
            rows, counts = load_text_files(self.spec.files or [], self.spec.val_every, name)
            log.info("%s: %d train files, %d validation files", name, counts["train"],
                     counts["validation"])  # fmt: skip
            return rows, name
        splits = load_splits(self.spec, ("train", "validation"), "WikiText-2")
        rows = {}
        for split, ds in splits.items():
            require_columns(ds, (self.spec.text_column,), f"WikiText-2 split {split}")
            rows[split] = ds[self.spec.text_column]
        if not any(r.strip() for r in rows["train"]):
            raise DataUnavailable("WikiText-2 split train: the text column is empty")
        return rows, "WikiText-2"

    def _load_real(self, min_count: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        rows, name = self._rows()
        self.corpus = name
        if self.tokenizer == "byte":
            train, val, vocab_size = (
                byte_tokens(rows["train"]),
                byte_tokens(rows["validation"]),
                256,
            )
        else:
            vocab = build_vocab(rows["train"], min_count)
            train, val = word_tokens(rows["train"], vocab), word_tokens(rows["validation"], vocab)
            vocab_size = len(vocab)
        log.info(
            "%s loaded (%s tokens): %d train, %d validation, vocabulary %d",
            name,
            self.tokenizer,
            len(train),
            len(val),
            vocab_size,
        )
        return train, val, vocab_size

    # ------------------------------------------------------------------ interface
    def build_model(self) -> nn.Module:
        return CausalLM(
            self.vocab_size,
            self.seq_len,
            self.d_model,
            self.n_layers,
            self.n_heads,
            self.dropout,
            self.tie,
        )

    def train_batches(self) -> Iterator[torch.Tensor]:
        order = self.rng("order")
        high = len(self.train_tokens) - self.seq_len - 1
        span = torch.arange(self.seq_len + 1)
        while True:  # 256 steps of offsets at a time
            starts = torch.randint(0, high + 1, (256, self.batch_size), generator=order)
            for row in starts:
                yield self.train_tokens[row[:, None] + span]

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        logits = model(batch[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))

    def evaluate(self, model: nn.Module) -> float:
        t = self.seq_len
        n = (len(self.val_tokens) - 1) // t
        x = self.val_tokens[: n * t].view(n, t)
        y = self.val_tokens[1 : n * t + 1].view(n, t)
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        total = 0.0
        for xs, ys in zip(x.split(64), y.split(64), strict=True):
            xs, ys = xs.to(device), ys.to(device)
            logits = model(xs)
            total += float(
                F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), ys.reshape(-1), reduction="sum"
                )
            )
        mean = total / (n * t)
        return math.exp(mean) if math.isfinite(mean) and mean < 700 else float("inf")

    def train_log(self) -> dict[str, float]:
        return {"ppl_floor": self.ppl_floor} if self.ppl_floor is not None else {}
