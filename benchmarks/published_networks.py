"""Networks of the published edge rows that autosplit's zoo lacks, built at the rows' input sizes.

Built with autosplit's GraphBuilder from the architectures (torchvision's definitions; MobileNet-v1 from
Howard et al. 2017, as TensorFlow's slim model), shapes and MACs only, no weights. `network(name)` maps a
model named in ../shared/data/edge/*_published.csv to a simplified Graph, or None where the model is not
built (the reason is in NOT_BUILT).
"""
from __future__ import annotations

from simulator.graph import load_model
from simulator.graph.builder import GraphBuilder
from simulator.graph.ir import Graph
from simulator.graph.simplify import simplify

NOT_BUILT = {
    "inception": "Inception v3/v4 and Inception-ResNet v2: not built (many branch shapes); rows not used",
    "efficientnet-edgetpu": "EfficientNet-EdgeTPU S/M: not built; rows not used",
    "mobilenet_v3": "MobileNet-v3: squeeze-excitation and hard-swish blocks not built; rows not used",
    "shufflenet": "ShuffleNet-v2: its channel split is not expressible in the builder; rows not used",
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
    return None


def not_built_reason(model: str) -> str:
    name = model.lower()
    for key, reason in NOT_BUILT.items():
        if key in name:
            return reason
    if "resnet-152 v2" in name:
        return "ResNet-152 v2 (pre-activation): not built; rows not used"
    return f"{model}: not built; rows not used"
