"""Pareto utilities, every objective minimised: non-dominated filtering (optionally within groups, e.g. the
exact front's states per key) and hypervolume."""
from __future__ import annotations

import numpy as np


def nondominated(values: np.ndarray, groups: np.ndarray | None = None, block: int = 512) -> np.ndarray:
    """Mask of the rows of `values` (n, d) that no other row of the same group weakly dominates (all <=,
    minimised); of identical rows the first is kept. Two objectives take `front_2d`'s one sort; more are
    compared in blocks of `block` rows against the rows kept so far."""
    values = np.asarray(values, dtype=float)
    n, d = values.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    if d == 2:
        return front_2d(values[:, 0], values[:, 1], groups)
    keep = np.zeros(n, dtype=bool)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    order = np.lexsort(tuple(values.T[::-1]) + (groups,))
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], n]):
        rows = order[start:stop]
        keep[rows[_nondominated_sorted(values[rows], block)]] = True
    return keep


def _nondominated_sorted(points: np.ndarray, block: int) -> np.ndarray:
    """Non-dominated mask of points sorted lexicographically (only earlier rows can dominate later ones)."""
    n = len(points)
    keep = np.zeros(n, dtype=bool)
    kept = np.empty((0, points.shape[1]))
    upper = np.triu(np.ones((block, block), dtype=bool), 1)
    for start in range(0, n, block):
        chunk = points[start:start + block]
        m = len(chunk)
        dominated = np.zeros(m, dtype=bool)
        for s in range(0, len(kept), 4096):
            dominated |= np.any(np.all(kept[None, s:s + 4096, :] <= chunk[:, None, :], axis=2), axis=1)
        inner = (chunk[:, None, :] <= chunk[None, :, :]).all(2) & upper[:m, :m]   # [i, j]: i dominates j
        dominated |= (inner & ~dominated[:, None]).any(0)
        keep[start:start + m] = ~dominated
        kept = np.vstack([kept, chunk[~dominated]])
    return keep


def front_2d(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Mask of the points (x, y) that no other point of the same group weakly dominates, all groups in one
    vectorised sort: in (group, x, y) order a point is kept when its y beats every earlier y of its group."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if groups is None:  # one group: the running minimum of y itself, no ranks needed
        order = np.lexsort((y, x))
        y_sorted = np.asarray(y)[order]
        keep_sorted = np.r_[True, y_sorted[1:] < np.minimum.accumulate(y_sorted)[:-1]]
        keep = np.zeros(n, dtype=bool)
        keep[order[keep_sorted]] = True
        return keep
    groups = np.asarray(groups)
    order = np.lexsort((y, x, groups))
    g = groups[order]
    first = np.r_[True, g[1:] != g[:-1]]
    # y as dense integer ranks, shifted down group by group so that one running minimum restarts at each
    y_rank = np.unique(y, return_inverse=True)[1].reshape(-1)[order].astype(np.int64)
    shifted = y_rank - (np.cumsum(first) - 1) * (n + 1)
    running = np.minimum.accumulate(shifted)
    keep_sorted = first.copy()
    keep_sorted[1:] |= shifted[1:] < running[:-1]
    keep = np.zeros(n, dtype=bool)
    keep[order[keep_sorted]] = True
    return keep


def front_3d_levels(x: np.ndarray, y: np.ndarray, level: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mask of the points (x, y, level) that no other point of the same group weakly dominates, for a third
    coordinate with few distinct values: the levels are swept upwards, each level's points are checked
    against the running 2-D front of the lower levels of their group (integer ranks: exact comparisons)."""
    n = len(x)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    _, x_rank = np.unique(x, return_inverse=True)
    _, y_rank = np.unique(y, return_inverse=True)
    x_rank, y_rank = x_rank.reshape(-1), y_rank.reshape(-1)
    span = n + 1
    groups = np.asarray(groups, dtype=np.int64)
    g = groups - groups.min()   # only equality and order matter: dense ranks only if group * span could overflow
    if int(g.max()) >= 2**62 // span:
        g = np.unique(groups, return_inverse=True)[1].reshape(-1).astype(np.int64)
    by_level = np.argsort(level, kind="stable")
    sorted_level = np.asarray(level)[by_level]
    bounds = np.r_[0, np.flatnonzero(sorted_level[1:] != sorted_level[:-1]) + 1, n]
    run_key = np.empty(0, dtype=np.int64)   # group * span + x rank, sorted; the running fronts
    run_y = np.empty(0, dtype=np.int64)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        cand = by_level[lo:hi]
        cand = cand[front_2d(x_rank[cand], y_rank[cand], g[cand])]
        cand_key = g[cand] * span + x_rank[cand]
        if len(run_key):
            new = ~_staircase_dominates(run_key, run_y, cand_key, y_rank[cand], span)
            cand, cand_key = cand[new], cand_key[new]
        keep[cand] = True
        # the running fronts grow by the new points and lose the lower levels' points those dominate (keys
        # stay unique: of two points with the same group and x one dominates the other)
        order = np.argsort(cand_key, kind="stable")
        cand_key, cand_y = cand_key[order], y_rank[cand][order]
        if len(run_key) and len(cand_key):
            beaten = _staircase_dominates(cand_key, cand_y, run_key, run_y, span)
            run_key, run_y = run_key[~beaten], run_y[~beaten]
        run_key, run_y = np.concatenate([run_key, cand_key]), np.concatenate([run_y, cand_y])
        order = np.argsort(run_key, kind="stable")   # two sorted runs: a merge
        run_key, run_y = run_key[order], run_y[order]
    return keep


def _staircase_dominates(front_key: np.ndarray, front_y: np.ndarray, key: np.ndarray, y: np.ndarray,
                         span: int) -> np.ndarray:
    """True where a point (group * span + x, y) is weakly dominated by the 2-D fronts `front_key`, `front_y`
    (sorted by key; along a group's front y falls as x grows, so the last front point at or left of x has
    the least y of those that could dominate)."""
    pos = np.maximum(np.searchsorted(front_key, key, side="right") - 1, 0)
    same_group = (front_key[pos] <= key) & (front_key[pos] // span == key // span)
    return same_group & (front_y[pos] <= y)


def hypervolume_2d(points: np.ndarray, reference: tuple[float, float]) -> float:
    """Area dominated by `points` (n, 2) and bounded by `reference` (both objectives minimised)."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    inside = np.all(points < np.asarray(reference), axis=1)
    front = points[inside]
    if len(front) == 0:
        return 0.0
    front = front[nondominated(front)]
    front = front[np.argsort(front[:, 0])]
    widths = np.diff(np.append(front[:, 0], reference[0]))
    return float(np.sum(widths * (reference[1] - np.minimum.accumulate(front[:, 1]))))


def hypervolume_3d(points: np.ndarray, reference: tuple[float, float, float]) -> float:
    """Volume dominated by `points` (n, 3) and bounded by `reference`: slices along the third objective."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    front = points[np.all(points < np.asarray(reference), axis=1)]
    if len(front) == 0:
        return 0.0
    front = front[nondominated(front)]
    levels = np.unique(front[:, 2])
    bounds = np.append(levels[1:], reference[2])
    return float(sum(hypervolume_2d(front[front[:, 2] <= z][:, :2], reference[:2]) * (top - z)
                     for z, top in zip(levels, bounds)))
