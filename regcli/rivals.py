"""Rival alignments of a result: the measure ``rival_gap`` of :mod:`regcli.quality`.

The global search scored many candidate poses (:class:`regcli.search.SearchOutcome`); a
result is in doubt when one of them, elsewhere, is about as good or better under the
registration's own metric.  Without a search (``init="none"``, a given matrix), the result
turned by quarter turns, each with its best shift, stands in for it.  A ``rotation`` result
(one centre of rotation) is also held against a rigid search (:func:`richer_gap`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MIN_GAP", "richer_gap", "search_rivals"]

#: A search candidate is a rival when it moves the image this far from the solution (mean
#: displacement, coarse pixels) and lies in another basin, or far along a flat ridge with
#: it: the cost half-way rises by BARRIER (of the median rival's excess) above both, or stays
#: within BARRIER of the solution's.  At most RIVALS_CHECKED rivals are checked.
FAR_PIXELS = 2.0
BARRIER = 0.05
#: A ridge rival lies at least this fraction of the image's diagonal away.
RIDGE_FRACTION = 0.1
RIVALS_CHECKED = 3
#: Rivals of the search compared under the metric: those whose Fisher z is at least KEEP_Z
#: of the best one (for "better"), or NEAR_Z of the solution's (for "as good").
KEEP_Z = 0.5
NEAR_Z = 0.8

#: A rival gap below this (or below minus it) makes the result ambiguous (or wrong).
MIN_GAP = 0.1


def search_rivals(evidence) -> dict:
    """The best candidate of the search that lies elsewhere, against the solution (of
    ``evidence``, a :class:`regcli.quality.Evidence`), under the
    registration's metric: ``(rival cost - solution cost) / (median - solution cost)`` of
    the candidates elsewhere (1: the rival is a typical wrong pose; 0: as good as the
    solution; < 0: better)."""
    outcome = evidence.search
    if outcome is None:
        outcome = _turn_search(evidence)
        if outcome is None:
            return {}
    pair = outcome.pair
    solution = pair.to_coarse(evidence.matrix)
    costs, z, _ = outcome.rank(solution[None])
    cost, z_sol = float(costs[0]), float(z[0])
    distance = _displacements(outcome.candidates, solution, pair.fixed.shape)
    usable = (distance > FAR_PIXELS) & np.isfinite(outcome.costs)
    if not math.isfinite(cost) or np.count_nonzero(usable) < 1:
        return {}
    far_costs, far_z = outcome.costs[usable], outcome.z[usable]
    scale = float(np.median(far_costs)) - cost
    if scale <= 1e-12:
        return {"search_gap": math.nan, "search_cost": cost}
    gaps = (far_costs - cost) / scale
    # A rival better under the metric counts if it correlates at least half as well as the
    # best (as the search's own choice); an equal one only if it correlates nearly as well
    # as the solution (a wrong scale at the right angle is worse, not equal).
    top = max(z_sol, float(far_z.max()))
    better = gaps[far_z >= KEEP_Z * top] if top > 0 else gaps
    if better.size and float(better.min()) < 0:
        return {"search_gap": float(better.min()), "search_cost": cost}
    near = far_z >= NEAR_Z * z_sol if z_sol > 0 else np.ones(far_z.size, bool)
    candidates = outcome.candidates[usable][near]
    distant = distance[usable][near] > RIDGE_FRACTION * math.hypot(*pair.fixed.shape)
    gap = math.inf
    for k in np.argsort(gaps[near])[:RIVALS_CHECKED]:
        if gaps[near][k] >= MIN_GAP:
            break
        # A rival in another basin (the cost rises between them), or far along a flat ridge
        # with the solution (a symmetric object turns freely); not a worse point of the same
        # basin (a slightly wrong scale or angle).
        middle = float(outcome.rank(((solution + candidates[k]) / 2.0)[None])[0][0])
        rise = (middle - max(cost, cost + gaps[near][k] * scale)) / scale
        flat = distant[k] and abs(middle - cost) / scale < BARRIER and gaps[near][k] < BARRIER
        if rise > BARRIER or flat:
            gap = min(gap, float(gaps[near][k]))
    return {"search_gap": gap, "search_cost": cost}


def _displacements(matrices: np.ndarray, reference: np.ndarray, shape) -> np.ndarray:
    """Mean distance (pixels of ``shape``) between where each matrix and ``reference`` send
    the image's corners and centre: a cheap :func:`~regcli.transforms.mean_displacement`."""
    rows, cols = shape
    points = np.array(
        [
            [0, 0, 1],
            [cols - 1, 0, 1],
            [0, rows - 1, 1],
            [cols - 1, rows - 1, 1],
            [(cols - 1) / 2, (rows - 1) / 2, 1],
        ],
        dtype=float,
    )
    moved = np.einsum("nij,pj->npi", np.asarray(matrices) - reference, points)[..., :2]
    return np.hypot(moved[..., 0], moved[..., 1]).mean(axis=1)


