"""The digits job: fast smoke runs of train/demo/predict (outputs, metrics.json, errors),
reproducibility, image input, the full demo's accuracy, and (marked slow) other seeds."""
import json
import re
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from convgrad import nn
from convgrad.apps import digits  # noqa: E402
from convgrad._optional import MissingExtra  # noqa: E402
from convgrad.apps.cli import main  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OUTPUTS = ("metrics.json", "model.npz", "curves.png", "filters.png", "predictions.png")


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """One quick training run shared by the tests below: (out_dir, metrics, printed lines)."""
    out = tmp_path_factory.mktemp("digits") / "run"
    lines = []
    metrics = digits.train(out, epochs=1, progress=False, seed=0, echo=lines.append)
    return out, metrics, lines


def digits_data():
    from sklearn.datasets import load_digits
    return load_digits()


def test_train_writes_every_output(one_epoch):
    out, metrics, lines = one_epoch
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    for name in OUTPUTS[2:]:
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]   # no temporaries
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("test_accuracy", "train_seconds", "epoch_train_loss", "epoch_train_accuracy",
                "epoch_test_loss", "epoch_test_accuracy", "seed", "dtype", "architecture",
                "num_parameters", "optimizer", "lr", "epochs", "batch_size"):
        assert key in saved, key
    assert saved["epochs"] == 1 and len(saved["epoch_test_accuracy"]) == 1
    assert saved["optimizer"] == "adam" and saved["lr"] == 0.003 and saved["dtype"] == "float32"
    assert saved["n_train"] + saved["n_test"] == 1797 and saved["n_test"] == 450
    assert saved["architecture"].startswith("Sequential(\n  (0): Conv2d(1, 32")
    assert saved["num_parameters"] == digits.build_model().num_parameters() == 21482
    assert 0.5 < saved["test_accuracy"] <= 1.0               # one epoch already learns
    assert any("test accuracy" in line for line in lines)
    assert any(line.startswith("epoch  1/1") for line in lines)


def test_the_split_is_stratified_and_disjoint():
    data = digits.load_data(seed=0)
    target = digits_data().target
    test = set(data["test_index"].tolist())
    assert len(test) == 450
    np.testing.assert_array_equal(data["y_test"], target[data["test_index"]])
    per_class = np.bincount(data["y_test"], minlength=10)
    expected = np.bincount(target, minlength=10) * 0.25
    assert np.all(np.abs(per_class - expected) <= 1)
    assert data["x_train"].dtype == np.float32 and data["x_train"].shape[1:] == (1, 8, 8)
    assert data["x_train"].max() == 1.0 and data["x_train"].min() == 0.0


def test_saved_model_reloads_with_its_metadata(one_epoch):
    out, metrics, _ = one_epoch
    meta = nn.read_metadata(out / "model.npz")
    assert meta["format"] == "convgrad-digits" and meta["split"]["seed"] == 0
    model = digits.build_model(meta["architecture"], rng=1)
    nn.load(model, out / "model.npz")
    data = digits.load_data(0)
    predicted = model.eval()(data["x_test"]).argmax(axis=1)
    assert np.isclose((predicted == data["y_test"]).mean(), metrics["test_accuracy"])


def test_same_seed_same_training_different_seed_differs(tmp_path):
    a = digits.train(tmp_path / "a", epochs=1, batch_size=64, seed=4, progress=False,
                     echo=lambda s: None)
    b = digits.train(tmp_path / "b", epochs=1, batch_size=64, seed=4, progress=False,
                     echo=lambda s: None)
    assert a["epoch_train_loss"] == b["epoch_train_loss"]
    assert a["epoch_test_accuracy"] == b["epoch_test_accuracy"]
    with np.load(tmp_path / "a" / "model.npz") as fa, np.load(tmp_path / "b" / "model.npz") as fb:
        for key in fa.files:
            assert np.array_equal(fa[key], fb[key]), key
    c = digits.train(tmp_path / "c", epochs=1, batch_size=64, seed=5, progress=False,
                     echo=lambda s: None)
    assert c["epoch_train_loss"] != a["epoch_train_loss"]


