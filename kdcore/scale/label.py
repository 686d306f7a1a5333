"""``python -m kdcore label``: the teacher labels a large collection on Ray Data.

The plan (:class:`~kdcore.scale.collection.Collection` slices) is made on the driver; each slice
whose shard is missing becomes one item of a Ray Dataset, read by a Ray task, labelled by an
actor pool that holds the teacher (``map_batches`` with a callable class; one GPU per actor where
the cluster has GPUs, CPU actors otherwise), and written by the driver as one Parquet shard
(temporary name, then rename) as soon as all its rows are back. A stopped run started again
recomputes only the shards that are missing or incomplete.

Ray is imported here only, and only when labelling starts; nothing else in kd-lens needs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import TeacherConfig
from ..utils import ProgressFn, emit
from .collection import Collection, Slice, text_hash
from .store import LABELS_FORMAT, LabelFolder, LabelStoreError, write_shard

__all__ = ["LabelSummary", "label_collection", "teacher_identity", "RAY_MISSING"]

RAY_MISSING = ("Labelling on Ray needs the optional extra: `pip install -r requirements-scale.txt` "
               "(Ray Data); the rest of kd-lens works without it.")


@dataclass
class LabelSummary:
    """What one call did: shards computed now, shards already there, texts labelled, seconds."""

    folder: Path
    computed: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)
    texts: int = 0
    skipped: int = 0
    seconds: float = 0.0
    driver_seconds: float = 0.0  # spent by the driver on the rows it received (grouping, writing shards)
    actor_cpu_seconds: float = 0.0  # CPU time of the actors (loading the teacher, reading, labelling, hashing)
    actors: int = 0
    gpus_per_actor: float = 0.0

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.seconds if self.seconds > 0 else 0.0


def teacher_identity(teacher) -> dict:
    """What decides a teacher's logits: its weights (fingerprint), classes and window settings."""
    return {"source": str(teacher.source), "fingerprint": teacher.fingerprint(), "label_names": list(teacher.label_names),
            "max_length": teacher.max_length, "stride": teacher.config.stride,
            "hidden_size": int(teacher.model.config.hidden_size)}


class TeacherLabeller:
    """The callable class of ``map_batches``: each actor loads the teacher once, then labels batches."""

    def __init__(self, source: str, teacher_config: dict, fingerprint: str, pooled: bool, threads: int):
        from ..teacher import Teacher
        from ..utils import configure_threads

        self._cpu_mark = time.process_time()  # the actor's CPU time is reported with its batches
        configure_threads(threads)
        self.teacher = Teacher.from_pretrained(source, config=TeacherConfig.from_dict(teacher_config))
        if self.teacher.fingerprint() != fingerprint:
            raise RuntimeError(f"The teacher at {source} changed while labelling (its weights differ from the plan's); "
                               "start again into a new folder.")
        self.pooled = pooled

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        out = self.teacher.predict_logits(texts, return_pooled=self.pooled, use_cache=False)
        logits, pooled = out if self.pooled else (out, None)
        now = time.process_time()
        cpu_seconds, self._cpu_mark = now - self._cpu_mark, now
        result = {key: batch[key] for key in ("shard", "row", "text_id", "shard_rows", "skipped")}
        result.update({"text_hash": np.array([text_hash(t) for t in texts], dtype=object), "logits": logits,
                       "cpu_seconds": np.full(len(texts), cpu_seconds / max(len(texts), 1))})
        if pooled is not None:
            result["pooled"] = pooled
        return result


def _read_slices(batch: dict, collection: dict, plan: dict) -> dict:
    """Ray task: the texts of the slices named in ``batch`` (one row per kept text)."""
    reader = Collection(**collection)
    shards, rows, ids, texts, sizes, skipped = [], [], [], [], [], []
    for index in batch["shard"]:
        piece = Slice(**plan[int(index)])
        kept = reader.read(piece)
        n = len(kept.texts)
        shards += [int(index)] * n
        rows += list(range(n))
        ids += kept.ids
        texts += kept.texts
        sizes += [n] * n
        skipped += [kept.skipped] * n
    return {"shard": np.array(shards, np.int64), "row": np.array(rows, np.int64),
            "text_id": np.array(ids, dtype=object), "text": np.array(texts, dtype=object),
            "shard_rows": np.array(sizes, np.int64), "skipped": np.array(skipped, np.int64)}


def _start_ray(address: str | None, num_cpus: int | None):
    try:
        import ray
    except ImportError as err:
        raise LabelStoreError(RAY_MISSING) from err
    if not ray.is_initialized():
        import logging

        quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        if address:
            # Workers of an existing cluster get kd-lens shipped with the job.
            import kdcore

            ray.init(address=address, runtime_env={"py_modules": [str(Path(kdcore.__file__).parent)]},
                     **quiet)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # kd-lens reports shards as they land
    return ray