def _turn_search(evidence):
    """Without a global search: the solution turned by quarter turns about the overlap's
    centre, each with its best shift, scored by the metric (a small search of rivals)."""
    from regcli import search

    fixed, moving = evidence.fixed_levels[0], evidence.moving_levels[0]
    level = search.whole_halvings(max(max(fixed.shape) / search.SEARCH_SIZE, 1.0))
    coarse = None
    if level is not None and level < len(evidence.fixed_levels):
        coarse = (evidence.fixed_levels[level], evidence.moving_levels[level])
    spacings = getattr(evidence.family, "spacings", None)
    if spacings is not None:  # square physical pixels: quarter turns are quarter turns
        pair = search.physical_coarse_pair(
            fixed, moving, spacings, search.SEARCH_SIZE, evidence.domains
        )
    else:
        pair = search.coarse_pair(fixed, moving, search.SEARCH_SIZE, coarse, evidence.domains)
    solution = pair.to_coarse(evidence.matrix)
    linear = solution[:2, :2]
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])
    turns = [linear @ np.linalg.matrix_power(quarter, k) for k in range(4)]
    rank = search.ranking(evidence.metric, evidence.metric_options, pair)
    candidates = search.shift_candidates(
        pair, np.array(turns), search.shift_features(evidence.metric)
    )
    costs, z, covered = rank(candidates)
    return search.SearchOutcome(pair, solution, candidates, costs, z, covered, rank)


#: The families whose results are checked against a richer family's search: a rotation turns
#: about one given point only (the top-left corner by default, as in the course).  (A
#: translation is not checked: on the 64 px level a small object vanishes, and a correct shift
#: of a 5x5 square was beaten there by a chance pose.)
RICHER = {"rotation": "rigid"}
#: A richer pose counts only over at least this fraction of the solution's overlap.
KEEP_OVERLAP = 0.5
#: Degrees between the whole-circle rotations of that search (as the search's default).
RICHER_STEP_DEG = 10.0


def richer_gap(evidence) -> dict:
    """For a result of a family in :data:`RICHER`, the global search of the richer family on
    the search's coarse pair: ``(best richer cost - solution cost) / (its median - its
    best)`` when the best richer pose lies elsewhere and correlates at least as well over at
    least half the overlap.  Clearly below zero: the images moved in a way the family cannot
    follow (a slice turned about its middle, under ``rotation`` about the top-left corner;
    the local model-fit test cannot see a move that far)."""
    outcome = evidence.search
    richer = RICHER.get(evidence.family.name)
    if outcome is None or richer is None:
        return {}
    from regcli import search
    from regcli.transforms import make_transform

    pair, rank = outcome.pair, outcome.rank
    family = make_transform(richer, shape=pair.fixed.shape)
    found = search.run_search(
        pair, family, evidence.metric, rank, step=math.radians(RICHER_STEP_DEG)
    )
    solution = pair.to_coarse(evidence.matrix)
    (cost,), (z_solution,), (covered,) = rank(solution[None])
    (best,), (z_best,), (covered_best,) = rank(found.best[None])
    # A candidate over blank background alone has a lower cost and means nothing.
    if not (z_best >= z_solution and covered_best >= KEEP_OVERLAP * covered):
        return {}
    cost, best = float(cost), float(best)
    # In units of the richer search's own contrast (its typical candidate against its best):
    # the solution may even be worse than that typical candidate.
    scale = float(np.median(found.costs[np.isfinite(found.costs)])) - best
    far = _displacements(found.best[None], solution, pair.fixed.shape)[0] > FAR_PIXELS
    if not (math.isfinite(cost) and math.isfinite(best) and scale > 1e-12 and far):
        return {}
    return {"richer_gap": (best - cost) / scale, "richer_family": richer}
