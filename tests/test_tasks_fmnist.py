"""fmnist: the IDX reader on files the tests write (gzip and plain, truncated, wrong magic, count
mismatch), the loader's one-line errors, DeepOBS's two models, the modes on one-channel images,
the corruptions on grey images, and end to end at scale=smoke; the installed corpus when present."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from aebench.task import ConfigError
from tasks.corruptions import CORRUPTIONS, brightness, corrupt, saturate
from tasks.fmnist import (
    DEBIAN_PATH,
    FILES,
    MLP,
    FashionMnistTask,
    TwoConvTwoDense,
    load_fmnist,
    main,
    write_validation_split,
)
from tasks.hf_data import DataUnavailable
from tasks.idx import IdxError, read_idx, write_idx
from tests.helpers import read_curves, run_in_process

N_TRAIN, N_TEST = 64, 32


def fake_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.arange(n, dtype=torch.uint8) % 10
    return images, labels


def write_folder(root: Path, gz: bool = True) -> Path:
    """The four files of the official release, as tiny random sets."""
    root.mkdir(parents=True, exist_ok=True)
    for (split, (image_name, label_name)), n in zip(FILES.items(), (N_TRAIN, N_TEST), strict=True):
        images, labels = fake_images(n, seed=len(split))
        suffix = ".gz" if gz else ""
        write_idx(root / f"{image_name}{suffix}", images)
        write_idx(root / f"{label_name}{suffix}", labels)
    return root


def real(path: Path, **kw: object) -> dict:
    return {"source": "real", "path": str(path), **kw}


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------ the IDX format
@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_idx_round_trip_plain_and_gzip(tmp_path: Path, name: str) -> None:
    images, _ = fake_images(5, 0)
    path = write_idx(tmp_path / name, images)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert torch.equal(read_idx(path, expect="images"), images)


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    labels = torch.tensor([3, 1, 4], dtype=torch.uint8)
    path = write_idx(tmp_path / "labels-without-suffix", labels, compress=True)
    assert torch.equal(read_idx(path, expect="labels"), labels)


def test_idx_header_is_big_endian_ubyte(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "i", torch.zeros(2, 3, 4, dtype=torch.uint8))
    assert path.read_bytes()[:16] == bytes.fromhex("00000803 00000002 00000003 00000004")


def test_truncated_body_is_one_line(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "i", fake_images(4, 0)[0])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IdxError) as err:
        read_idx(path)
    assert "truncated" in one_line(err) and "3136 data bytes" in str(err.value)


def test_truncated_header_and_trailing_bytes(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "i", fake_images(4, 0)[0])
    blob = path.read_bytes()
    path.write_bytes(blob[:9])
    with pytest.raises(IdxError, match="truncated header"):
        read_idx(path)
    path.write_bytes(blob + b"\0")
    with pytest.raises(IdxError, match="trailing bytes"):
        read_idx(path)


def test_truncated_gzip_stream_is_one_line(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "i.gz", fake_images(40, 0)[0])
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(IdxError) as err:
        read_idx(path)
    assert "gzip" in one_line(err)


def test_wrong_magic_and_wrong_kind(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(bytes.fromhex("00000c03 00000001 00000001 00000001") + b"\0")  # float type
    with pytest.raises(IdxError) as err:
        read_idx(path)
    assert "magic number 0x00000c03" in one_line(err)
    path.write_bytes(gzip.compress(b"PK\x03\x04 not an idx file"))
    with pytest.raises(IdxError, match="magic number"):
        read_idx(path)
    labels = write_idx(tmp_path / "l", torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(IdxError, match="holds labels .* expected images"):
        read_idx(labels, expect="images")


# ------------------------------------------------------------------ the loader
@pytest.mark.parametrize("gz", [True, False])
def test_loader_reads_the_four_files(tmp_path: Path, gz: bool) -> None:
    root = write_folder(tmp_path / "fm", gz=gz)
    task = FashionMnistTask(seed=0, batch_size=8, data=real(root))
    assert task.data_source == "real" and task.corpus == "Fashion-MNIST"
    images, labels = fake_images(N_TRAIN, seed=len("train"))
    assert task.x_train.shape == (N_TRAIN, 1, 28, 28) and task.x_train.dtype == torch.uint8
    assert torch.equal(task.x_train[:, 0], images) and torch.equal(task.y_train, labels.long())
    assert len(task.y_test) == N_TEST
    pixels = images.double() / 255
    assert float(task.mean) == pytest.approx(float(pixels.mean()), rel=1e-5)
    assert float(task.std) == pytest.approx(float(pixels.std()), rel=1e-4)


def test_synthetic_stand_in_names_no_corpus() -> None:
    task = FashionMnistTask(seed=0, batch_size=8, n_train=64, n_test=32)
    assert task.data_source == "synthetic" and task.corpus is None


def test_validation_split_is_the_last_training_images(tmp_path: Path) -> None:
    src = write_folder(tmp_path / "fm")
    dst, n_train = write_validation_split(str(src), str(tmp_path / "val"), n_val=16)
    assert n_train == 48
    split = load_fmnist(str(dst))
    original = load_fmnist(str(src))["train"]
    (x, y), (xv, yv) = split["train"], split["test"]
    assert torch.equal(x, original[0][:48]) and torch.equal(y, original[1][:48])
    assert torch.equal(xv, original[0][48:]) and torch.equal(yv, original[1][48:])
    task = FashionMnistTask(seed=0, batch_size=8, data=real(dst))  # the task evaluates on it
    assert torch.equal(task.x_test, original[0][48:])
    with pytest.raises(ConfigError, match="n_val=64: must be in 1..63") as err:
        write_validation_split(str(src), str(tmp_path / "bad"), n_val=N_TRAIN)
    one_line(err)


def test_validation_split_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = write_folder(tmp_path / "fm", gz=False)
    main(["validation-split", str(tmp_path / "val"), "--src", str(src), "--n-val", "10"])
    assert "train 54 images, validation (t10k files) 10" in capsys.readouterr().out
    assert len(load_fmnist(str(tmp_path / "val"))["test"][1]) == 10


def test_label_image_count_mismatch(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "fm")
    write_idx(root / "t10k-labels-idx1-ubyte.gz", torch.zeros(N_TEST - 1, dtype=torch.uint8))
    with pytest.raises(DataUnavailable) as err:
        load_fmnist(str(root))
    assert f"{N_TEST - 1} labels for the {N_TEST} images" in one_line(err)


def test_missing_folder_and_file_say_how_to_provide(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailable) as err:
        FashionMnistTask(seed=0, data=real(tmp_path / "nowhere"))
    text = one_line(err)
    assert "no such folder" in text and "make data" in text and "dataset-fashion-mnist" in text
    assert "train-images-idx3-ubyte[.gz]" in text and "amazonaws.com" in text
    root = write_folder(tmp_path / "fm", gz=False)
    (root / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataUnavailable, match="no file t10k-images-idx3-ubyte"):
        load_fmnist(str(root))


def test_bad_labels_and_image_size(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "fm")
    write_idx(root / "train-labels-idx1-ubyte.gz", torch.full((N_TRAIN,), 10, dtype=torch.uint8))
    with pytest.raises(DataUnavailable, match="label 10, must be 0..9"):
        load_fmnist(str(root))
    write_folder(root)
    write_idx(root / "train-images-idx3-ubyte.gz", torch.zeros(N_TRAIN, 32, 32, dtype=torch.uint8))
    with pytest.raises(DataUnavailable, match="28x28"):
        load_fmnist(str(root))


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"mode": "drifting"}, "task.mode"),
        ({"model": "resnet18"}, "task.model"),
        ({"corruptions": ["fog"]}, "task.corruptions"),
        ({"severity": 6}, "task.severity"),
        ({"data": {"source": "hub"}}, "task.data.source"),
        ({"data": {"colour": 1}}, "task.data.colour"),
    ],  # fmt: skip
)
def test_bad_values_name_the_key(kw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        FashionMnistTask(seed=0, n_train=64, n_test=32, **kw)


# ------------------------------------------------------------------ models
def test_2c2d_is_deepobs_net() -> None:
    torch.manual_seed(0)
    net = TwoConvTwoDense()
    assert sum(p.numel() for p in net.parameters()) == 3_274_634
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (32, (5, 5), (2, 2)), (64, (5, 5), (2, 2))]  # fmt: skip
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    for p in (q.detach() for q in net.parameters()):
        if p.dim() == 1:
            assert torch.all(p == 0.05)
        else:
            assert float(p.abs().max()) <= 0.1 and float(p.std()) == pytest.approx(0.044, rel=0.1)


def test_mlp_is_deepobs_mlp() -> None:
    net = MLP()
    widths = [m.out_features for m in net if isinstance(m, torch.nn.Linear)]
    assert widths == [1000, 500, 100, 10] and net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


# ------------------------------------------------------------------ modes on grey images
def test_rotating_phases_and_corrupted_batches(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "fm")
    task = FashionMnistTask(seed=0, batch_size=8, mode="rotating", drift_every=3,
                            corruptions=["clean", "contrast"], data=real(root))  # fmt: skip
    assert [task.drift_phase(s) for s in (0, 1, 3, 4, 7)] == [0, 0, 0, 1, 2]
    batches = task.train_batches()
    first = [next(batches) for _ in range(4)]
    x, y, i = first[3]
    assert x.shape == (8, 1, 28, 28) and int(i) == 3
    clean = (task.x_train.float() / 255 - task.mean) / task.std
    assert any(torch.allclose(x[0], clean[k]) for k in range(N_TRAIN)) is False  # contrast
    x0 = first[0][0]
    assert any(torch.allclose(x0[0], clean[k]) for k in range(N_TRAIN))  # phase 0: clean
    assert task.test_images("contrast").shape == (N_TEST, 1, 28, 28)


def test_class_shift_skews_the_labels() -> None:
    task = FashionMnistTask(seed=0, batch_size=256, mode="class_shift", drift_every=1000,
                            shift_skew=1.0, n_train=512, n_test=64)  # fmt: skip
    x, y, _ = next(task.train_batches())
    subset = set(task.class_order[:3].tolist())
    assert x.shape == (256, 1, 28, 28) and set(y.tolist()) <= subset


# ------------------------------------------------------------------ corruptions on one channel
@pytest.mark.parametrize(
    "name", ["gaussian_blur", "contrast", "brightness", "pixelate", "saturate"]
)
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_grey_corruption_is_the_rgb_one_on_the_grey_image(name: str, severity: int) -> None:
    g = torch.Generator().manual_seed(1)
    grey = torch.rand(4, 1, 28, 28, generator=g)
    rgb = corrupt(grey.expand(4, 3, 28, 28), name, severity, quantize=False)
    out = corrupt(grey, name, severity, quantize=False)
    assert out.shape == grey.shape
    torch.testing.assert_close(out, rgb.mean(1, keepdim=True), atol=1e-6, rtol=0)


def test_brightness_on_grey_is_clipped_addition() -> None:
    grey = torch.linspace(0, 1, 28 * 28).view(1, 1, 28, 28)
    torch.testing.assert_close(corrupt(grey, "brightness", 3, quantize=False),
                               (grey + 0.15).clamp(0, 1), atol=1e-6, rtol=0)  # fmt: skip


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_grey_noise_draws_one_value_per_pixel(name: str) -> None:
    grey = torch.full((2, 1, 28, 28), 0.5)
    out = corrupt(grey, name, 5, torch.Generator().manual_seed(0))
    assert out.shape == grey.shape and float((out - grey).abs().mean()) > 0.01


def test_three_channel_path_is_untouched() -> None:
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    for wrapped in (brightness, saturate):
        raw = wrapped.__wrapped__(x, (1.5, 0.0) if wrapped is saturate else 0.15, None)
        assert torch.equal(wrapped(x, (1.5, 0.0) if wrapped is saturate else 0.15, None), raw)
    assert set(CORRUPTIONS) >= {"brightness", "saturate"}


# ------------------------------------------------------------------ end to end
def test_smoke_run_records_phases_and_source(tmp_path: Path) -> None:
    _, rec = run_in_process(["task=fmnist", "task.mode=rotating", "trainer.threads=1"], tmp_path)
    assert rec["status"] == "completed" and rec["task"] == "fmnist"
    assert rec["data_source"] == "synthetic" and rec["config"]["task"]["data"]["name"]
    rows = read_curves(tmp_path / "curves.csv")
    phases = {int(float(r["drift_phase"])) for r in rows if r.get("drift_phase")}
    assert phases == {0, 1, 2, 3}  # 30 steps, phases of 9


def test_real_folder_records_real(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "fm")
    _, rec = run_in_process(["task=fmnist", "task.data.source=real", f"task.data.path={root}",
                             "task.batch_size=8", "steps=4", "trainer.threads=1"],
                            tmp_path / "run")  # fmt: skip
    assert rec["status"] == "completed" and rec["data_source"] == "real"
    assert rec["config"]["task"]["data"]["name"] == "Fashion-MNIST"
    assert rec["extra"]["data"] == {"corpus": "Fashion-MNIST"}


@pytest.mark.skipif(not Path(DEBIAN_PATH).is_dir(), reason="dataset-fashion-mnist not installed")
def test_installed_corpus_is_the_official_release() -> None:
    splits = load_fmnist(DEBIAN_PATH)
    (x, y), (xt, yt) = splits["train"], splits["test"]
    assert x.shape == (60_000, 1, 28, 28) and xt.shape == (10_000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [6000] * 10 and torch.bincount(yt).tolist() == [1000] * 10
    assert y[:5].tolist() == [9, 0, 0, 3, 0]  # the release's first training labels
