"""Full-batch L-BFGS for the linear student: the distillation (or label) loss, a mean over the
texts, plus ``l2 * ||W||^2 / n``; a smooth convex problem solved to a gradient tolerance, so
the result depends on neither a learning rate, an epoch count nor the text order."""

from __future__ import annotations

import math
import warnings
from typing import Callable, NamedTuple

import torch

from ..config import DistillConfig
from ..losses import compute_loss
from ..utils import emit
from .featurize import FeatureBatch
from .targets import ConvergenceWarning, DevSet, Targets, output_parts

__all__ = ["LbfgsProblem", "fit_lbfgs"]

LBFGS_ROUND = 25  # L-BFGS iterations per history entry / progress event
# torch's default max_eval (1.25 x max_iter) ends a round early whenever strong-Wolfe line
# searches need more than one evaluation per iteration; give them room, so that a round ends
# at its iteration count, on the gradient test, or on a stalled objective.
LBFGS_EVALS_PER_ITER = 4
# Converged when max |gradient| of the penalised mean objective is at most this (the
# objective is a mean over texts, as in scikit-learn's LogisticRegression, whose lbfgs gtol
# is its tol = 1e-4) ...
LBFGS_GRAD_TOL = 1e-4
# A whole round that moved the objective by less than float32 can resolve ends the fit as
# stalled (reported unconverged unless the gradient test passes).
LBFGS_REL_CHANGE = 1e-7


class LbfgsProblem(NamedTuple):
    """What L-BFGS fits for one student (its ``_lbfgs_problem(module, matrix)``): the
    ``parameters``, ``logits(block, rows)`` of one row block of the design (the texts ``rows``), the
    un-normalised ``penalty()`` (divided by the number of texts here), and ``sync()``, which
    writes the parameters into the module after every round (a no-op where the module's own
    parameters are fitted)."""

    parameters: list
    logits: Callable[[torch.Tensor, slice], torch.Tensor]
    penalty: Callable[[], torch.Tensor]
    sync: Callable[[], None]


def fit_lbfgs(student, features: FeatureBatch, targets: Targets, distill: DistillConfig, dev: DevSet,
              progress, device) -> tuple[list[dict], bool]:
    """Fit ``student.module_`` with L-BFGS in rounds of ``LBFGS_ROUND`` iterations (one
    ``history_`` entry and one progress event each) until converged or ``config.max_iter``.

    Each history record holds the objective at the round's end point, its parts, the
    iterations so far, ``grad_max`` (max |gradient| there) and ``converged``; the progress
    events carry ``converged`` too. Reaching ``max_iter`` unconverged warns with a
    :class:`ConvergenceWarning`. Returns ``(history, converged)``.
    """
    config = student.config
    n_texts, n_features = features.n_texts, student.featurizer_.n_features
    # The design in row blocks: one block in memory, or a memory-mapped design (train_stream.py).
    design = features if hasattr(features, "blocks") else _WholeDesign(_csr_matrix(features, n_features, device))
    module = student._build_module(n_features, targets.n_classes).to(device)
    student.module_ = module
    # A student whose problem needs the whole design at once (aug_linear whitens over all texts)
    # gets it; from a memory-mapped design it gets None and must refuse.
    problem = student._lbfgs_problem(module, design.matrix if isinstance(design, _WholeDesign) else None)
    first = problem.parameters[0]
    optimizer = torch.optim.LBFGS(problem.parameters, lr=1.0, max_iter=LBFGS_ROUND, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=LBFGS_GRAD_TOL,
                                  tolerance_change=1e-10)
    last_parts: dict[str, float] = {}
    closure = _objective(optimizer, design, problem, targets, distill, n_texts, device, last_parts)

    history: list[dict] = []
    rounds = max(1, math.ceil(config.max_iter / LBFGS_ROUND))  # the progress bar's length
    previous, converged, done = None, False, 0
    while done < config.max_iter and not converged:
        budget = min(LBFGS_ROUND, config.max_iter - done)
        optimizer.param_groups[0].update(max_iter=budget, max_eval=budget * LBFGS_EVALS_PER_ITER)
        module.train()
        optimizer.step(closure)
        # One more evaluation at the point the round ended on: the line search's last
        # evaluation may lie elsewhere, and the convergence test needs this point's gradient.
        loss = float(closure().detach())
        grad_max = max(float(p.grad.abs().max()) for p in problem.parameters if p.numel())
        problem.sync()
        module.eval()
        stalled = optimizer.state[first].get("n_iter", 0) == done  # no iteration was possible
        done = optimizer.state[first].get("n_iter", 0)
        # Only the gradient test says converged; a round that no longer moves the objective (float32
        # resolution) ends the fit too, but is reported as what it is: stalled, not converged.
        converged = grad_max <= LBFGS_GRAD_TOL
        stalled = stalled or (previous is not None and
                              abs(previous - loss) <= LBFGS_REL_CHANGE * max(abs(previous), abs(loss), 1.0))
        record = {"epoch": len(history) + 1, "loss": loss, "parts": dict(last_parts), "iterations": done,
                  "grad_max": grad_max, "converged": converged, **dev.metrics(student)}
        history.append(record)
        step = rounds if converged else min(len(history), rounds)  # a converged fit fills its progress bar
        emit(progress, stage="student_fit", student=student.name, epoch=len(history), step=step,
             total=rounds, loss=loss, dev_accuracy=record.get("dev_accuracy"), converged=converged)
        if stalled and not converged:
            break
        previous = loss
    optimizer.zero_grad(set_to_none=True)
    if not converged:
        _warn_unconverged(student, done, config.max_iter, history[-1]["grad_max"])
    return history, converged


