"""Networks of the published edge rows that autosplit's zoo lacks, built at the rows' input sizes.

Built with autosplit's GraphBuilder from the architectures (torchvision's definitions; MobileNet-v1 from
Howard et al. 2017, as TensorFlow's slim model), shapes and MACs only, no weights. Inception-v3 is built at
the row's input (the Hexagon rows give 224x224). `network(name)` maps a
model named in ../shared/data/edge/*_published.csv to a simplified Graph, or None where the model is not
built (the reason is in NOT_BUILT).
"""
from __future__ import annotations

from simulator.graph import load_model
from simulator.graph.builder import GraphBuilder
from simulator.graph.ir import Graph
from simulator.graph.simplify import simplify

NOT_BUILT = {
    "inception v4": "Inception v4: not built; rows not used",
    "inception-resnet": "Inception-ResNet v2: not built; rows not used",
    "efficientnet-edgetpu": "EfficientNet-EdgeTPU S/M: not built; rows not used",
    "mobilenetedgetpu": "MobileNetEdgeTPU / MobileNetV4 (MLPerf Mobile): not built; rows not used",
    "resnet-50 v2": "ResNet-50 v2 (pre-activation): not built; rows not used",
}


def _cbr(b: GraphBuilder, p: str, x: str, out: int, k: int, s: int = 1, pad: int | None = None,
         groups: int = 1, act: str = "relu") -> str:
    x = b.conv(f"{p}.conv", x, out, k, s, (k - 1) // 2 if pad is None else pad, groups=groups)
    return b.activation(f"{p}.relu", b.batchnorm(f"{p}.bn", x), act)


def resnet(depth: int, size: int = 224) -> Graph:
    """torchvision's ResNet-50/101/152 (v1.5) at size x size."""
    blocks = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}[depth]
    b = GraphBuilder(f"resnet{depth}_{size}", (1, 3, size, size))
    x = b.activation("relu", b.batchnorm("bn1", b.conv("conv1", b.input, 64, 7, 2, 3)))
    x = b.maxpool("maxpool", x, 3, 2, 1)
    in_ch = 64
    for stage, (planes, count) in enumerate(zip([64, 128, 256, 512], blocks), start=1):
        for i in range(count):
            p, stride, identity = f"layer{stage}.{i}", (2 if stage > 1 and i == 0 else 1), x
            out = b.activation(f"{p}.relu", b.batchnorm(f"{p}.bn1", b.conv(f"{p}.conv1", x, planes, 1)))
            out = b.activation(f"{p}.relu", b.batchnorm(f"{p}.bn2", b.conv(f"{p}.conv2", out, planes, 3, stride, 1)))
            out = b.batchnorm(f"{p}.bn3", b.conv(f"{p}.conv3", out, planes * 4, 1))
            if stride != 1 or in_ch != planes * 4:
                identity = b.batchnorm(f"{p}.downsample.1", b.conv(f"{p}.downsample.0", x, planes * 4, 1, stride))
            x = b.activation(f"{p}.relu", b.elementwise(f"{p}.add", "add", [out, identity]))
            in_ch = planes * 4
    x = b.flatten("flatten", b.global_avgpool("avgpool", x))
    b.linear("fc", x, 1000)
    return simplify(b.build())


def vgg19() -> Graph:
    b = GraphBuilder("vgg19")
    x, i = b.input, 0
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]:
        if v == "M":
            x, i = b.maxpool(f"features.{i}", x, 2, 2), i + 1
        else:
            x, i = b.activation(f"features.{i + 1}", b.conv(f"features.{i}", x, v, 3, 1, 1, bias=True)), i + 2
    x = b.flatten("flatten", b.adaptive_avgpool("avgpool", x, 7))
    x = b.activation("classifier.1", b.linear("classifier.0", x, 4096))
    x = b.activation("classifier.4", b.linear("classifier.3", x, 4096))
    b.linear("classifier.6", x, 1000)
    return simplify(b.build())


