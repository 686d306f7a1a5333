"""The RunSpecs of the token task that the CLI builds: the demo's and the one ``distill`` options describe."""

from __future__ import annotations

from ...config import DataSource, DistillConfig, RunSpec, TeacherConfig, default_students
from .evaluate import EXPLAIN_ENTITIES

__all__ = ["token_teacher_config", "token_demo_spec", "token_spec_from_args"]


def token_teacher_config(**overrides):
    """The embedded MiniLM's fine-tuning for token classification: a fresh token head needs more steps and a
    larger step size than the sequence task's. On the WNUT-16 dev split (8 epochs = 376 steps at 2e-4) the
    entity F1 rose to 0.477 at step 250 and fell after it, so the steps are capped at 300."""
    return TeacherConfig(**{"epochs": 8.0, "max_steps": 300, "eval_every": 50, "learning_rate": 2e-4, "batch_size": 32,
                            "patience": 3, **overrides})


def token_demo_spec(name: str, threads: int | None = None, augment_copies: int = 2,
                    explain_sample: int = EXPLAIN_ENTITIES) -> RunSpec:
    """The RunSpec of ``python -m kdcore demo --task ner``: MiniLM fine-tuned on WNUT-16, the token students."""
    return RunSpec(name, task="token", teacher=token_teacher_config(),
                   distill=DistillConfig(augment_copies=augment_copies), explain_sample=explain_sample,
                   threads=threads)


def token_spec_from_args(args, kinds, encoder: bool) -> RunSpec:
    """The token RunSpec ``python -m kdcore distill`` options describe."""
    overrides = {"max_steps": args.teacher_steps} if args.teacher_steps else {}
    epochs = args.teacher_epochs if args.teacher_epochs is not None else (None if encoder else 0.0)
    if epochs is not None:
        overrides["epochs"] = epochs
    if args.text_column or args.label_column:
        raise ValueError("--text-column and --label-column name columns of a text table; a token file holds words "
                         "and tags (CoNLL lines, or JSONL with tokens / tags).")
    return RunSpec(
        args.name, task="token", teacher_source=args.teacher or "embedded-minilm", teacher_is_encoder=encoder,
        teacher=token_teacher_config(**overrides), label_map=args.label_map or {},
        labels_by_index=args.labels_by_index, students=default_students(kinds, args.student_steps, task="token"),
        distill=DistillConfig(loss=args.loss, temperature=args.temperature, alpha=args.alpha,
                              augment_copies=args.augment_copies,
                              mention_copies=getattr(args, "mention_copies", 0)),
        data=DataSource(path=args.data, seed=args.seed, corpus=args.corpus if args.corpus != "rotten_tomatoes" else "wnut16"),
        explain_sample=args.explain_sample, threads=args.threads)