def test_train_options_sgd_float64_and_progress_bar(tmp_path, capsys):
    metrics = digits.train(tmp_path, epochs=1, batch_size=128, optimizer="sgd",
                           dtype=np.float64, seed=1)
    assert metrics["lr"] == 0.05 and metrics["momentum"] == 0.9
    assert metrics["dtype"] == "float64"
    model = digits.build_model(dtype=np.float64)
    nn.load(model, tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz") as archive:
        assert archive["0.weight"].dtype == np.float64
    assert len(digits.predict(tmp_path / "model.npz", count=2, echo=lambda s: None)) == 2
    err = capsys.readouterr().err
    assert "epoch  1/1" in err and "test_acc=" in err           # the tqdm bar


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(optimizer="rmsprop"), "optimizer='rmsprop'"),
    (dict(dtype="float16"), "dtype='float16'"),
    (dict(epochs=0), "epochs must be a positive int, got 0"),
    (dict(batch_size=2.5), r"batch_size must be a positive int, got 2.5 \(float\)"),
    (dict(lr=-1.0), "lr must be a positive number, got -1.0"),
    (dict(seed=-3), "seed must be a non-negative int, got -3"),
])
def test_train_option_errors(tmp_path, kwargs, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        digits.train(tmp_path / "x", progress=False, **kwargs)
    assert not (tmp_path / "x").exists()                         # checked before any work


def test_demo_smoke_gradient_check_and_summary(tmp_path):
    lines = []
    metrics = digits.demo(tmp_path / "demo", seed=0, echo=lines.append, epochs=1,
                          progress=False)
    text = "\n".join(lines)
    check = metrics["gradient_check"]
    assert check["passed"] and max(check["dx_error"], check["dw_error"], check["db_error"]) < 1e-7
    assert "stride=(2, 2), padding=(1, 1)" in check["layer"]
    assert re.search(r"dx error: \d\.\de-\d\d  dw error: \d\.\de-\d\d  db error: \d\.\de-\d\d", text)
    for name in OUTPUTS:
        assert (tmp_path / "demo" / name).is_file()
        assert name in text
    saved = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert saved["gradient_check"] == json.loads(json.dumps(check))
    assert "convgrad predict --model" in text


def test_predict_test_digits(one_epoch):
    out, metrics, _ = one_epoch
    lines = []
    results = digits.predict(out / "model.npz", count=7, seed=3, echo=lines.append)
    assert len(results) == 7 and len({r["index"] for r in results}) == 7
    target = digits_data().target
    test_index = set(digits.load_data(0)["test_index"].tolist())
    for r in results:
        assert r["true"] == target[r["index"]]                   # the sklearn label
        assert r["index"] in test_index                          # from the held-out split
        assert 0 <= r["predicted"] <= 9 and 0.1 <= r["probability"] <= 1.0
    assert lines[0].split() == ["digit", "true", "predicted", "probability"]
    assert lines[-1].endswith("of 7 correct")
    again = digits.predict(out / "model.npz", count=7, seed=3, echo=lambda s: None)
    assert again == results


def _digit_png(path, image, *, dark_on_light=True, scale=8, mode="L"):
    """Write an 8x8 digit (0..16) as a PNG, upscaled, optionally dark on light."""
    from PIL import Image
    pixels = np.kron(image / 16.0, np.ones((scale, scale)))        # (8s, 8s), 0..1
    if dark_on_light:
        pixels = 1.0 - pixels
    gray = np.round(pixels * 255).astype(np.uint8)
    if mode == "RGBA":                              # black ink, opacity = intensity
        rgba = np.zeros(gray.shape + (4,), np.uint8)
        rgba[..., 3] = np.round(np.kron(image / 16.0, np.ones((scale, scale))) * 255)
        Image.fromarray(rgba).save(path)
    else:
        Image.fromarray(gray).convert(mode).save(path)
    return path


def test_image_to_digit_recovers_the_digit(tmp_path):
    images = digits_data().images
    image = next(img for img in images[100:] if img.min() == 0 and img.max() == 16)
    for kwargs in (dict(dark_on_light=True), dict(dark_on_light=False),
                   dict(dark_on_light=True, mode="RGB"), dict(mode="RGBA")):
        path = _digit_png(tmp_path / "d.png", image, **kwargs)
        np.testing.assert_allclose(digits.image_to_digit(path), image, atol=0.1,
                                   err_msg=str(kwargs))


def test_predict_an_image_file_and_the_cli(one_epoch, tmp_path, capsys):
    out, _, _ = one_epoch
    data = digits_data()
    model_path = out / "model.npz"
    model = digits.build_model()
    nn.load(model, model_path)
    model.eval()
    index = next(i for i in digits.load_data(0)["test_index"]
                 if data.images[i].min() == 0 and data.images[i].max() == 16)
    expected = nn.softmax(model((data.images[index] / 16).astype(np.float32)[None, None]))[0]
    path = _digit_png(tmp_path / "digit.png", data.images[index])
    [result] = digits.predict(model_path, image=path, echo=lambda s: None)
    assert result["predicted"] == int(expected.argmax())
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-2)
    assert main(["predict", "--model", str(model_path), "--image", str(path)]) == 0
    assert f"predicted {result['predicted']}" in capsys.readouterr().out
    assert main(["predict", "--model", str(model_path), "--count", "3"]) == 0
    assert "of 3 correct" in capsys.readouterr().out


