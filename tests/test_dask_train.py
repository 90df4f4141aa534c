"""Data-parallel training on Dask against training in one process: the same losses,
outputs, gradients and BatchNorm statistics (float64, to rounding), on a two-process
LocalCluster; workers killed mid-step; the `convgrad train --dask` command.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from dask_cluster import TIMEOUT, local_cluster, require_dask

require_dask()

import convgrad.dask as cdask  # noqa: E402
from convgrad import nn  # noqa: E402

# The layers defined below reach the workers by reference: worker processes are spawned
# with this process's sys.path, so they import this module.


@pytest.fixture(scope="module")
def client():
    # One retry: a task whose worker dies once is rerun elsewhere; twice, and it fails.
    cluster, client = local_cluster(**{"distributed.scheduler.allowed-failures": 1})
    yield client
    client.close()
    cluster.close()


def model(*extra, seed=0):
    """Conv - BatchNorm2d - ReLU - MaxPool - (Flatten - Linear - BatchNorm1d) - Linear, in
    float64; layers before a BatchNorm have no bias (its gradient would be rounding noise)."""
    f64 = dict(dtype=np.float64)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False, rng=seed, **f64), nn.BatchNorm2d(4, **f64),
        nn.ReLU(), nn.MaxPool2d(2), *extra,
        nn.Sequential(nn.Flatten(), nn.Linear(64, 8, bias=False, rng=seed + 1, **f64),
                      nn.BatchNorm1d(8, **f64)),
        nn.Linear(8, 3, rng=seed + 2, **f64))


def batch(seed, n):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)), rng.integers(0, 3, n)


def relative(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_steps_equal_one_process_training(client, reduction):
    here, there = model(), model()
    loss_here, loss_there = nn.CrossEntropyLoss(reduction), nn.CrossEntropyLoss(reduction)
    opt_here, opt_there = nn.SGD(here.parameters(), lr=0.1, momentum=0.9), \
        nn.SGD(there.parameters(), lr=0.1, momentum=0.9)
    step = cdask.DataParallel(there, loss_there, client=client, shards=3, timeout=TIMEOUT)
    for i, n in enumerate([7, 2, 5]):            # shards of 3, 3, 1; then 1, 1; 2, 2, 1
        x, labels = batch(i, n)
        opt_here.zero_grad()
        opt_there.zero_grad()
        output = here.forward(x)
        loss = loss_here.forward(output, labels)
        here.backward(loss_here.backward())
        loss_dask, output_dask = step(x, labels)
        assert abs(loss_dask - loss) <= 1e-12 * abs(loss)
        assert relative(output_dask, output) <= 1e-12
        for (name, p), q in zip(here.named_parameters(), there.parameters()):
            assert relative(q.grad, p.grad) <= 1e-11, name
        opt_here.step()
        opt_there.step()
    for name, value in here.state_dict().items():       # incl. running mean and variance
        assert relative(there.state_dict()[name], value) <= 1e-11, name
    here.eval(), there.eval()                            # eval mode: no pause, same result
    x, labels = batch(9, 4)
    loss = loss_here.forward(here.forward(x), labels)
    assert abs(step(x, labels)[0] - loss) <= 1e-12 * abs(loss)
    step.close()


class KillWorker(nn.Module):
    """The identity, except that it ends its worker process: once (when ``marker`` names a
    file that does not exist yet; it is created first), or always (marker None)."""

    def __init__(self, marker=None):
        super().__init__()
        self.marker = marker

    def forward(self, x):
        if multiprocessing.parent_process() is None:      # never the test run itself
            raise RuntimeError("KillWorker ran in the test process")
        if self.marker is None or not os.path.exists(self.marker):
            if self.marker is not None:
                open(self.marker, "w").close()
            os._exit(1)
        return x

    def backward(self, dy):
        return dy


def test_a_worker_killed_mid_step_is_replaced_and_the_step_recomputed(client, tmp_path):
    x, labels = batch(1, 6)
    reference, loss_fn = model(), nn.CrossEntropyLoss()
    loss = loss_fn.forward(reference.forward(x), labels)
    reference.backward(loss_fn.backward())
    victim = model(KillWorker(str(tmp_path / "killed")))
    step = cdask.DataParallel(victim, nn.CrossEntropyLoss(), client=client, timeout=TIMEOUT)
    loss_dask, _ = step(x, labels)
    assert (tmp_path / "killed").exists()                # a worker did die mid-step
    assert abs(loss_dask - loss) <= 1e-12 * loss
    for p, q in zip(reference.parameters(), victim.parameters()):
        assert relative(q.grad, p.grad) <= 1e-11
    step.close()
    client.wait_for_workers(2, timeout=TIMEOUT)


def test_workers_that_keep_dying_stop_the_run_and_nothing_is_applied(client):
    victim = model(KillWorker())
    step = cdask.DataParallel(victim, nn.CrossEntropyLoss(), client=client, timeout=TIMEOUT)
    before = {name: value.copy() for name, value in victim.state_dict().items()}
    with pytest.raises(cdask.ClusterError, match="workers died .* none of the step applied"):
        step(*batch(2, 6))
    assert all(not p.grad.any() for p in victim.parameters())
    for name, value in victim.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    step.close()
    client.wait_for_workers(2, timeout=TIMEOUT)


class Sleep(nn.Module):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        return x

    def backward(self, dy):
        return dy


def test_a_step_past_its_timeout_is_abandoned(client):
    step = cdask.DataParallel(model(Sleep(1.5)), nn.CrossEntropyLoss(), client=client,
                              timeout=0.3)
    with pytest.raises(cdask.ClusterError, match=r"took more than 0.3 s .* none of it"):
        step(*batch(3, 4))
    step.close()


def test_what_data_parallel_refuses(client):
    loss_fn = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="Dropout.*remove it or use p=0"):
        cdask.DataParallel(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)), loss_fn,
                           client=client)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.BatchNorm1d(3)

    with pytest.raises(ValueError, match="inside Block, which is not a Sequential"):
        cdask.DataParallel(nn.Sequential(Block()), loss_fn, client=client)
    with pytest.raises(TypeError, match="loss_fn must have"):
        cdask.DataParallel(model(), object(), client=client)
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        cdask.DataParallel(model(), loss_fn, client="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        cdask.DataParallel(model(), loss_fn, client=client, timeout=0)
    with pytest.raises(ValueError, match="local:N .* or tcp://HOST:PORT"):
        cdask.cluster.parse_address("local")
    with pytest.raises(ValueError, match="1 to 64"):
        cdask.cluster.parse_address("local:0")


def _cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "convgrad.apps.cli", *args],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **env))


def test_convgrad_train_on_dask_gives_the_losses_of_one_process(client, tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from convgrad.apps.cli import main
    common = ["--epochs", "1", "--batch-size", "500", "--dtype", "float64", "--seed", "3",
              "--optimizer", "sgd"]
    assert main(["train", "--out", str(tmp_path / "here"), *common]) == 0
    address = client.scheduler.address                 # this module's cluster, over TCP
    assert main(["train", "--out", str(tmp_path / "there"), "--dask", address,
                 "--dask-timeout", str(TIMEOUT), *common]) == 0
    here, there = (json.loads((tmp_path / name / "metrics.json").read_text())
                   for name in ("here", "there"))
    for key in ("epoch_train_loss", "epoch_test_loss", "epoch_train_accuracy",
                "epoch_test_accuracy"):
        np.testing.assert_allclose(there[key], here[key], rtol=1e-10, err_msg=key)
    assert there["dask"] == dict(cluster=address, workers=2, step_timeout_seconds=TIMEOUT)


def test_convgrad_train_dask_options_are_checked(tmp_path):
    run = _cli("train", "--dask", "local:many", "--out", str(tmp_path))
    assert run.returncode == 2 and "expected local:N" in run.stderr and "Traceback" not in \
        run.stderr
    run = _cli("train", "--dask-timeout", "5", "--out", str(tmp_path))
    assert run.returncode == 2 and "--dask-timeout applies only with --dask" in run.stderr
    run = _cli("train", "--dask", "tcp://127.0.0.1:9", "--dask-timeout", "2", "--out",
               str(tmp_path / "x"))
    assert run.returncode == 2 and "cannot reach the Dask scheduler" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_convgrad_train_dask_without_the_extra_names_it(tmp_path):
    code = ("import sys; sys.modules['dask'] = None; from convgrad.apps.cli import main; "
            f"sys.exit(main(['train', '--dask', 'local:2', '--out', {str(tmp_path)!r}]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 3 and "pip install 'convgrad[dask]'" in run.stderr, run.stderr


def test_sharded_batchnorm_overflows_like_the_layer_and_silently():
    """float32 activations near their largest value: the sharded statistics give the
    layer's own output (inf and NaN where it has them) and, like the layer, no NumPy
    warning (on a cluster those reached the terminal from every worker)."""
    import warnings
    from convgrad.dask import sync_batchnorm
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    with np.errstate(over="ignore"):
        x[:, 1] *= np.float32(3e38)                          # channel 1: overflows
    layer = nn.BatchNorm2d(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = layer.forward(x)
        parts = [sync_batchnorm.local_moments(shard) for shard in (x[:1], x[1:])]
        m, mean, var = sync_batchnorm.combine_moments(parts)
        outputs = [sync_batchnorm.normalize(layer, shard, mean, var)[0] for shard in
                   (x[:1], x[1:])]
        dy = rng.standard_normal(x.shape).astype(np.float32)
        saved = [sync_batchnorm.normalize(layer, shard, mean, var)[1] for shard in
                 (x[:1], x[1:])]
        halves = [sync_batchnorm.backward_sums(layer, d, s) for d, s in
                  zip((dy[:1], dy[1:]), saved)]
        sums = tuple(np.sum([h[1][i] for h in halves], axis=0) for i in range(2))
        for (dxhat, _), s in zip(halves, saved):
            sync_batchnorm.finish_backward(dxhat, s, sums, m)
    got = np.concatenate(outputs)
    assert not np.isfinite(expected[:, 1]).all()
    np.testing.assert_allclose(got[:, [0, 2]], expected[:, [0, 2]], rtol=1e-5, atol=1e-5)
    assert np.array_equal(np.isfinite(got), np.isfinite(expected))
