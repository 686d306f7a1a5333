"""The ``label`` subcommand of ``python -m kdcore`` (its parser and its command)."""

from __future__ import annotations

__all__ = ["add_label_parser", "cmd_label"]


def add_label_parser(sub, common, progress_class) -> None:
    """``progress_class()`` makes the progress callback (the CLI's tqdm bars)."""
    label = sub.add_parser(
        "label", help="The teacher labels a large text collection on Ray Data (Parquet shards of logits).",
        description="Label every text of a CSV / TSV / JSONL / Parquet file, or a folder of them, with a teacher on "
        "Ray Data: an actor pool holds the teacher (one GPU per actor where the cluster has GPUs, CPU actors "
        "otherwise) and each slice of the collection becomes one Parquet shard of (text_id, text_hash, logits"
        "[, pooled]). Run the same command again to resume: only missing shards are computed. Build a run from "
        "the shards with `python -m kdcore distill --teacher-logits OUT`. Needs `pip install -r "
        "requirements-scale.txt`.")
    common(label)
    label.add_argument("data", help="A .csv / .tsv / .jsonl / .parquet file, or a folder of them (read recursively).")
    label.add_argument("--teacher", required=True,
                       help="The trained classifier: a local folder (e.g. runs/NAME/teacher) or a hub id.")
    label.add_argument("--out", required=True, help="Label folder to write (or resume).")
    label.add_argument("--text-column", help="Text column (detected if omitted).")
    label.add_argument("--id-column", help="Column of text ids (default: FILE:RECORD).")
    label.add_argument("--shard-size", type=int, default=10_000, help="Texts per output shard (default 10000).")
    label.add_argument("--batch-size", type=int, default=4096,
                       help="Texts sent to an actor at a time; the teacher sorts them by length (default 4096).")
    label.add_argument("--max-length", type=int, default=128, help="Teacher window in tokens (default 128).")
    label.add_argument("--stride", type=int, default=32, help="Token overlap of the windows of a long text.")
    label.add_argument("--pooled", action="store_true", help="Also store the teacher's pooled [CLS] vectors.")
    label.add_argument("--actors", type=int, default=None,
                       help="Actors in the pool (default: one per GPU, or CPUs / --threads-per-actor without GPUs).")
    label.add_argument("--threads-per-actor", type=int, default=1, help="torch threads of each CPU actor.")
    label.add_argument("--address", default=None,
                       help="Address of an existing Ray cluster (e.g. ray://host:10001 or auto); default: a local Ray.")
    label.add_argument("--max-shards", type=int, default=None, help="Stop after this many new shards.")
    label.set_defaults(func=cmd_label, progress_class=progress_class)


def cmd_label(args) -> int:
    from ..config import TeacherConfig
    from .label import label_collection

    progress = args.progress_class()
    try:
        summary = label_collection(
            args.data, args.out, teacher=args.teacher, text_column=args.text_column, id_column=args.id_column,
            shard_size=args.shard_size, batch_size=args.batch_size, pooled=args.pooled,
            teacher_config=TeacherConfig(epochs=0, max_length=args.max_length, stride=args.stride),
            actors=args.actors, threads_per_actor=args.threads_per_actor, address=args.address,
            max_shards=args.max_shards, progress=progress)
    finally:
        progress.close()
    done = len(summary.computed) + len(summary.reused)
    print(f"Labels in {summary.folder}: {len(summary.computed)} shards computed now, {len(summary.reused)} already "
          f"there, {done} in all; {summary.texts} texts labelled ({summary.texts_per_second:.0f}/s on "
          f"{summary.actors} actor(s)), {summary.skipped} records without text skipped.")
    return 0
