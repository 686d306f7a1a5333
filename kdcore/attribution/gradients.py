"""Integrated gradients and gradient x input on the teacher's word embeddings.

Captum ``IntegratedGradients`` / ``InputXGradient`` on the word-embedding output, fed to
the model as ``inputs_embeds`` (with the real attention mask and token type ids). This is
exactly ``LayerIntegratedGradients`` on ``model.get_input_embeddings()`` (a test checks
they agree) but registers no hook on the model, so a teacher shared between threads (a
dashboard) keeps predicting correctly while it is being explained. The baseline keeps
[CLS] and [SEP] and puts [PAD] (``baseline="pad"``, or ``"unk"`` / ``"mask"``) at every
other position. Gradient x input has no baseline: gradient of the target logit times the
embedding. A wordpiece's attribution is the sum over the embedding dimension; wordpieces
are summed into the word whose character span contains the wordpiece's start offset.

Integrated-gradients convergence (``run_ig``, also used for the students)
    The convergence delta (Captum's definition) is ``sum(attributions) - (f(x) -
    f(baseline))``, f(x) and f(baseline) taken from kd-lens's own forward pass. It is
    flagged in ``Explanation.warnings`` when ``|delta| > max(delta_atol, delta_rtol *
    |f(x) - f(baseline)|)`` (defaults 0.01 logit and 5%). ``n_steps="auto"`` climbs the
    nested Clenshaw–Curtis rules of ``IG_STEP_LADDER`` (9, 17, 33, ... points, each level
    evaluating only the points the one before lacks; see :mod:`.ig_auto`) until the delta
    is within that tolerance, and says how many points it took in the warnings.

Long texts
    A text longer than one window is explained window by window, the windows in groups that
    fill one ``internal_batch_size`` batch (:func:`window_groups`), with a ``progress(done,
    total)`` call after each group; each wordpiece's attribution is taken from the window in which it
    is most central (farthest from the window's edges, where it has the most context),
    and a warning says "explained in N windows". Completeness then holds per window,
    not for the averaged logits of the whole text.
"""

from __future__ import annotations

import bisect
import inspect

import numpy as np
import torch

from ..explanation import Explanation
from ..metrics import softmax as _softmax
from ..words import Word
from .common import _empty, eval_mode, model_lock, _record, resolve_target
from .ig_auto import AUTO_LEVELS, nested_integrated_gradients

IG_STEP_LADDER = AUTO_LEVELS  # the point counts n_steps="auto" climbs through


def _tolerance(gap: torch.Tensor, opts: dict) -> torch.Tensor:
    return torch.clamp(gap.abs() * float(opts["delta_rtol"]), min=float(opts["delta_atol"]))


def run_ig(ig, inputs: torch.Tensor, baselines: torch.Tensor, target: int, extra, gap: torch.Tensor, opts: dict,
            warnings: list[str], lengths=None, reduce=None) -> tuple[torch.Tensor, float]:
    """Integrated gradients with the fixed or automatic step count; flags a high delta.

    A fixed ``n_steps`` runs Captum's ``IntegratedGradients`` with ``opts["ig_method"]``;
    ``"auto"`` runs :func:`.ig_auto.nested_integrated_gradients` on ``ig``'s forward function
    (``lengths``: each example's unpadded length; ``reduce``: applied to each point's
    attributions, whose shape it may shrink; the caller sums the last dimension anyway).
    ``gap`` = f(x) - f(baseline) per example, from the forward pass made anyway for the
    probabilities. The convergence delta is Captum's, ``sum(attributions) - gap`` per
    example, computed from that gap rather than by ``return_convergence_delta=True``,
    which would run the model on the inputs and baselines a second time.
    """
    attributions, delta, steps = ig_points(ig, inputs, baselines, target, extra, gap, opts, lengths, reduce)
    return attributions, ig_warnings(delta, gap, steps, opts, warnings)


