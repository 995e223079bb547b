"""`autosplit accuracy`: predicted (proxy) and measured accuracy of a bit assignment."""
from __future__ import annotations

import argparse

from hardware_models.errors import UserError
from simulator.choices import GRANULARITIES, TIERS
from simulator.cli._arguments import (
    add_format_argument,
    add_model_argument,
    add_progress_argument,
    apply_progress,
    input_shape,
    model_name,
)
from simulator.cli._output import emit
from simulator.cli._values import number, parse_bits


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "accuracy", help="predicted (proxy) and measured accuracy of a bit assignment",
        description="Predicted accuracy of MODEL with the given weight/activation bits (the proxy "
        "g(sum_i s_i D_i(bits_i)) of simulator.accuracy) and, for an .onnx model with --data, the accuracy measured "
        "with onnxruntime on a fake-quantized copy. Zoo models use distortions from stated assumptions "
        "(He-initialised Gaussian weights, ReLU'd Gaussian activations) and sensitivities calibrated on published "
        "PTQ results; an ONNX model with data uses its real weights and activations and sensitivities fitted to "
        "single-layer measurements. Accuracies in percent; 16/16 is the floating-point reference.")
    add_model_argument(parser)
    parser.add_argument("--bits", default="8/8", metavar="W/A[,W/A...]",
                        help="one W/A pair for every layer (default 8/8), or a comma list with one pair per layer of "
                        "`autosplit inspect MODEL`, in its order; bits 1..8, or 16 for float; weight bits of layers "
                        "without weights are ignored")
    parser.add_argument("--tier", default="calibrated", choices=TIERS,
                        help="PTQ method tier: naive min-max, calibrated clipping (default), reconstruction "
                        "(AdaRound/BRECQ-like rounding optimisation)")
    parser.add_argument("--granularity", default="per-channel", choices=GRANULARITIES,
                        help="weight quantization granularity (activations are always per tensor)")
    parser.add_argument("--data", metavar="FILE.npz", help="labelled data (x: model-ready float32 inputs, batch "
                        "first; y: integer labels) to measure an .onnx model on. Measurements (and the proxy fitted "
                        "to them) are kept in $AUTOSPLIT_CACHE, else ~/.cache/autosplit, by the SHA-256 of the "
                        "model and data files: a later command on the same files reuses them")
    parser.add_argument("--calibration", metavar="FILE.npz", help="inputs that fix activation ranges (default: the "
                        "first 128 samples of --data)")
    parser.add_argument("--fp-accuracy", type=number(0.0, 100.0, low_open=True, what="a percentage"), metavar="PCT",
                        help="float accuracy of an .onnx model given without --data (percent)")
    add_progress_argument(parser)
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from simulator.accuracy.assess import assess  # loads numpy (and onnxruntime to measure): not for --help

    name = model_name(args)
    onnx = name.endswith(".onnx")
    if args.fp_accuracy is not None and not onnx:
        raise UserError(f"--fp-accuracy: {name} is a zoo model, whose float accuracy is torchvision's; the flag is "
                        "for an .onnx model without --data")
    if args.calibration and not args.data:
        raise UserError("--calibration: calibration inputs are for measuring; give --data FILE.npz with an .onnx model")
    if args.fp_accuracy is not None and args.data:
        raise UserError("--fp-accuracy: with --data the float accuracy is measured; give one of them")
    pairs = [parse_bits(part.strip()) for part in args.bits.split(",") if part.strip()]
    if not pairs:
        raise UserError("--bits: give W/A pairs such as 8/8 or 4/8,8/8,...")
    apply_progress(args)
    data = assess(name, pairs, args.tier, args.granularity, args.data, args.calibration, args.fp_accuracy,
                  input_shape=input_shape(args), until=args.until)
    emit(args.format, data, [{k: v for k, v in data.items() if not isinstance(v, list)}])