def _objective(optimizer, design, problem: LbfgsProblem, targets: Targets, distill: DistillConfig, n_texts: int,
               device, last_parts: dict) -> Callable[[], torch.Tensor]:
    """The closure L-BFGS evaluates: the penalised mean objective and its gradient, block by block; the
    loss's parts at the point evaluated are left in ``last_parts``."""

    def closure():
        # The objective is a mean over texts: each block's mean loss counts by its share of the
        # texts, and its gradient is accumulated block by block (one block: exactly the full batch).
        optimizer.zero_grad(set_to_none=True)
        objective, logged_sum = 0.0, {}
        for matrix, rows, last in design.blocks(device):
            share = (rows.stop - rows.start) / n_texts
            parts = output_parts(problem.logits(matrix, rows), _rows(targets.teacher, rows),
                                 _rows(targets.gold, rows), distill, targets.weights)
            total, logged = compute_loss(parts, {k: targets.weights[k] for k in parts})
            if share != 1.0:
                total = total * share
            if last:
                total = total + problem.penalty() / n_texts
            total.backward()
            objective = objective + total.detach()
            for key, value in logged.items():
                logged_sum[key] = logged_sum.get(key, 0.0) + value * share
        last_parts.clear()
        last_parts.update(logged_sum)
        return objective

    return closure


def _warn_unconverged(student, done: int, max_iter: int, grad_max: float) -> None:
    why = (f"stalled after {done} iterations (the objective stopped changing)" if done < max_iter else
           f"stopped at max_iter={max_iter}")
    warnings.warn(ConvergenceWarning(
        f"L-BFGS for student {student.name!r} {why} before converging (max |gradient| "
        f"{grad_max:.2g} > {LBFGS_GRAD_TOL:g}); raise max_iter or l2."), stacklevel=5)


class _WholeDesign:
    """The in-memory design as a single block."""

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix

    def blocks(self, device):
        yield self.matrix, slice(0, self.matrix.shape[0]), True


def _rows(tensor: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
    if tensor is None or (rows.start == 0 and rows.stop == tensor.shape[0]):
        return tensor
    return tensor[rows]


def _csr_matrix(features: FeatureBatch, n_features: int, device) -> torch.Tensor:
    """The transfer set as one sparse ``[n_texts, n_features]`` matrix (full-batch logits)."""
    crow = torch.cat([features.offsets, torch.tensor([features.indices.numel()])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, features.indices, features.values, (features.n_texts, n_features),
                                       device=device)