def ig_points(ig, inputs, baselines, target: int, extra, gap: torch.Tensor, opts: dict, lengths=None,
              reduce=None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(attributions, delta per example, steps taken): :func:`run_ig` without the warnings."""
    gap = gap.double().cpu()
    if opts["n_steps"] == "auto":
        return nested_integrated_gradients(ig.forward_func, inputs, baselines, target, extra, gap,
                                           _tolerance(gap, opts), int(opts["internal_batch_size"]),
                                           lengths=lengths, reduce=reduce)
    steps = int(opts["n_steps"])
    attributions = ig.attribute(inputs, baselines=baselines, target=target, additional_forward_args=extra,
                                n_steps=steps, method=opts["ig_method"],
                                internal_batch_size=max(int(opts["internal_batch_size"]), inputs.shape[0]))
    totals = attributions.detach().reshape(attributions.shape[0], -1).double().sum(1).cpu()
    return attributions, totals - gap, steps


def ig_warnings(delta: torch.Tensor, gap: torch.Tensor, steps: int, opts: dict, warnings: list[str]) -> float:
    """Append the step count chosen (``n_steps="auto"``) and a flag for the worst example whose
    ``|delta|`` exceeds the tolerance; returns that example's (signed) delta."""
    gap = gap.double().cpu()
    tolerance = _tolerance(gap, opts)
    if opts["n_steps"] == "auto":
        warnings.append(f"integrated gradients: n_steps={steps} chosen automatically (the fewest Clenshaw–Curtis "
                        f"points of {list(IG_STEP_LADDER)} within the delta tolerance; each level reuses the "
                        "points of the one before)")
    worst = int(delta.abs().argmax())
    delta_value = float(delta[worst])
    if abs(delta_value) > float(tolerance[worst]):
        warnings.append(
            f"integrated gradients did not converge: |delta| = {abs(delta_value):.4g} exceeds the tolerance "
            f"{float(tolerance[worst]):.4g} (max of {opts['delta_atol']} and {opts['delta_rtol']:.0%} of "
            f"|f(x) - f(baseline)| = {abs(float(gap[worst])):.4g}) at n_steps={steps}; raise n_steps or use "
            "n_steps='auto'")
    return delta_value


def _window_starts(teacher, text: str, windows: list[dict]) -> list[int]:
    """Position in the text's wordpiece sequence of each window's first body token."""
    if len(windows) == 1:
        return [0]
    # verbose=False: a text longer than the model's window is expected here (it is windowed).
    encoded = teacher.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                return_attention_mask=False, return_token_type_ids=False, verbose=False)
    full = list(zip(encoded["input_ids"], map(tuple, encoded["offset_mapping"])))
    starts, position = [], 0
    for window in windows:
        body = list(zip(window["input_ids"][1:-1], map(tuple, window["offsets"][1:-1])))
        found = None
        for candidate in range(position, len(full) - len(body) + 1):
            if full[candidate:candidate + len(body)] == body:
                found = candidate
                break
        if found is None:  # not expected: windows are slices of the text's wordpieces
            raise RuntimeError("A teacher window is not a slice of the text's wordpieces; cannot place it.")
        starts.append(found)
        position = found
    return starts


def _teacher_token_scores(windows: list[dict], starts: list[int], window_scores: np.ndarray):
    """Per wordpiece of the text: (start offset, score), each from its most central window."""
    best: dict[int, tuple[int, float, int]] = {}  # global position -> (centrality, score, start offset)
    for k, (window, start) in enumerate(zip(windows, starts)):
        body_len = len(window["input_ids"]) - 2
        for j in range(body_len):
            position = start + j
            centrality = min(j, body_len - 1 - j)
            if position not in best or centrality > best[position][0]:
                best[position] = (centrality, float(window_scores[k, j + 1]), window["offsets"][j + 1][0])
    return [(best[p][2], best[p][1]) for p in sorted(best)]


def _tokens_to_words(words: list[Word], token_scores: list[tuple[int, float]]) -> tuple[np.ndarray, int]:
    starts = [w.start for w in words]
    scores = np.zeros(len(words), dtype=np.float64)
    orphans = 0
    for offset, score in token_scores:
        index = bisect.bisect_right(starts, offset) - 1
        if index >= 0 and offset < words[index].end:
            scores[index] += score
        else:
            orphans += 1
    return scores, orphans


