"""Train small PyTorch models on the 8×8 digits and export them with ``torch.onnx.export``:
the test models of ``slimgen import`` (``tests/data/onnx/*.onnx``, each well under 100 kB).

PyTorch is not a dependency of slimgen or of its tests; run this in a separate environment::

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch onnx onnxscript scikit-learn
    /tmp/torchvenv/bin/python scripts/make_onnx_models.py [--out tests/data/onnx]

The models train on the training part of slimgen's own split of the digits (seed 0; the split
function is loaded from ``sw/data.py``, which needs only NumPy and scikit-learn), so the
accuracy slimgen measures on its test split is on images the models never saw. Each is
exported by the TorchScript exporter (``dynamo=False``, the graphs PyTorch users have) with a
dynamic batch, at a different opset:

===========  =====  ========================================================================
file         opset  network (input)
===========  =====  ========================================================================
mlp.onnx     9      Linear 64→32, BatchNorm1d, ReLU, Dropout, Linear 32→10 ((N, 64))
cnn.onnx     13     Conv 1→8 3×3, BatchNorm2d, ReLU, MaxPool 2, Conv 8→16 3×3 (no bias),
                    ReLU, Flatten, Linear 256→10 ((N, 1, 8, 8))
cnn1d.onnx   11     the rows as a sequence: transpose, Conv1d 8→16 k3, ReLU, AvgPool1d 2,
                    Flatten, Linear 64→10 ((N, 8, 8))
lstm.onnx    14     LSTM 8→24 batch_first, its last state h_n[-1], Linear 24→10 ((N, 8, 8))
gru.onnx     17     GRU 8→24 batch_first, every step's output[:, -1], Linear 24→10 ((N, 8, 8))
===========  =====  ========================================================================
"""

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent


def _digits():
    """slimgen's digits and split (seed 0), from sw/data.py loaded on its own."""
    spec = importlib.util.spec_from_file_location("slimgen_data", ROOT / "sw" / "data.py")
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    return data.load_digits(view="vector", seed=0)


class Rows(nn.Module):
    """(N, 8, 8) rows → (N, C=8, L=8) for Conv1d: the features of a row become channels."""

    def forward(self, x):
        return x.transpose(1, 2)


class LastState(nn.Module):
    def __init__(self, rnn, head, use_output):
        super().__init__()
        self.rnn, self.head, self.use_output = rnn, head, use_output

    def forward(self, x):
        out, h = self.rnn(x)
        if self.use_output:
            return self.head(out[:, -1, :])
        h = h[0] if isinstance(h, tuple) else h
        return self.head(h[-1])


def models():
    """name: (model, input shape without the batch, opset)."""
    torch.manual_seed(0)
    return {
        "mlp": (nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1),
                              nn.Linear(32, 10)), (64,), 9),
        "cnn": (nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1, bias=False),
                              nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)), (1, 8, 8), 13),
        "cnn1d": (nn.Sequential(Rows(), nn.Conv1d(8, 16, 3, padding=1), nn.ReLU(),
                                nn.AvgPool1d(2), nn.Flatten(), nn.Linear(64, 10)), (8, 8), 11),
        "lstm": (LastState(nn.LSTM(8, 24, batch_first=True), nn.Linear(24, 10), False),
                 (8, 8), 14),
        "gru": (LastState(nn.GRU(8, 24, batch_first=True), nn.Linear(24, 10), True),
                (8, 8), 17),
    }


def train(model, x, y, epochs=60, seed=0):
    """Adam on cross-entropy, batches of 32."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "tests" / "data" / "onnx"))
    p.add_argument("--epochs", type=int, default=60)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = _digits()
    for name, (model, shape, opset) in models().items():
        x, y = (torch.tensor(a) for a in data.part("train"))
        xt, yt = (torch.tensor(a) for a in data.part("test"))
        x, xt = x.float().reshape(-1, *shape), xt.float().reshape(-1, *shape)
        train(model, x, y, args.epochs)
        with torch.no_grad():
            acc = float((model(xt).argmax(1) == yt).float().mean())
        path = out / f"{name}.onnx"
        torch.onnx.export(model, x[:1], str(path), dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
        print(f"{path}: opset {opset}, {path.stat().st_size} bytes, test accuracy {acc:.4f}")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
