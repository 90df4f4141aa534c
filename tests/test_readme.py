"""The README is the front door: its Python examples run as written, in order."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    pytest.importorskip("sympy")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)                 # nn.save writes model.npz here
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)   # noqa: S102
    assert (tmp_path / "model.npz").exists()
    assert namespace["report"].passed
    _penalty_gradients_are_torchs(namespace)


def _penalty_gradients_are_torchs(ns):
    """The README says its input-gradient penalty's gradients are PyTorch's to 1e-10."""
    import numpy as np
    torch = pytest.importorskip("torch")
    tw, tb = (torch.tensor(ns[name], requires_grad=True) for name in ("w1", "b1"))
    real = torch.tensor(ns["real"], requires_grad=True)
    critic = (torch.tensor(ns["v"]) * torch.tanh(
        torch.nn.functional.conv2d(real, tw, tb, padding=1))).sum()
    (dx,) = torch.autograd.grad(critic, real, create_graph=True)
    penalty = (dx**2).sum()
    dw, db = torch.autograd.grad(penalty, (tw, tb))
    assert abs(ns["penalty"] - penalty.item()) <= 1e-10 * abs(penalty.item())
    for ours, ref in ((ns["dpenalty_dw"], dw), (ns["dpenalty_db"], db)):
        ref = ref.numpy()
        assert np.abs(ours - ref).max() <= 1e-10 * np.abs(ref).max()


def test_quickstart_has_two_command_lines():
    text = README.read_text()
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", text, flags=re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 2
    assert "convgrad demo" in lines[0] and "pytest" in lines[1]
    assert lines[1] in (README.parent / ".ci" / "run").read_text()
