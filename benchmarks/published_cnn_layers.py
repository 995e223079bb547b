"""Layer lists of two published CNNs the zoo lacks, for the benchmarks that fit edge CPUs and DSPs.

MobileNet-v1 1.0 (Howard et al. 2017, Table 1) and SqueezeNet 1.1 (the SqueezeNet repository's v1.1:
3x3/64 stem, fire modules of squeeze 16/32/48/64), both as `LayerSpec`s with batchnorm and ReLU folded.
Benchmark-only: the models are not in the zoo because autosplit has no accuracy data for them.
"""
from __future__ import annotations

from hardware_models.layer import LayerSpec


def _conv(name: str, cin: int, hw: int, cout: int, k: int, stride: int, groups: int = 1) -> tuple[LayerSpec, int]:
    out = (hw + 2 * (k // 2) - k) // stride + 1
    return LayerSpec(name, "conv", cin, hw, hw, cout, out, out, k, k, stride, groups, has_weights=True,
                     op="conv"), out


def mobilenet_v1(size: int = 224) -> list[LayerSpec]:
    """MobileNet-v1 1.0 at `size` x `size`: a strided stem, 13 depthwise-separable blocks, pool, classifier."""
    layers: list[LayerSpec] = []
    layer, hw = _conv("conv0", 3, size, 32, 3, 2)
    layers.append(layer)
    cin = 32
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for i, (cout, stride) in enumerate(plan, 1):
        dw, hw = _conv(f"block{i}.dw", cin, hw, cin, 3, stride, groups=cin)
        pw, hw = _conv(f"block{i}.pw", cin, hw, cout, 1, 1)
        layers += [dw, pw]
        cin = cout
    layers.append(LayerSpec("pool", "pool", cin, hw, hw, cin, 1, 1, hw, hw, hw, ops_per_output=hw * hw, op="avgpool"))
    layers.append(LayerSpec("fc", "gemm", cin, 1, 1, 1000, 1, 1, has_weights=True, op="linear"))
    return layers


def squeezenet1_1(size: int = 227) -> list[LayerSpec]:
    """SqueezeNet 1.1 at `size` x `size`: stem, three max-pools (ceil mode), eight fire modules, conv classifier."""
    layers: list[LayerSpec] = []

    def pool(name: str, c: int, hw: int) -> int:
        out = -(-(hw - 3) // 2) + 1
        layers.append(LayerSpec(name, "pool", c, hw, hw, c, out, out, 3, 3, 2, ops_per_output=9, op="maxpool"))
        return out

    stem, hw = _conv("conv1", 3, size, 64, 3, 2)
    stem = LayerSpec(stem.name, "conv", 3, size, size, 64, (size - 3) // 2 + 1, (size - 3) // 2 + 1, 3, 3, 2,
                     has_weights=True, op="conv")
    hw = stem.out_height
    layers.append(stem)
    hw = pool("pool1", 64, hw)
    cin = 64
    fires = [(16, 64), (16, 64), "pool", (32, 128), (32, 128), "pool", (48, 192), (48, 192), (64, 256), (64, 256)]
    for i, fire in enumerate(fires, 2):
        if fire == "pool":
            hw = pool(f"pool{i}", cin, hw)
            continue
        squeeze, expand = fire
        layers.append(_conv(f"fire{i}.squeeze", cin, hw, squeeze, 1, 1)[0])
        layers.append(_conv(f"fire{i}.expand1x1", squeeze, hw, expand, 1, 1)[0])
        layers.append(_conv(f"fire{i}.expand3x3", squeeze, hw, expand, 3, 1)[0])
        layers.append(LayerSpec(f"fire{i}.concat", "data", expand, hw, hw, 2 * expand, hw, hw, num_inputs=2,
                                op="concat"))
        cin = 2 * expand
    layers.append(_conv("classifier", cin, hw, 1000, 1, 1)[0])
    layers.append(LayerSpec("pool", "pool", 1000, hw, hw, 1000, 1, 1, hw, hw, hw, ops_per_output=hw * hw,
                            op="avgpool"))
    return layers
