"""The one fine-tuning loop both teacher heads share: AdamW with linear warm-up and decay, dev
evaluation with early stopping and the best weights kept, and checkpoints to resume from."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import accel
from ..utils import ProgressFn, atomic_directory, atomic_write_json, emit

__all__ = ["FineTuning"]

logger = logging.getLogger(__name__)


class FineTuning:
    """The training half of :class:`~kdcore.teacher.Teacher` (a mixin: a head's ``fit`` builds its batches and
    its dev score and hands them to :meth:`_train_loop`)."""

    def _train_loop(self, steps_per_epoch: int, total_steps: int, orders: list[np.ndarray], batch,
                    dev_score, score_name: str, progress: ProgressFn | None = None,
                    checkpoint_dir: str | os.PathLike | None = None) -> dict:
        """The fine-tuning loop both heads share: ``batch(indices) -> (input ids, attention mask, labels)`` on the
        CPU, one AdamW step per batch in the seeded ``orders``; every ``config.eval_every`` steps (and at the last)
        ``dev_score()`` (None: no dev evaluation), recorded under ``score_name``, keeps the best weights and stops
        after ``config.patience`` evaluations without improvement. With a ``checkpoint_dir`` the state is saved at
        every evaluation and resumed from it. Leaves the best weights loaded, ``history_`` set, and returns the
        state (``step``, ``best_score``, ``bad_evals``, ``history``)."""
        cfg = self.config
        optimizer, scheduler = self._optimizer(total_steps)
        state = {"step": 0, "best_score": -1.0, "bad_evals": 0, "history": []}
        best_weights = None
        ckpt = Path(checkpoint_dir) if checkpoint_dir else None
        if ckpt is not None and (ckpt / "trainer_state.json").is_file():
            state, best_weights = self._load_checkpoint(ckpt, optimizer, scheduler)
            emit(progress, stage="teacher_fit", step=state["step"], total=total_steps, resumed=True)

        self.model.train()
        self._fingerprint = None
        started = time.time()
        while state["step"] < total_steps and state["bad_evals"] <= cfg.patience:
            step = state["step"]
            epoch, within = divmod(step, steps_per_epoch)
            chosen = orders[epoch][within * cfg.batch_size:(within + 1) * cfg.batch_size]
            input_ids, attention, target = batch(chosen)
            with self._autocast():
                out = self.model(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                 labels=target.to(self.device))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] = step + 1
            record = {"step": state["step"], "loss": float(out.loss.detach()), "lr": scheduler.get_last_lr()[0]}
            is_eval = state["step"] % cfg.eval_every == 0 or state["step"] == total_steps
            if is_eval and dev_score is not None:
                self.model.eval()
                self._fingerprint = None
                score = dev_score()
                self.model.train()
                record[score_name] = score
                if score > state["best_score"]:
                    state["best_score"], state["bad_evals"] = score, 0
                    best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                else:
                    state["bad_evals"] += 1
            state["history"].append(record)
            emit(progress, stage="teacher_fit", step=state["step"], total=total_steps, loss=record["loss"],
                 elapsed=time.time() - started, **{score_name: record.get(score_name)})
            if is_eval and ckpt is not None:
                self._save_checkpoint(ckpt, state, optimizer, scheduler, best_weights)
        if best_weights is not None:
            self.model.load_state_dict(best_weights)
        self.model.eval()
        self._fingerprint = None
        self.history_ = state["history"]
        return state

    def _training_plan(self, lengths: Sequence[int]) -> tuple[int, int, list[np.ndarray]]:
        """``(steps per epoch, total steps, one seeded order of the examples per epoch)`` of a fine-tuning run over
        examples of ``lengths`` tokens (:meth:`TeacherConfig.planned_steps`); with ``config.length_grouped`` each
        order's batches hold examples of similar length (:func:`~kdcore.accel.length_grouped_order`: batches are
        padded to their longest example, so sorted groups waste little). Seeds torch with ``config.seed``."""
        cfg = self.config
        n_examples = len(lengths)
        steps_per_epoch = math.ceil(n_examples / cfg.batch_size)
        total_steps = cfg.planned_steps(n_examples)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        orders = [rng.permutation(n_examples) for _ in range(math.ceil(total_steps / max(steps_per_epoch, 1)))]
        if cfg.length_grouped:
            grouping = np.random.default_rng(cfg.seed + 1)
            orders = [accel.length_grouped_order(o, lengths, cfg.batch_size, grouping) for o in orders]
        return steps_per_epoch, total_steps, orders

    def _optimizer(self, total_steps: int):
        """AdamW (no weight decay on biases and norms) with linear warm-up and decay over ``total_steps``."""
        from transformers import get_linear_schedule_with_warmup

        cfg = self.config
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        groups = [
            {"params": [p for n, p in self.model.named_parameters() if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
            {"params": [p for n, p in self.model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
        return optimizer, get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)

    def _save_checkpoint(self, ckpt: Path, state: dict, optimizer, scheduler, best_weights) -> None:
        """The fine-tuning state, as one folder replaced whole (a kill leaves the previous one): weights, best
        weights, optimizer, scheduler and random number generators (a resumed run then draws the same dropout)."""
        from safetensors.torch import save_file

        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        with atomic_directory(ckpt) as tmp:
            save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(tmp / "model.safetensors"))
            if best_weights is not None:
                save_file({k: v.contiguous() for k, v in best_weights.items()}, str(tmp / "best.safetensors"))
            # Optimizer state is tensors and numbers only; it is read back with weights_only=True.
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
                       tmp / "optim.pt")
            atomic_write_json(tmp / "trainer_state.json", state)

    def _load_checkpoint(self, ckpt: Path, optimizer, scheduler):
        import json

        from safetensors.torch import load_file

        state = json.loads((ckpt / "trainer_state.json").read_text())
        self.model.load_state_dict(load_file(str(ckpt / "model.safetensors"), device=str(self.device)))
        best = load_file(str(ckpt / "best.safetensors"), device=str(self.device)) if (ckpt / "best.safetensors").is_file() else None
        optim_state = torch.load(ckpt / "optim.pt", weights_only=True, map_location=self.device)
        optimizer.load_state_dict(optim_state["optimizer"])
        scheduler.load_state_dict(optim_state["scheduler"])
        rng = optim_state.get("rng") or {}
        if "cpu" in rng:
            torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        logger.info("Resumed teacher fine-tuning at step %d from %s", state["step"], ckpt)
        return state, best
