"""Generate the shapes data set, train the small DAG CNN on it and export the example's files (run once, by
hand, with torch on CPU; never a dependency of autosplit):

    python3 -m venv /work/torch-venv && /work/torch-venv/bin/pip install torch==2.13.0 numpy onnx
    /work/torch-venv/bin/python experiments/data/make_trained_cnn.py

The task: 10 classes of 32x32 grayscale images, each a shape or a texture patch (disc, ring, square, square
outline, triangle, plus, X, horizontal stripes, vertical stripes, checkerboard) at a random position (+-6 px),
size (radius 5 to 12 px), rotation (disc to triangle: any; plus, X and the textures: +-20 degrees), contrast (either polarity), on a
random linear background gradient, with Gaussian pixel noise (sigma 0.08 to 0.30 of full scale), then rounded
to 8 bits. Everything is drawn from numpy's seeded Generator, so the files are the same on every run.

The model (`ShapesNet`, 12 layers after batchnorm folding, 11.6k parameters, 1.6M multiply-accumulates: small
enough that measuring a plan on the 500 test images takes about a tenth of a second) is a DAG, not a chain:
    conv1 (1->12, 3x3, 32x32) -> maxpool 2x2 -> block: conv2a, conv2b (12->12, 3x3, 16x16) + skip add from the
    pool -> two branches: conv3a (12->12, 1x1) and conv3b (12->12, 3x3), concatenated (24 channels)
    -> conv4 (24->32, 3x3, stride 2) -> global average pool -> flatten -> fc (32->10)
Batchnorm after every conv, ReLU after every conv but conv2b (ReLU after the add instead). It is trained on
inputs scaled to [0, 1]; the 1/255 is then folded into conv1's weights, so the exported model reads the 8-bit
pixel values (0..255) directly and the data files stay small.

Writes, next to this script:
- trained_cnn.onnx: the model, TorchScript exporter (dynamo=False), batch axis dynamic, BatchNormalization
  nodes kept (autosplit folds them itself);
- shapes_test.npz: 500 held-out images, `x` uint8 (N, 1, 32, 32) pixel values (autosplit's loader reads
  them as float32 0..255, what the model expects), `y` int64 labels;
- shapes_calibration.npz: 128 further images (not in the test set) that fix activation ranges.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 2026
SIZE = 32
CLASSES = ("disc", "ring", "square", "square outline", "triangle", "plus", "x", "horizontal stripes",
           "vertical stripes", "checkerboard")
TRAIN_IMAGES = 10_000
TEST_IMAGES = 500
CALIBRATION_IMAGES = 128
EPOCHS = 20


# --- the data set ---------------------------------------------------------------------------------------
def _smooth_step(distance: np.ndarray) -> np.ndarray:
    """Coverage of a pixel by a region whose signed distance (negative inside) is `distance`, antialiased."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def _mask(kind: int, u: np.ndarray, v: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Coverage in [0, 1] of class `kind` in rotated, centred pixel coordinates (u, v)."""
    r = np.hypot(u, v)
    width = max(1.5, 0.28 * radius)
    if kind == 0:
        return _smooth_step(r - radius)
    if kind == 1:
        return _smooth_step(np.abs(r - 0.75 * radius) - 0.5 * width)
    box = np.maximum(np.abs(u), np.abs(v))
    if kind == 2:
        return _smooth_step(box - 0.85 * radius)
    if kind == 3:
        return _smooth_step(np.abs(box - 0.8 * radius) - 0.5 * width)
    if kind == 4:  # equilateral triangle: the largest of three half-plane distances
        angles = np.deg2rad([90.0, 210.0, 330.0])
        d = np.max([u * np.cos(a) + v * np.sin(a) for a in angles], axis=0)
        return _smooth_step(d - 0.5 * radius)
    if kind == 5:
        arm = np.minimum(np.maximum(np.abs(u) - 0.5 * width, np.abs(v) - radius),
                         np.maximum(np.abs(v) - 0.5 * width, np.abs(u) - radius))
        return _smooth_step(arm)
    if kind == 6:
        s, t = (u + v) / np.sqrt(2), (u - v) / np.sqrt(2)
        arm = np.minimum(np.maximum(np.abs(s) - 0.5 * width, np.abs(t) - radius),
                         np.maximum(np.abs(t) - 0.5 * width, np.abs(s) - radius))
        return _smooth_step(arm)
    # textures inside a disc or square window
    period = rng.uniform(3.5, 6.0)
    phase = rng.uniform(0, 2 * np.pi)
    window = _smooth_step(r - 1.15 * radius) if rng.random() < 0.5 else _smooth_step(box - radius)
    if kind == 7:
        pattern = np.sin(2 * np.pi * v / period + phase) > 0
    elif kind == 8:
        pattern = np.sin(2 * np.pi * u / period + phase) > 0
    else:
        pattern = (np.sin(2 * np.pi * u / period + phase) > 0) ^ (np.sin(2 * np.pi * v / period + phase) > 0)
    return window * pattern


