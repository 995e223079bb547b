"""Accuracy of quantized plans: distortion tables, the proxy g(sum_i s_i D_i(bits_i)), its calibration, and
accuracy measured on a fake-quantized ONNX model with onnxruntime.

For the search: `zoo_proxy(model, tier, granularity)` (or `calibrate_on_measurements(meter, chance)` for a real
model with data) gives an `AccuracyProxy` whose `weight_cost` / `activation_cost` tables ((layers, bits) arrays,
columns in `BIT_WIDTHS` order) add up to the weighted distortion x of a plan, and whose vectorised
`predict_from_weighted_sum(x)` / `weighted_sum_for_accuracy(accuracy)` map x to accuracy and back.
"""
from __future__ import annotations

from simulator.accuracy.calibration import calibrate_on_measurements, fit, leave_one_source_out, zoo_proxy
from simulator.accuracy.distortion import BIT_WIDTHS, FLOAT_BITS
from simulator.accuracy.proxy import AccuracyProxy, assumed_distortion_tables, bit_columns
from simulator.accuracy.published import calibration_rows, unrepresentable_rows

__all__ = ["AccuracyProxy", "BIT_WIDTHS", "FLOAT_BITS", "assumed_distortion_tables",
           "bit_columns", "calibrate_on_measurements", "calibration_rows", "fit", "leave_one_source_out",
           "unrepresentable_rows", "zoo_proxy"]