def mobilenet_v1() -> Graph:
    b = GraphBuilder("mobilenet_v1")
    x = _cbr(b, "conv0", b.input, 32, 3, 2)
    in_ch = 32
    for i, (out, s) in enumerate([(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
                                  (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)], start=1):
        x = _cbr(b, f"block{i}.dw", x, in_ch, 3, s, groups=in_ch, act="relu6")
        x = _cbr(b, f"block{i}.pw", x, out, 1, act="relu6")
        in_ch = out
    x = b.flatten("flatten", b.global_avgpool("avgpool", x))
    b.linear("fc", x, 1001)
    return simplify(b.build())


def squeezenet1_1() -> Graph:
    b = GraphBuilder("squeezenet1_1")
    x = b.activation("features.1", b.conv("features.0", b.input, 64, 3, 2, bias=True))
    x = b.maxpool("features.2", x, 3, 2, ceil_mode=True)
    plan = [(3, 16, 64), (4, 16, 64), "M", (6, 32, 128), (7, 32, 128), "M", (9, 48, 192), (10, 48, 192),
            (11, 64, 256), (12, 64, 256)]
    pool_index = iter([5, 8])
    for item in plan:
        if item == "M":
            x = b.maxpool(f"features.{next(pool_index)}", x, 3, 2, ceil_mode=True)
            continue
        i, sq, ex = item
        p = f"features.{i}"
        s = b.activation(f"{p}.squeeze_activation", b.conv(f"{p}.squeeze", x, sq, 1, bias=True))
        e1 = b.activation(f"{p}.expand1x1_activation", b.conv(f"{p}.expand1x1", s, ex, 1, bias=True))
        e3 = b.activation(f"{p}.expand3x3_activation", b.conv(f"{p}.expand3x3", s, ex, 3, 1, 1, bias=True))
        x = b.concat(f"{p}.cat", [e1, e3])
    x = b.activation("classifier.2", b.conv("classifier.1", x, 1000, 1, bias=True))
    b.flatten("flatten", b.global_avgpool("classifier.3", x))
    return simplify(b.build())


def densenet121() -> Graph:
    b = GraphBuilder("densenet121")
    x = b.activation("features.relu0", b.batchnorm("features.norm0", b.conv("features.conv0", b.input, 64, 7, 2, 3)))
    x = b.maxpool("features.pool0", x, 3, 2, 1)
    channels = 64
    for block, layers in enumerate([6, 12, 24, 16], start=1):
        features = [x]
        for i in range(1, layers + 1):
            p = f"features.denseblock{block}.denselayer{i}"
            cat = features[0] if len(features) == 1 else b.concat(f"{p}.cat", features)
            y = b.activation(f"{p}.relu1", b.batchnorm(f"{p}.norm1", cat))
            y = b.conv(f"{p}.conv1", y, 128, 1)
            y = b.activation(f"{p}.relu2", b.batchnorm(f"{p}.norm2", y))
            features.append(b.conv(f"{p}.conv2", y, 32, 3, 1, 1))
        x = b.concat(f"features.denseblock{block}.cat", features)
        channels += 32 * layers
        if block < 4:
            p = f"features.transition{block}"
            y = b.activation(f"{p}.relu", b.batchnorm(f"{p}.norm", x))
            channels //= 2
            x = b.pool(f"{p}.pool", b.conv(f"{p}.conv", y, channels, 1), "avgpool", 2, 2)
    x = b.activation("features.relu5", b.batchnorm("features.norm5", x))
    x = b.flatten("flatten", b.global_avgpool("avgpool", x))
    b.linear("classifier", x, 1000)
    return simplify(b.build())


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible (channel counts of the squeeze-excitation blocks)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def mobilenet_v3_large() -> Graph:
    """torchvision's MobileNetV3-Large (squeeze-excitation with hard-sigmoid, hard-swish)."""
    b = GraphBuilder("mobilenet_v3_large")
    x = b.conv("features.0.0", b.input, 16, 3, 2, 1)
    x = b.activation("features.0.2", b.batchnorm("features.0.1", x), "hardswish")
    settings = [(3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
                (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
                (3, 240, 80, False, "hardswish", 2), (3, 200, 80, False, "hardswish", 1),
                (3, 184, 80, False, "hardswish", 1), (3, 184, 80, False, "hardswish", 1),
                (3, 480, 112, True, "hardswish", 1), (3, 672, 112, True, "hardswish", 1),
                (5, 672, 160, True, "hardswish", 2), (5, 960, 160, True, "hardswish", 1),
                (5, 960, 160, True, "hardswish", 1)]
    in_ch = 16
    for index, (kernel, expanded, out, se, act, stride) in enumerate(settings, start=1):
        p, y, j = f"features.{index}.block", x, 0
        if expanded != in_ch:
            y = b.conv(f"{p}.0.0", y, expanded, 1)
            y = b.activation(f"{p}.0.2", b.batchnorm(f"{p}.0.1", y), act)
            j = 1
        y = b.conv(f"{p}.{j}.0", y, expanded, kernel, stride, (kernel - 1) // 2, groups=expanded)
        y = b.activation(f"{p}.{j}.2", b.batchnorm(f"{p}.{j}.1", y), act)
        if se:
            q = f"{p}.{j + 1}"
            squeeze = _make_divisible(expanded // 4)
            scale = b.global_avgpool(f"{q}.avgpool", y)
            scale = b.activation(f"{q}.relu", b.conv(f"{q}.fc1", scale, squeeze, 1, bias=True))
            scale = b.activation(f"{q}.scale_activation", b.conv(f"{q}.fc2", scale, expanded, 1, bias=True),
                                 "hardsigmoid")
            y = b.elementwise(f"{q}.mul", "mul", [scale, y])
            j += 1
        y = b.batchnorm(f"{p}.{j + 1}.1", b.conv(f"{p}.{j + 1}.0", y, out, 1))
        x = b.elementwise(f"features.{index}.add", "add", [y, x]) if stride == 1 and in_ch == out else y
        in_ch = out
    x = b.conv("features.16.0", x, 960, 1)
    x = b.activation("features.16.2", b.batchnorm("features.16.1", x), "hardswish")
    x = b.flatten("flatten", b.global_avgpool("avgpool", x))
    x = b.activation("classifier.1", b.linear("classifier.0", x, 1280), "hardswish")
    b.linear("classifier.3", x, 1000)
    return simplify(b.build())


def shufflenet_v2_x1_0() -> Graph:
    """torchvision's ShuffleNet-V2 x1.0: the channel split is a slice, the shuffle a transpose (a copy)."""
    b = GraphBuilder("shufflenet_v2_x1_0")
    x = b.activation("conv1.2", b.batchnorm("conv1.1", b.conv("conv1.0", b.input, 24, 3, 2, 1)))
    x = b.maxpool("maxpool", x, 3, 2, 1)
    in_ch = 24
    for stage, (repeats, out) in enumerate([(4, 116), (8, 232), (4, 464)], start=2):
        for i in range(repeats):
            p, half = f"stage{stage}.{i}", out // 2
            n, c, h, w = b.shape(x)
            if i == 0:
                left = b.batchnorm(f"{p}.branch1.1", b.conv(f"{p}.branch1.0", x, in_ch, 3, 2, 1, groups=in_ch))
                left = b.activation(f"{p}.branch1.4", b.batchnorm(f"{p}.branch1.3",
                                                                  b.conv(f"{p}.branch1.2", left, half, 1)))
                right, stride = x, 2
            else:
                left = b.add(f"{p}.chunk", "slice", [x], (n, c // 2, h, w))
                right = b.add(f"{p}.chunk#2", "slice", [x], (n, c // 2, h, w))
                stride = 1
            y = b.activation(f"{p}.branch2.2", b.batchnorm(f"{p}.branch2.1", b.conv(f"{p}.branch2.0", right, half, 1)))
            y = b.batchnorm(f"{p}.branch2.4", b.conv(f"{p}.branch2.3", y, half, 3, stride, 1, groups=half))
            y = b.activation(f"{p}.branch2.7", b.batchnorm(f"{p}.branch2.6", b.conv(f"{p}.branch2.5", y, half, 1)))
            cat = b.concat(f"{p}.cat", [left, y])
            x = b.add(f"{p}.shuffle", "transpose", [cat], b.shape(cat))
            in_ch = out
    x = b.activation("conv5.2", b.batchnorm("conv5.1", b.conv("conv5.0", x, 1024, 1)))
    x = b.flatten("flatten", b.global_avgpool("mean", x))
    b.linear("fc", x, 1000)
    return simplify(b.build())


def _basic(b: GraphBuilder, p: str, x: str, out: int, kernel, stride=1, padding=0) -> str:
    """Inception's BasicConv2d: conv (no bias), batchnorm (eps 1e-3), relu."""
    x = b.conv(f"{p}.conv", x, out, kernel, stride, padding)
    return b.activation(f"{p}.relu", b.batchnorm(f"{p}.bn", x, eps=1e-3))


def inception_v3(size: int = 299) -> Graph:
    """torchvision's Inception-v3 (eval: no auxiliary head) at size x size."""
    b = GraphBuilder(f"inception_v3_{size}", (1, 3, size, size))
    x = _basic(b, "Conv2d_1a_3x3", b.input, 32, 3, 2)
    x = _basic(b, "Conv2d_2a_3x3", x, 32, 3)
    x = _basic(b, "Conv2d_2b_3x3", x, 64, 3, 1, 1)
    x = b.maxpool("maxpool1", x, 3, 2)
    x = _basic(b, "Conv2d_3b_1x1", x, 80, 1)
    x = _basic(b, "Conv2d_4a_3x3", x, 192, 3)
    x = b.maxpool("maxpool2", x, 3, 2)

    def block_a(p, x, pool_features):
        a = _basic(b, f"{p}.branch1x1", x, 64, 1)
        c = _basic(b, f"{p}.branch5x5_2", _basic(b, f"{p}.branch5x5_1", x, 48, 1), 64, 5, 1, 2)
        d = _basic(b, f"{p}.branch3x3dbl_1", x, 64, 1)
        d = _basic(b, f"{p}.branch3x3dbl_3", _basic(b, f"{p}.branch3x3dbl_2", d, 96, 3, 1, 1), 96, 3, 1, 1)
        e = _basic(b, f"{p}.branch_pool", b.pool(f"{p}.avg_pool", x, "avgpool", 3, 1, 1), pool_features, 1)
        return b.concat(f"{p}.cat", [a, c, d, e])

    def block_c(p, x, c7):
        a = _basic(b, f"{p}.branch1x1", x, 192, 1)
        c = _basic(b, f"{p}.branch7x7_1", x, c7, 1)
        c = _basic(b, f"{p}.branch7x7_2", c, c7, (1, 7), 1, (0, 3))
        c = _basic(b, f"{p}.branch7x7_3", c, 192, (7, 1), 1, (3, 0))
        d = _basic(b, f"{p}.branch7x7dbl_1", x, c7, 1)
        for k, (out, kernel, pad) in enumerate([(c7, (7, 1), (3, 0)), (c7, (1, 7), (0, 3)), (c7, (7, 1), (3, 0)),
                                                (192, (1, 7), (0, 3))], start=2):
            d = _basic(b, f"{p}.branch7x7dbl_{k}", d, out, kernel, 1, pad)
        e = _basic(b, f"{p}.branch_pool", b.pool(f"{p}.avg_pool", x, "avgpool", 3, 1, 1), 192, 1)
        return b.concat(f"{p}.cat", [a, c, d, e])

    def block_e(p, x):
        a = _basic(b, f"{p}.branch1x1", x, 320, 1)
        c = _basic(b, f"{p}.branch3x3_1", x, 384, 1)
        c = b.concat(f"{p}.cat_3x3", [_basic(b, f"{p}.branch3x3_2a", c, 384, (1, 3), 1, (0, 1)),
                                      _basic(b, f"{p}.branch3x3_2b", c, 384, (3, 1), 1, (1, 0))])
        d = _basic(b, f"{p}.branch3x3dbl_2", _basic(b, f"{p}.branch3x3dbl_1", x, 448, 1), 384, 3, 1, 1)
        d = b.concat(f"{p}.cat_3x3dbl", [_basic(b, f"{p}.branch3x3dbl_3a", d, 384, (1, 3), 1, (0, 1)),
                                         _basic(b, f"{p}.branch3x3dbl_3b", d, 384, (3, 1), 1, (1, 0))])
        e = _basic(b, f"{p}.branch_pool", b.pool(f"{p}.avg_pool", x, "avgpool", 3, 1, 1), 192, 1)
        return b.concat(f"{p}.cat", [a, c, d, e])

    x = block_a("Mixed_5b", x, 32)
    x = block_a("Mixed_5c", x, 64)
    x = block_a("Mixed_5d", x, 64)
    p = "Mixed_6a"
    a = _basic(b, f"{p}.branch3x3", x, 384, 3, 2)
    d = _basic(b, f"{p}.branch3x3dbl_2", _basic(b, f"{p}.branch3x3dbl_1", x, 64, 1), 96, 3, 1, 1)
    d = _basic(b, f"{p}.branch3x3dbl_3", d, 96, 3, 2)
    x = b.concat(f"{p}.cat", [a, d, b.maxpool(f"{p}.max_pool", x, 3, 2)])
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        x = block_c(name, x, c7)
    p = "Mixed_7a"
    a = _basic(b, f"{p}.branch3x3_2", _basic(b, f"{p}.branch3x3_1", x, 192, 1), 320, 3, 2)
    d = _basic(b, f"{p}.branch7x7x3_1", x, 192, 1)
    d = _basic(b, f"{p}.branch7x7x3_2", d, 192, (1, 7), 1, (0, 3))
    d = _basic(b, f"{p}.branch7x7x3_3", d, 192, (7, 1), 1, (3, 0))
    d = _basic(b, f"{p}.branch7x7x3_4", d, 192, 3, 2)
    x = b.concat(f"{p}.cat", [a, d, b.maxpool(f"{p}.max_pool", x, 3, 2)])
    x = block_e("Mixed_7b", x)
    x = block_e("Mixed_7c", x)
    x = b.flatten("flatten", b.global_avgpool("avgpool", x))
    b.linear("fc", x, 1000)
    return simplify(b.build())


def network(model: str, input_text: str = "224x224") -> Graph | None:
    """The network of a published row (its `model` and `input` columns), or None when not built."""
    name = model.lower()
    size = 299 if input_text.startswith("299") else 224
    if "resnext50" in name:
        return load_model("resnext50_32x4d")
    if name in ("resnet18",):
        return load_model("resnet18")
    if "resnet-50 v1" in name or name == "resnet50":
        return resnet(50, size)
    if "resnet101" in name:
        return resnet(101, size)
    if "resnet-152 v2" in name:
        return None  # pre-activation v2 (see NOT_BUILT)
    if "mobilenet v2" in name:
        return load_model("mobilenet_v2")
    if "mobilenet v1" in name:
        return mobilenet_v1()
    if "squeezenet" in name:
        return squeezenet1_1()
    if "densenet" in name:
        return densenet121()
    if "vgg19" in name:
        return vgg19()
    if name == "mobilenet_v3_large":
        return mobilenet_v3_large()
    if name == "shufflenet_v2":
        return shufflenet_v2_x1_0()
    if name == "inception_v3":
        return inception_v3(size)
    return None


def not_built_reason(model: str) -> str:
    name = model.lower()
    for key, reason in NOT_BUILT.items():
        if key in name:
            return reason
    if "resnet-152 v2" in name:
        return "ResNet-152 v2 (pre-activation): not built; rows not used"
    return f"{model}: not built; rows not used"