def _pool_size(ray, actors: int | None, threads: int) -> tuple[int, float, int]:
    """(actors, GPUs per actor, CPUs per actor): one GPU each where the cluster has GPUs."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return (actors or gpus), 1.0, 1
    cpus = int(resources.get("CPU", 1))
    return (actors or max(1, cpus // threads)), 0.0, threads


def label_collection(source, out, *, teacher: str, text_column: str | None = None, id_column: str | None = None,
                     shard_size: int = 10_000, batch_size: int = 4096, pooled: bool = False,
                     teacher_config: TeacherConfig | None = None, actors: int | None = None,
                     threads_per_actor: int = 1, address: str | None = None, num_cpus: int | None = None,
                     max_shards: int | None = None, progress: ProgressFn | None = None) -> LabelSummary:
    """Label every text of ``source`` with ``teacher`` into the label folder ``out`` (see
    :mod:`kdcore.scale.store`), resuming a folder already started by the same call.

    ``batch_size`` texts go to an actor per call (the teacher batches them further by length);
    ``max_shards`` stops after that many new shards (the rest are done by a later call).
    """
    from ..teacher import Teacher

    teacher_config = teacher_config or TeacherConfig(epochs=0)
    collection = Collection.open(source, text_column=text_column, id_column=id_column)
    loaded = Teacher.from_pretrained(teacher, config=teacher_config, device="cpu")
    identity = teacher_identity(loaded)
    del loaded
    plan = collection.plan(shard_size)
    manifest = {"format": LABELS_FORMAT, "teacher": identity, "pooled": bool(pooled),
                "collection": {**collection.to_dict(), "files": collection.fingerprint()},
                "plan": [piece.__dict__ for piece in plan]}
    folder = LabelFolder.create_or_resume(out, manifest)
    missing = folder.missing()
    summary = LabelSummary(Path(out), reused=[p.index for p in plan if p not in missing])
    if max_shards is not None:
        missing = missing[:max_shards]
    emit(progress, stage="label", done=len(summary.reused), total=len(plan), texts=0)
    if not missing:
        return summary
    ray = _start_ray(address, num_cpus)
    n_actors, gpus, cpus = _pool_size(ray, actors, threads_per_actor)
    summary.actors, summary.gpus_per_actor = n_actors, gpus
    started = time.perf_counter()
    collection_state = {"root": collection.root, "files": collection.files, "text_column": collection.text_column,
                        "id_column": collection.id_column}
    plan_state = {piece.index: piece.__dict__ for piece in missing}
    dataset = (
        ray.data.from_items([{"shard": piece.index} for piece in missing], override_num_blocks=len(missing))
        .map_batches(_read_slices, batch_size=1, fn_kwargs={"collection": collection_state, "plan": plan_state})
        .map_batches(TeacherLabeller, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=n_actors),
                     num_gpus=gpus, num_cpus=cpus,
                     fn_constructor_kwargs={"source": teacher, "teacher_config": teacher_config.to_dict(),
                                            "fingerprint": identity["fingerprint"], "pooled": pooled,
                                            "threads": cpus})
    )
    pending: dict[int, list[dict]] = {}
    got: dict[int, int] = {}
    by_index = {piece.index: piece for piece in missing}
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        received = time.perf_counter()
        for index in np.unique(batch["shard"]):
            mine = batch["shard"] == index
            part = {key: value[mine] for key, value in batch.items()}
            pending.setdefault(int(index), []).append(part)
            got[int(index)] = got.get(int(index), 0) + int(mine.sum())
            if got[int(index)] == int(part["shard_rows"][0]):
                _write(folder, by_index[int(index)], pending.pop(int(index)), pooled, summary)
                emit(progress, stage="label", done=len(summary.reused) + len(summary.computed), total=len(plan),
                     texts=summary.texts, texts_per_second=summary.texts / (time.perf_counter() - started))
        summary.driver_seconds += time.perf_counter() - received
    # A slice with no text at all sends no row: write its (empty) shard once the stream has ended.
    for piece in missing:
        if piece.index not in summary.computed:
            kept = collection.read(piece)
            if kept.texts:
                raise LabelStoreError(f"Shard {piece.index} came back incomplete from Ray; run the command again.")
            _write(folder, piece, [], pooled, summary, skipped=kept.skipped)
    summary.seconds = time.perf_counter() - started
    return summary


def _write(folder: LabelFolder, piece: Slice, parts: list[dict], pooled: bool, summary: LabelSummary,
           skipped: int | None = None) -> None:
    n_classes = len(folder.manifest["teacher"]["label_names"])
    if parts:
        merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        order = np.argsort(merged["row"], kind="stable")
        merged = {key: value[order] for key, value in merged.items()}
        skipped = int(merged["skipped"][0])
        summary.actor_cpu_seconds += float(merged["cpu_seconds"].sum())
    else:
        merged = {"text_id": [], "text_hash": [], "logits": np.zeros((0, n_classes), np.float32)}
        if pooled:
            merged["pooled"] = np.zeros((0, folder.manifest["teacher"]["hidden_size"]), np.float32)
    write_shard(folder.shard_path(piece), piece, [str(i) for i in merged["text_id"]],
                [str(h) for h in merged["text_hash"]], merged["logits"], merged.get("pooled") if pooled else None,
                skipped)
    summary.computed.append(piece.index)
    summary.texts += len(merged["text_id"])
    summary.skipped += skipped