def make_images(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x uint8 (count, 1, 32, 32), y int64 (count,)), classes balanced and shuffled."""
    labels = rng.permutation(np.arange(count) % len(CLASSES))
    grid = np.arange(SIZE) - (SIZE - 1) / 2
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    images = np.empty((count, SIZE, SIZE), dtype=np.float64)
    for n, kind in enumerate(labels):
        cx, cy = rng.uniform(-6, 6, size=2)
        radius = rng.uniform(5.0, 12.0)
        # plus and X are one shape 45 degrees apart, stripes and checkerboard have an orientation: +-20 degrees
        angle = rng.uniform(-np.pi, np.pi) if kind < 5 else np.deg2rad(rng.uniform(-20, 20))
        x0, y0 = xx - cx, yy - cy
        u = x0 * np.cos(angle) + y0 * np.sin(angle)
        v = -x0 * np.sin(angle) + y0 * np.cos(angle)
        mask = _mask(int(kind), u, v, radius, rng)
        gx, gy = rng.normal(0, 0.012, size=2)
        background = rng.uniform(0.25, 0.75) + gx * xx + gy * yy
        contrast = rng.uniform(0.25, 0.6) * rng.choice([-1.0, 1.0])
        noise = rng.normal(0, rng.uniform(0.08, 0.30), size=mask.shape)
        images[n] = background + contrast * mask + noise
    pixels = np.clip(np.round(images * 255), 0, 255).astype(np.uint8)
    return pixels[:, None], labels.astype(np.int64)


# --- the model ------------------------------------------------------------------------------------------
def build_model():
    import torch
    from torch import nn

    def conv(cin, cout, k, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout))

    class ShapesNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = conv(1, 12, 3)
            self.conv2a = conv(12, 12, 3)
            self.conv2b = conv(12, 12, 3)
            self.pool = nn.MaxPool2d(2)
            self.conv3a = conv(12, 12, 1)
            self.conv3b = conv(12, 12, 3)
            self.conv4 = conv(24, 32, 3, stride=2)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, len(CLASSES))
            self.relu = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pool(self.relu(self.conv1(x)))
            x = self.relu(self.conv2b(self.relu(self.conv2a(x))) + x)  # residual add
            x = torch.cat([self.relu(self.conv3a(x)), self.relu(self.conv3b(x))], dim=1)  # concatenation
            x = self.relu(self.conv4(x))
            return self.fc(torch.flatten(self.gap(x), 1))

    return ShapesNet()


def main(out_dir: Path = HERE) -> None:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng = np.random.default_rng(SEED)
    x_train, y_train = make_images(TRAIN_IMAGES, rng)
    x_test, y_test = make_images(TEST_IMAGES, rng)
    x_cal, y_cal = make_images(CALIBRATION_IMAGES, rng)

    model = build_model()
    xt = torch.from_numpy(x_train.astype(np.float32) / 255.0)
    yt = torch.from_numpy(y_train)
    optimiser = torch.optim.AdamW(model.parameters(), lr=6e-3, weight_decay=1e-4)
    steps = EPOCHS * ((len(xt) + 127) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=6e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        total = 0.0
        for start in range(0, len(xt), 128):
            idx = order[start:start + 128]
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1}: loss {total / len(xt):.3f}", flush=True)
    model.eval()
    with torch.no_grad():
        model.conv1[0].weight.mul_(1.0 / 255.0)  # the exported model reads 0..255 pixel values
        xs = torch.from_numpy(x_test.astype(np.float32))
        accuracy = (model(xs).argmax(1).numpy() == y_test).mean() * 100
    print(f"test accuracy {accuracy:.2f}% on {len(y_test)} images; "
          f"{sum(p.numel() for p in model.parameters())} parameters")

    torch.onnx.export(model, (xs[:1],), out_dir / "trained_cnn.onnx", input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    np.savez_compressed(out_dir / "shapes_test.npz", x=x_test, y=y_test)
    np.savez_compressed(out_dir / "shapes_calibration.npz", x=x_cal, y=y_cal)


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)  # another folder: to compare before replacing