def test_predict_errors(one_epoch, tmp_path):
    out, _, _ = one_epoch
    model_path = out / "model.npz"
    with pytest.raises(ValueError, match=r"image file '.*missing.png' does not exist"):
        digits.predict(model_path, image=tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("this is not an image")
    with pytest.raises(ValueError, match=r"cannot read image file '.*notes.png'"):
        digits.predict(model_path, image=tmp_path / "notes.png")
    from PIL import Image
    Image.new("L", (20, 20), 200).save(tmp_path / "blank.png")
    with pytest.raises(ValueError, match=r"'.*blank.png' is blank"):
        digits.predict(model_path, image=tmp_path / "blank.png")
    with pytest.raises(ValueError, match="does not exist"):
        digits.predict(tmp_path / "no-model.npz")
    nn.save(nn.Sequential(nn.Linear(2, 2, rng=0)), tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a digits model"):
        digits.predict(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="count must be a positive int, got 0"):
        digits.predict(model_path, count=0)
    with pytest.raises(ValueError, match="count=451 is more than the 450"):
        digits.predict(model_path, count=451)


def test_missing_extra_gives_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)     # import now fails
    with pytest.raises(MissingExtra, match=r"needs scikit-learn.*convgrad\[demo\]"):
        digits.train(tmp_path, epochs=1, progress=False)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 3
    assert "scikit-learn" in capsys.readouterr().err


def test_full_demo_reaches_97_percent_in_under_a_minute(tmp_path):
    """The main job's promise, in the default run (about 10 s here)."""
    metrics = digits.demo(tmp_path / "demo", seed=0, echo=lambda s: None)
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["train_seconds"] < 60
    assert metrics["gradient_check"]["passed"]


@pytest.mark.slow
@pytest.mark.parametrize("seed, optimizer", [(1, "adam"), (2, "adam"), (0, "sgd")])
def test_accuracy_holds_across_seeds_and_optimizers(tmp_path, seed, optimizer):
    metrics = digits.train(tmp_path, seed=seed, optimizer=optimizer, progress=False,
                           echo=lambda s: None)
    assert metrics["test_accuracy"] >= 0.97
