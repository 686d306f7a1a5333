"""The RunSpecs of the sequence task that the CLI builds: the demo's and the one ``distill`` options describe."""

from __future__ import annotations

from ...config import DataSource, DistillConfig, RunSpec, TeacherConfig, default_students

__all__ = ["demo_spec", "spec_from_args"]


def demo_spec(args) -> RunSpec:
    """The RunSpec of ``python -m kdcore demo``: the embedded teacher and corpus, the default students."""
    return RunSpec(args.name, teacher=TeacherConfig(max_steps=args.teacher_steps),
                   distill=DistillConfig(augment_copies=args.augment_copies, temperature=args.temperature),
                   explain_sample=args.explain_sample, threads=args.threads)


def spec_from_args(args, kinds, encoder: bool) -> RunSpec:
    """The sequence RunSpec ``python -m kdcore distill`` options describe (``encoder``: the teacher is a bare
    encoder, fine-tuned on the data)."""
    epochs = args.teacher_epochs if args.teacher_epochs is not None else (TeacherConfig().epochs if encoder else 0.0)
    return RunSpec(
        args.name, teacher_source=args.teacher or "embedded-minilm", teacher_is_encoder=encoder,
        teacher=TeacherConfig(epochs=epochs, **({"max_steps": args.teacher_steps} if args.teacher_steps else {})),
        label_map=args.label_map or {}, labels_by_index=args.labels_by_index,
        students=default_students(kinds, args.student_steps),
        distill=DistillConfig(loss=args.loss, temperature=args.temperature, alpha=args.alpha,
                              augment_copies=args.augment_copies, attr_match=args.attr_match,
                              feature_align=args.feature_align, clauses=not args.no_clauses),
        data=DataSource(path=args.data, text_column=args.text_column, label_column=args.label_column, seed=args.seed,
                        corpus=args.corpus),
        explain_sample=args.explain_sample, threads=args.threads, teacher_logits=tuple(args.teacher_logits or ()))