def teacher_tensors(teacher, windows: list[dict], baseline: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The windows' input ids, baseline ids and attention mask, padded to one width, on the teacher's device."""
    tokenizer = teacher.tokenizer
    n_windows = len(windows)
    width = max(len(w["input_ids"]) for w in windows)
    pad_id = tokenizer.pad_token_id
    baseline_id = {"pad": pad_id, "unk": tokenizer.unk_token_id, "mask": tokenizer.mask_token_id}[baseline]
    if baseline_id is None:
        raise ValueError(f"The teacher's tokenizer has no {baseline} token; use baseline='pad'.")
    input_ids = torch.full((n_windows, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n_windows, width), dtype=torch.long)
    baseline_ids = input_ids.clone()
    for row, window in enumerate(windows):
        ids = window["input_ids"]
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        baseline_ids[row, :len(ids)] = baseline_id
        baseline_ids[row, 0], baseline_ids[row, len(ids) - 1] = ids[0], ids[-1]  # keep [CLS] / [SEP]
    device = teacher.device
    return input_ids.to(device), baseline_ids.to(device), attention.to(device)


def window_groups(n_windows: int, opts: dict, method: str = "integrated_gradients") -> list[list[int]]:
    """The teacher's windows in the groups explained together: as many windows as fill one
    ``internal_batch_size`` batch of rows (an IG interpolation point or, for gradient x input, a
    window is a row; at least one window), so grouping costs no throughput and a long text
    reports its progress group by group."""
    if method != "integrated_gradients":
        steps = 1
    else:
        steps = IG_STEP_LADDER[0] if opts["n_steps"] == "auto" else int(opts["n_steps"])
    size = max(1, int(opts["internal_batch_size"]) // steps)
    return [list(range(i, min(i + size, n_windows))) for i in range(0, n_windows, size)]


def _explain_teacher_gradient(teacher, text: str, words: list[Word], method: str, target, opts: dict,
                              progress=None) -> Explanation:
    from captum.attr import InputXGradient, IntegratedGradients

    model = teacher.model
    windows = teacher.encode_windows(text)
    n_windows = len(windows)
    input_ids, baseline_ids, attention = teacher_tensors(teacher, windows, opts["baseline"])
    token_types = torch.zeros_like(input_ids)
    embeddings = model.get_input_embeddings()

    # DistilBERT-style models take no token type ids; BERT and RoBERTa get explicit zeros.
    takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    def forward(inputs_embeds, attention_mask, token_type_ids):
        extra_inputs = {"token_type_ids": token_type_ids} if takes_token_types else {}
        out = model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **extra_inputs)
        return out.logits.float()

    warnings: list[str] = []
    delta_value = None
    with model_lock(teacher), eval_mode(model):
        with torch.no_grad():
            input_embeds = embeddings(input_ids).detach()
            baseline_embeds = embeddings(baseline_ids).detach()
            logits = forward(torch.cat([input_embeds, baseline_embeds]), torch.cat([attention, attention]),
                             torch.cat([token_types, token_types]))
        window_logits, baseline_logits = logits[:n_windows], logits[n_windows:]
        # The text's prediction averages its windows' logits, as Teacher.predict_logits does.
        text_logits = window_logits.mean(0).double().cpu().numpy()
        probs = _softmax(text_logits)
        target = resolve_target(teacher, target, probs)
        if not words:
            return _empty(text, target, probs, method, teacher)
        gap = (window_logits[:, target] - baseline_logits[:, target]).double().cpu()
        window_scores = np.zeros(tuple(input_ids.shape), dtype=np.float64)
        deltas, steps_taken, done = torch.zeros(n_windows, dtype=torch.float64), 0, 0
        if progress is not None:
            progress(0, n_windows)
        for rows in window_groups(n_windows, opts, method):
            width = int(attention[rows].sum(1).max())  # the group's own width: no padding past its longest window
            x, x0 = input_embeds[rows, :width], baseline_embeds[rows, :width]
            extra = (attention[rows, :width], token_types[rows, :width])
            if method == "integrated_gradients":
                attributions, deltas[rows], steps = ig_points(
                    IntegratedGradients(forward), x, x0, target, extra, gap[rows], opts,
                    lengths=extra[0].sum(1).tolist(), reduce=lambda a: a.sum(-1, keepdim=True))
                steps_taken = max(steps_taken, steps)
            else:
                attributions = InputXGradient(forward).attribute(x.clone().requires_grad_(), target=target,
                                                                 additional_forward_args=extra)
            window_scores[rows, :width] = attributions.detach().sum(-1).double().cpu().numpy()
            done += len(rows)
            if progress is not None:
                progress(done, n_windows)
        if method == "integrated_gradients":
            delta_value = ig_warnings(deltas, gap, steps_taken, opts, warnings)
    starts = _window_starts(teacher, text, windows)
    scores, orphans = _tokens_to_words(words, _teacher_token_scores(windows, starts, window_scores))
    if n_windows > 1:
        warnings.append(f"explained in {n_windows} windows (each wordpiece scored in the window where it is most central)")
    if orphans:
        warnings.append(f"{orphans} wordpiece(s) lay outside every word and were left out")
    return _record(text, words, scores, target, probs, method, teacher, delta_value, warnings)
