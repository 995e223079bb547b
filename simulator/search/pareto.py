"""Pareto utilities: non-dominated filtering and hypervolume, every objective minimised."""
from __future__ import annotations

import numpy as np


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Bool mask of the non-dominated rows of `points` (n, d); of duplicate rows only the first is kept."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort(points.T[::-1])  # by the first objective, ties broken by the next ones
    sorted_points = points[order]
    keep = np.ones(n, dtype=bool)
    if points.shape[1] == 2:
        best_second = np.minimum.accumulate(sorted_points[:, 1])
        keep[1:] = sorted_points[1:, 1] < best_second[:-1]
    else:
        for i in range(1, n):
            earlier = sorted_points[:i][keep[:i]]
            dominated = np.all(earlier <= sorted_points[i], axis=1)
            keep[i] = not dominated.any()
    mask = np.zeros(n, dtype=bool)
    mask[order[keep]] = True
    return mask


def hypervolume_2d(points: np.ndarray, reference: tuple[float, float]) -> float:
    """Area dominated by `points` (n, 2) and bounded by `reference` (both objectives minimised)."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    inside = np.all(points < np.asarray(reference), axis=1)
    front = points[inside]
    if len(front) == 0:
        return 0.0
    front = front[pareto_mask(front)]
    front = front[np.argsort(front[:, 0])]
    widths = np.diff(np.append(front[:, 0], reference[0]))
    return float(np.sum(widths * (reference[1] - np.minimum.accumulate(front[:, 1]))))


def hypervolume_3d(points: np.ndarray, reference: tuple[float, float, float]) -> float:
    """Volume dominated by `points` (n, 3) and bounded by `reference`: slices along the third objective."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    front = points[np.all(points < np.asarray(reference), axis=1)]
    if len(front) == 0:
        return 0.0
    front = front[pareto_mask(front)]
    levels = np.unique(front[:, 2])
    bounds = np.append(levels[1:], reference[2])
    return float(sum(hypervolume_2d(front[front[:, 2] <= z][:, :2], reference[:2]) * (top - z)
                     for z, top in zip(levels, bounds)))
