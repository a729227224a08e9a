"""cifar_corruptions: the real-data loader on locally built data sets in CIFAR-10's schema, the
fail-fast path, the corruptions against their references, the drift modes, the models, and end
to end at scale=smoke with AE off and on."""

from __future__ import annotations

import colorsys
import glob
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from torch import nn

from aebench.task import ConfigError
from tasks.cifar_corruptions import NUM_CLASSES, CifarCorruptionsTask
from tasks.cifar_models import build_cifar_model
from tasks.corruptions import (
    CORRUPTIONS,
    SEVERITY,
    corrupt,
    distortion,
    gaussian_blur,
    hsv_to_rgb,
    pixelate,
    rgb_to_hsv,
)
from tasks.hf_data import DataUnavailable
from tests.helpers import read_curves, run_in_process

datasets = pytest.importorskip("datasets")
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]  # fmt: skip


# ------------------------------------------------------------------ data in the real schema
def cifar_arrays(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """``n`` random 32x32 RGB images whose pixel (0, 0, 0) holds the example's index."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    return images, [i % NUM_CLASSES for i in range(n)]


def cifar_dataset_dict(n_train: int = 40, n_test: int = 20, image_column: str = "img"):
    """A DatasetDict with uoft-cs/cifar10's features: ``img`` (PIL image), ``label``."""
    features = datasets.Features(
        {image_column: datasets.Image(), "label": datasets.ClassLabel(names=CLASS_NAMES)}
    )
    splits = {}
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        images, labels = cifar_arrays(n, seed)
        rows = {image_column: [Image.fromarray(a) for a in images], "label": labels}
        splits[split] = datasets.Dataset.from_dict(rows, features=features)
    return datasets.DatasetDict(splits)


@pytest.fixture(scope="module")
def cifar_on_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a user gets from ``load_dataset("uoft-cs/cifar10").save_to_disk(path)``, in small."""
    path = tmp_path_factory.mktemp("data") / "cifar10"
    cifar_dataset_dict().save_to_disk(str(path))
    return path


def fill_hub_cache(cache: Path, repo_id: str, config: str, dd) -> None:  # noqa: ANN001
    """Write ``dd`` into ``cache`` in the layout ``load_dataset(repo_id, config)`` leaves after a
    download (``<namespace>___<name>/<config>/<version>/<commit>/``), using the library's own
    writer; ``load_dataset(repo_id, config)`` offline then finds it there."""
    from datasets.data_files import DataFilesDict
    from datasets.packaged_modules.parquet.parquet import Parquet

    files = cache.parent / "parquet"
    files.mkdir(parents=True, exist_ok=True)
    for split in dd:
        dd[split].to_parquet(str(files / f"{split}.parquet"))
    patterns = {s: [str(files / f"{s}.parquet")] for s in dd}
    builder = Parquet(
        data_files=DataFilesDict.from_patterns(patterns),
        cache_dir=str(cache),
        dataset_name=repo_id.split("/")[-1],
        config_name=config,
        features=dd[next(iter(dd))].features,
    )
    builder.repo_id = repo_id  # a Hub download's builder carries it: it names the cache folder
    builder._cache_dir = builder._build_cache_dir()
    builder.download_and_prepare()
    built = Path(builder._cache_dir)
    namespace, name = repo_id.split("/")
    target = cache / f"{namespace}___{name}" / config / built.name / ("0" * 40)
    target.parent.mkdir(parents=True)
    shutil.move(str(built), str(target))
    for leftover in glob.glob(str(cache / f"{namespace}___{name}" / f"{config}-*")):
        shutil.rmtree(leftover)


def real(path: Path | None = None, **data) -> dict:  # noqa: ANN003
    return {"source": "real", "path": str(path) if path else None, **data}


# ------------------------------------------------------------------ loader
def test_loads_save_to_disk_folder_in_the_real_schema(cifar_on_disk: Path) -> None:
    task = CifarCorruptionsTask(seed=0, batch_size=8, data=real(cifar_on_disk))
    assert task.data_source == "real"
    images, labels = cifar_arrays(40, 0)
    assert task.x_train.shape == (40, 3, 32, 32) and task.x_train.dtype == torch.uint8
    assert torch.equal(task.x_train, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert task.y_train.tolist() == labels
    assert task.x_test.shape == (20, 3, 32, 32)
    assert torch.equal(task.x_test[:, 0, 0, 0], torch.arange(20, dtype=torch.uint8))


def test_subsets_take_the_first_examples(cifar_on_disk: Path) -> None:
    task = CifarCorruptionsTask(seed=0, batch_size=8, n_train=30, n_test=5,
                                data=real(cifar_on_disk))  # fmt: skip
    assert len(task.y_train) == 30 and len(task.y_test) == 5
    assert task.x_test[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]


def test_loads_from_the_hugging_face_cache_offline(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fill_hub_cache(cache, "uoft-cs/cifar10", "plain_text", cifar_dataset_dict(20, 10))
    task = CifarCorruptionsTask(seed=0, batch_size=4, data=real(cache_dir=str(cache)))
    assert task.data_source == "real"
    assert len(task.y_train) == 20 and len(task.y_test) == 10


def test_other_column_names_are_configurable(tmp_path: Path) -> None:
    cifar_dataset_dict(20, 10, image_column="image").save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataUnavailable, match="no column img .*image_column|has image"):
        CifarCorruptionsTask(seed=0, batch_size=4, data=real(tmp_path / "d"))
    task = CifarCorruptionsTask(seed=0, batch_size=4,
                                data=real(tmp_path / "d", image_column="image"))  # fmt: skip
    assert len(task.y_train) == 20


@pytest.mark.parametrize(
    ("data", "must_say"),
    [
        ({"cache_dir": "EMPTY"}, "not at task.data.path (null) nor in the Hugging Face cache"),
        ({"path": "/nonexistent/cifar"}, "task.data.path=/nonexistent/cifar: no such folder"),
    ],
)
def test_missing_data_fails_fast_with_instructions(
    data: dict, must_say: str, tmp_path: Path
) -> None:
    data = {k: (str(tmp_path / "empty") if v == "EMPTY" else v) for k, v in data.items()}
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        CifarCorruptionsTask(seed=0, data={"source": "real", **data})
    assert time.perf_counter() - t0 < 5.0
    message = str(info.value)
    assert "\n" not in message
    assert must_say in message
    for how in ("save_to_disk", "task.data.path=DIR", "Hugging Face cache", "task.data.online=true",
                "task.data.source=synthetic"):  # fmt: skip
        assert how in message, how


def test_missing_data_stops_the_job_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "run"
    overrides = ["task=cifar_corruptions", "task.data.source=real",
                 f"task.data.cache_dir={tmp_path / 'empty'}", "trainer.threads=1"]  # fmt: skip
    with pytest.raises(ConfigError, match="task.data.source=real"):
        run_in_process(overrides, out)
    assert not (out / "result.json").exists()


def test_real_data_runs_end_to_end_and_is_recorded_as_real(
    cifar_on_disk: Path, tmp_path: Path
) -> None:
    _, rec = run_in_process(
        [
            "task=cifar_corruptions",
            "task.data.source=real",
            f"task.data.path={cifar_on_disk}",
            "task.batch_size=8",
            "steps=6",
            "trainer.threads=1",
        ],  # fmt: skip
        tmp_path,
    )
    assert rec["status"] == "completed", rec["error"]
    assert rec["data_source"] == "real"


def test_bad_values_fail_with_one_line_naming_the_key() -> None:
    for kwargs, key in (
        ({"mode": "spinning"}, "task.mode=spinning"),
        ({"corruptions": ["fog"]}, "task.corruptions=['fog']"),
        ({"severity": 6}, "task.severity=6"),
        ({"model": "vgg"}, "task.model=vgg"),
        ({"data": {"source": "web"}}, "task.data.source=web"),
    ):
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            CifarCorruptionsTask(seed=0, n_train=64, n_test=16, **kwargs)


# ------------------------------------------------------------------ corruptions
def natural_batch(n: int = 8, seed: int = 3) -> torch.Tensor:
    """Image-like inputs with a natural 1/f spectrum (octaves of upsampled noise, amplitude
    inverse to frequency), quantised to uint8 levels. Pure noise would hide blur, and a single
    smooth scale aliases under pixelate's resampling ratios."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 3, 32, 32)
    for k in (2, 4, 8, 16, 32):
        octave = torch.randn(n, 3, k, k, generator=g)
        x += (2.0 / k) * nn.functional.interpolate(octave, size=32, mode="bilinear")
    x = (x - x.mean()) / x.std() * 0.2 + 0.5
    return torch.floor(x.clamp(0, 1) * 255) / 255


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_keeps_shape_and_range_at_every_severity(name: str) -> None:
    x = natural_batch()
    for severity in range(1, 6):
        y = corrupt(x, name, severity, torch.Generator().manual_seed(0))
        assert y.shape == x.shape and y.dtype == x.dtype
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        assert torch.equal(torch.floor(y * 255 + 0.5) / 255, y), "quantised to 1/255 steps"
        again = corrupt(x, name, severity, torch.Generator().manual_seed(0))
        assert torch.equal(y, again), "the generator alone sets the noise"
        assert distortion(x, y) > 0.0


@pytest.mark.parametrize("name", [c for c in CORRUPTIONS if c != "saturate"])
@pytest.mark.parametrize("seed", [0, 1])
def test_distortion_grows_with_severity(name: str, seed: int) -> None:
    x = natural_batch(seed=seed)
    g = torch.Generator().manual_seed(1)
    d = [distortion(x, corrupt(x, name, s, g)) for s in range(1, 6)]
    assert all(a < b for a, b in zip(d, d[1:], strict=False)), d


def test_saturate_keeps_the_published_non_monotone_table() -> None:
    # (0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2): desaturate, then over-saturate
    assert SEVERITY["saturate"][1] == (0.1, 0.0) and SEVERITY["saturate"][2] == (1.5, 0.0)
    x = natural_batch()
    d = [distortion(x, corrupt(x, "saturate", s)) for s in range(1, 6)]
    assert d[1] > d[0] > d[2] and d[2] < d[3] < d[4], d


def test_severity_outside_1_to_5_and_unknown_names_are_rejected() -> None:
    x = natural_batch(1)
    with pytest.raises(ValueError, match="severity 0"):
        corrupt(x, "contrast", 0)
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corrupt(x, "fog", 1)
    assert corrupt(x, "clean", 3) is x


def test_hsv_matches_colorsys_and_round_trips() -> None:
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    hsv = rgb_to_hsv(x)
    for i in range(6):
        for j in range(6):
            ref = colorsys.rgb_to_hsv(*x[0, :, i, j].tolist())
            assert hsv[0, :, i, j].tolist() == pytest.approx(ref, abs=1e-6)
    assert torch.allclose(hsv_to_rgb(hsv), x, atol=1e-6)


def test_gaussian_blur_matches_scipy() -> None:
    x = natural_batch(2)
    for sigma in SEVERITY["gaussian_blur"]:
        ref = ndimage.gaussian_filter(x.double().numpy(), sigma=(0, 0, sigma, sigma),
                                      mode="nearest", truncate=4.0)  # fmt: skip
        assert np.abs(gaussian_blur(x, sigma, None).numpy() - ref).max() < 1e-5


def test_pixelate_matches_pil_box_resampling() -> None:
    x = natural_batch(1)
    img = Image.fromarray((x[0] * 255).round().byte().permute(1, 2, 0).numpy())
    for c in SEVERITY["pixelate"]:
        small = img.resize((int(32 * c), int(32 * c)), Image.BOX).resize((32, 32), Image.BOX)
        ref = torch.from_numpy(np.array(small)).permute(2, 0, 1).float()
        # PIL rounds its intermediate image to uint8; we stay in float
        assert (pixelate(x, c, None)[0] * 255 - ref).abs().max() <= 1.0


# ------------------------------------------------------------------ drift modes
def unnormalise(task: CifarCorruptionsTask, x: torch.Tensor) -> torch.Tensor:
    return x * task.std + task.mean


class Recorder(nn.Module):
    """A 'model' that remembers its last input and predicts class ``answer`` for everything."""

    def __init__(self, answer: int = 0) -> None:
        super().__init__()
        self.answer, self.seen = answer, None
        self.bias = nn.Parameter(torch.zeros(NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        logits = torch.zeros(x.shape[0], NUM_CLASSES)
        logits[:, self.answer] = 1.0
        return logits + self.bias


def test_rotating_mode_switches_every_k_steps_and_the_eval_set_follows() -> None:
    k = 5
    task = CifarCorruptionsTask(seed=0, batch_size=16, n_train=64, n_test=32, drift_every=k,
                                corruptions=["clean", "contrast"], severity=5)  # fmt: skip
    # row s describes step s, trained on batch s - 1: the switch row is the first step of the
    # new phase (step 6 for k = 5), not the last of the old one
    assert [task.drift_phase(s) for s in (0, 1, 5, 6, 10, 11, 16)] == [0, 0, 0, 1, 1, 2, 3]
    model, batches = Recorder(), task.train_batches()
    spreads = []
    for step in range(1, 3 * k + 1):
        batch = next(batches)
        assert batch[2] == step - 1
        spreads.append(float(unnormalise(task, batch[0]).std(dim=(2, 3)).mean()))
        task.loss(model, batch)
        assert task.drift_phase(step) == task.phase_of(int(batch[2]))  # the batch's phase
        task.evaluate(model)  # the eval set of the phase step `step` trained on
        shown = unnormalise(task, model.seen)
        expected = task.test_images(task.corruption_of((step - 1) // k)).float() / 255
        assert torch.allclose(shown, expected[-len(shown) :], atol=1e-5)
    # contrast at severity 5 scales deviations from the mean by 0.15: phase 1's batches
    clean, low = spreads[:k] + spreads[2 * k :], spreads[k : 2 * k]
    assert max(low) < 0.3 * min(clean)


def test_rotating_training_noise_is_fresh_each_step_but_seeded() -> None:
    def first_batches(seed: int) -> list[torch.Tensor]:
        task = CifarCorruptionsTask(seed=seed, batch_size=64, n_train=64, n_test=8,
                                    corruptions=["gaussian_noise"], drift_every=100)  # fmt: skip
        it = task.train_batches()
        return [next(it)[0] for _ in range(2)]

    a, b = first_batches(0), first_batches(0)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0].sort(0).values, a[1].sort(0).values)


def test_class_shift_skews_the_class_histogram_and_the_metric_follows() -> None:
    k, m = 40, 3
    task = CifarCorruptionsTask(
        seed=1, mode="class_shift", batch_size=50, n_train=2000, n_test=500, drift_every=k,
        shift_classes=m, shift_skew=0.8,
    )  # fmt: skip
    batches = task.train_batches()
    hist = []
    for _ in range(2):
        labels = torch.cat([next(batches)[1] for _ in range(k)])
        hist.append(torch.bincount(labels, minlength=NUM_CLASSES).float() / len(labels))
    subsets = [set(task.class_order[p * m : (p + 1) * m].tolist()) for p in range(2)]
    assert not subsets[0] & subsets[1], "each phase favours new classes"
    for h, subset in zip(hist, subsets, strict=True):
        favoured = float(h[list(subset)].sum())
        assert favoured == pytest.approx(0.8 + 0.2 * m / NUM_CLASSES, abs=0.05)
        others = [c for c in range(NUM_CLASSES) if c not in subset]
        assert float(h[list(subset)].min()) > 3 * float(h[others].max())
    # a model answering one favoured class scores that class's share of the phase's mixture
    c = next(iter(subsets[0]))
    w = task.class_weights(0)
    assert float(w.sum()) == pytest.approx(1.0)
    task._trained = 0
    assert task.evaluate(Recorder(c)) == pytest.approx(float(w[c]), abs=1e-6)
    task._trained = k  # the k-th step trained on phase 0's mixture: still phase 0
    assert task.evaluate(Recorder(c)) == pytest.approx(float(w[c]), abs=1e-6)
    task._trained = k + 1  # phase 1: c is out of favour
    assert task.evaluate(Recorder(c)) == pytest.approx(0.2 / NUM_CLASSES, abs=1e-6)


def test_stable_mode_has_no_phase_and_clean_eval() -> None:
    task = CifarCorruptionsTask(seed=0, mode="stable", batch_size=16, n_train=64, n_test=32)
    assert task.drift_phase(1000) is None
    model = Recorder()
    task.evaluate(model)
    assert torch.allclose(unnormalise(task, model.seen), task.x_test[-len(model.seen):] / 255,
                          atol=1e-5)  # fmt: skip


def test_augmentation_crops_and_flips_within_the_padded_image() -> None:
    task = CifarCorruptionsTask(seed=0, mode="stable", batch_size=32, n_train=64, n_test=8,
                                augment=True)  # fmt: skip
    x = torch.rand(32, 3, 32, 32)
    y = task._augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert not torch.equal(x, y)
    # every output is a translated (and maybe mirrored) copy: its non-zero rows match the input
    for i in range(32):
        matched = False
        for flip in (False, True):
            src = x[i].flip(-1) if flip else x[i]
            padded = nn.functional.pad(src, (4, 4, 4, 4))
            for dy in range(9):
                for dx in range(9):
                    if torch.equal(padded[:, dy : dy + 32, dx : dx + 32], y[i]):
                        matched = True
        assert matched


# ------------------------------------------------------------------ models
def test_model_sizes() -> None:
    def count(name: str, width: int) -> int:
        return sum(p.numel() for p in build_cifar_model(name, width).parameters())

    assert count("resnet20", 16) == pytest.approx(0.27e6, rel=0.02)  # He et al. 2016: 0.27M
    assert count("resnet18", 64) == pytest.approx(11.17e6, rel=0.01)
    assert count("tiny_cnn", 16) < 30_000
    for name, width in (("tiny_cnn", 8), ("resnet20", 4), ("resnet18", 4)):
        out = build_cifar_model(name, width)(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, NUM_CLASSES)


def test_synthetic_stand_in_is_cifar_shaped_and_learnable_by_a_linear_probe() -> None:
    task = CifarCorruptionsTask(seed=0, mode="stable", n_train=2000, n_test=500)
    assert task.data_source == "synthetic"
    assert task.x_train.shape == (2000, 3, 32, 32) and task.x_train.dtype == torch.uint8
    assert set(task.y_train.unique().tolist()) == set(range(NUM_CLASSES))
    # class means differ: nearest-class-mean on the raw pixels beats chance clearly
    x = task.x_train.float().flatten(1)
    means = torch.stack([x[task.y_train == c].mean(0) for c in range(NUM_CLASSES)])
    pred = torch.cdist(task.x_test.float().flatten(1), means).argmin(1)
    assert float((pred == task.y_test).float().mean()) > 0.25


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize("ae", ["off", "on"])
def test_smoke_run_completes_with_drift_columns(ae: str, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    _, rec = run_in_process(["task=cifar_corruptions", f"ae={ae}", "trainer.threads=1"], tmp_path)
    assert rec["status"] == "completed", rec["error"]
    assert rec["data_source"] == "synthetic" and rec["scale"] == "smoke"
    assert rec["steps"] == rec["budget"] == 30
    assert rec["metric"]["name"] == "top1" and rec["metric"]["mode"] == "max"
    assert 0.0 <= rec["metric"]["final"] <= 1.0
    rows = read_curves(tmp_path / "curves.csv")
    phases = {int(r["step"]): int(float(r["drift_phase"])) for r in rows if r.get("drift_phase")}
    assert phases[9] == 0 and phases[10] == 1 and phases[19] == 2 and phases[28] == 3
    assert any(r.get("train_acc") for r in rows)
    assert sum(1 for r in rows if r.get("val_top1")) >= 10
    if ae == "on":
        assert any(r.get("rho") for r in rows)
    assert time.perf_counter() - t0 < 60


def test_pairing_holds_across_arms(tmp_path: Path) -> None:
    hashes = []
    for i, arm in enumerate((["optimizer=sgdm"], ["optimizer=adamw", "ae=on"])):
        _, rec = run_in_process(["task=cifar_corruptions", "steps=2", "trainer.threads=1", *arm],
                                tmp_path / str(i))  # fmt: skip
        hashes.append(rec["pairing"])
    assert hashes[0]["init_hash"] and hashes[0] == hashes[1]
