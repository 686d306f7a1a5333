"""The trainers of the students: ``fit_student`` prepares the targets and the featurized
transfer set and hands them to one of two solvers: full-batch L-BFGS for the convex linear
student (train_lbfgs.py), mini-batch Adam, lazy on the feature table, for everything else
(train_adam.py). ``Student.fit`` delegates here."""

from __future__ import annotations

import torch

from ..config import LINEAR_KINDS, DistillConfig, StudentConfig
from .tables import _AttrTable
from .targets import ConvergenceWarning, DevSet, prepare_targets
from .train_adam import fit_adam
from .train_lbfgs import fit_lbfgs

__all__ = ["ConvergenceWarning", "choose_solver", "finish_fit", "fit_student"]


def fit_student(student, texts, teacher_logits=None, labels=None, *, label_names=None,
                distill: DistillConfig | None = None, teacher_hidden=None, teacher_attributions=None,
                dev_texts=None, dev_labels=None, progress=None, device=None) -> None:
    """Train ``student`` in place (see :meth:`kdcore.students.Student.fit` for the arguments).

    Sets ``featurizer_``, ``module_``, ``label_names``, ``history_``, ``n_nonzero_`` and
    ``converged_``.
    """
    config: StudentConfig = student.config
    distill = distill if distill is not None else DistillConfig()
    texts = student._check_inputs(texts)
    if not texts:
        raise ValueError("fit needs at least one text.")
    targets = prepare_targets(student, len(texts), teacher_logits, labels, label_names, distill,
                              teacher_hidden, teacher_attributions)
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    featurizer = student._new_featurizer().fit(texts)
    if featurizer.n_features == 0:
        raise ValueError(f"No feature occurs in min_count={config.min_count} texts; lower min_count or give more texts.")
    # Featurize the whole transfer set once; batches are then index gathers.
    features = featurizer.transform(texts)
    student.featurizer_ = featurizer
    student.label_names = targets.label_names
    dev = DevSet(dev_texts, dev_labels)
    if choose_solver(config, targets.attributions is not None) == "lbfgs":
        history, converged = fit_lbfgs(student, features, targets.to(device), distill, dev, progress, device)
    else:
        attr_table = _AttrTable(featurizer, texts, targets.attributions) if targets.attributions is not None else None
        teacher_class = targets.teacher.argmax(dim=1) if targets.teacher is not None else None
        history, converged = fit_adam(student, features, targets.to(device), teacher_class, attr_table, distill,
                                      dev, progress, device)
    finish_fit(student, history, converged)


def finish_fit(student, history: list[dict], converged: bool) -> None:
    """What every trainer does last: eval mode, ``top_k`` pruning, ``history_``, ``converged_``, ``n_nonzero_``."""
    module = student.module_
    module.eval()
    if student.config.top_k > 0:
        student._prune_top_k(module, student.config.top_k)
    student.history_ = history
    student.converged_ = converged
    student.n_nonzero_ = int(torch.count_nonzero(module.bag.weight.detach()))


def choose_solver(config: StudentConfig, use_attr: bool) -> str:
    """``"lbfgs"`` or ``"adam"`` for ``config.solver`` (``auto``: L-BFGS for a linear student
    without l1 or attr_match, whose problem is then smooth and convex; Adam otherwise)."""
    solver = config.solver
    if config.kind == "aug_linear" and use_attr:
        raise ValueError("aug_linear trains with L-BFGS, which takes no attr_match; set distill.attr_match = 0.")
    if solver == "auto":
        return "lbfgs" if config.kind in LINEAR_KINDS and config.l1 == 0 and not use_attr else "adam"
    if solver == "lbfgs" and (config.l1 > 0 or use_attr):
        raise ValueError("solver='lbfgs' takes neither l1 nor attr_match; use solver='adam' (or 'auto') for them.")
    return solver
