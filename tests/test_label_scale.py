"""Labelling a collection on Ray Data (2 CPU actors over a tiny teacher), resuming it, building a
run from the precomputed logits, and the bounded-memory linear student."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import TOY_NEG, TOY_POS, make_tiny_model_dir, make_toy_corpus, tiny_spec
from kdcore.config import RunSpec, StudentConfig, TeacherConfig
from kdcore.scale.collection import Collection, text_hash
from kdcore.scale.store import LabelFolder, LabelStoreError, PrecomputedLogits, write_shard

TEACHER_CONFIG = TeacherConfig(epochs=0, max_length=32, stride=8)
TEXTS = [f"{a} but {b}" for a in TOY_POS + TOY_NEG for b in TOY_POS + TOY_NEG]  # 400 texts
STUDENTS = (StudentConfig(kind="linear", name="linear", min_count=1),)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is the optional extra of `label`: pip install -r requirements-scale.txt")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _teacher(model_dir):
    from kdcore.teacher import Teacher

    return Teacher.from_pretrained(model_dir, config=TEACHER_CONFIG, device="cpu")


def _collection(folder):
    """400 texts in three formats, plus one record without a text in the CSV."""
    folder.mkdir(parents=True)
    with open(folder / "a.jsonl", "w", encoding="utf-8") as handle:
        for i, text in enumerate(TEXTS[:150]):
            handle.write(json.dumps({"text": text, "n": i}) + "\n")
    pd.DataFrame({"text": TEXTS[150:300]}).to_parquet(folder / "b.parquet")
    pd.DataFrame({"text": TEXTS[300:350] + [""] + TEXTS[350:]}).to_csv(folder / "c.csv", index=False)
    return folder


def _label(source, out, model_dir, **options):
    from kdcore.scale.label import label_collection

    return label_collection(source, out, teacher=str(model_dir), teacher_config=TEACHER_CONFIG, shard_size=40,
                            batch_size=32, actors=2, **options)


def test_ray_labels_equal_predict_logits_and_resume_after_a_killed_shard(local_ray, tmp_path, tiny_model_dir):
    data = _collection(tmp_path / "data")
    out = tmp_path / "labels"
    first = _label(data, out, tiny_model_dir, max_shards=3)  # stopped after 3 of 11 shards
    assert first.computed == [0, 1, 2] and first.actors == 2
    with pytest.raises(LabelStoreError, match="unfinished: 8 of 11 shards are missing"):
        PrecomputedLogits([out])
    second = _label(data, out, tiny_model_dir)
    assert second.reused == [0, 1, 2] and second.computed == list(range(3, 11))
    assert second.texts == 400 - 120 and second.skipped == 1

    reference = _teacher(tiny_model_dir).predict_logits(TEXTS, use_cache=False)
    logits, _, found = PrecomputedLogits([out]).lookup(TEXTS)
    assert found.all()
    np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-6)
    folder = LabelFolder.open(out)
    shard = folder.read_shard(folder.slices[0], ("text_id", "text_hash"))
    assert shard["text_id"][:2] == ["a.jsonl:1", "a.jsonl:2"] and shard["text_hash"][0] == text_hash(TEXTS[0])

    # A killed shard: one removed, one truncated mid-write. Only those two are computed again.
    shards = sorted((out / "shards").glob("part-*.parquet"))
    shards[4].unlink()
    shards[7].write_bytes(shards[7].read_bytes()[:100])
    untouched = {p.name: p.stat().st_mtime_ns for i, p in enumerate(shards) if i not in (4, 7)}
    from kdcore.cli import main

    assert main(["label", str(data), "--teacher", str(tiny_model_dir), "--out", str(out), "--shard-size", "40",
                 "--max-length", "32", "--stride", "8", "--actors", "2"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in shards if p.name in untouched} == untouched
    assert LabelFolder.open(out).missing() == []
    logits, _, _ = PrecomputedLogits([out]).lookup(TEXTS)
    np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-6)


def test_a_run_built_from_precomputed_logits_equals_one_built_in_process(local_ray, tmp_path, tiny_model_dir):
    from kdcore.pipeline import build_run
    from kdcore.runs import load_run

    in_process = build_run(tiny_spec("inproc", tiny_model_dir, STUDENTS), runs_dir=tmp_path / "runs",
                           corpus=make_toy_corpus())
    # Label the run's transfer set (augmented copies included) on Ray, then build again from it.
    out = tmp_path / "labels"
    _label(in_process / "data" / "transfer.jsonl", out, tiny_model_dir)
    spec = RunSpec.from_dict({**tiny_spec("precomputed", tiny_model_dir, STUDENTS).to_dict(),
                              "teacher_logits": [str(out)]})
    precomputed = build_run(spec, runs_dir=tmp_path / "runs", corpus=make_toy_corpus())
    a, b = load_run(in_process), load_run(precomputed)
    for name in ("linear", "linear-labels"):
        np.testing.assert_allclose(a.students[name].coef_, b.students[name].coef_, rtol=1e-4, atol=1e-6)
    for name, metrics in a.metrics["models"].items():
        for key in ("accuracy", "fidelity", "tv_distance"):
            if key in metrics:
                assert b.metrics["models"][name][key] == pytest.approx(metrics[key], abs=1e-6), (name, key)


def _hand_made_folder(path, teacher, texts, label_names=None):
    """A label folder written without Ray (same format): one shard over a JSONL of ``texts``."""
    from kdcore.scale.label import teacher_identity

    path.mkdir(parents=True)
    (path / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    collection = Collection.open(path / "texts.jsonl")
    plan = collection.plan(len(texts))
    identity = teacher_identity(teacher)
    logits = teacher.predict_logits(texts, use_cache=False)
    if label_names is not None:
        identity["label_names"] = label_names
        logits = np.zeros((len(texts), len(label_names)), np.float32)
    manifest = {"format": 1, "teacher": identity, "pooled": False,
                "collection": {**collection.to_dict(), "files": collection.fingerprint()},
                "plan": [piece.__dict__ for piece in plan]}
    folder = LabelFolder.create_or_resume(path / "labels", manifest)
    write_shard(folder.shard_path(plan[0]), plan[0], [str(i) for i in range(len(texts))],
                [text_hash(t) for t in texts], logits, None, 0)
    return path / "labels"


def test_logits_that_miss_transfer_texts_or_classes_are_refused(tmp_path, tiny_model_dir):
    from kdcore.pipeline import build_run

    teacher = _teacher(tiny_model_dir)
    corpus = make_toy_corpus()
    partial = _hand_made_folder(tmp_path / "partial", teacher, list(corpus.train.texts))
    spec = RunSpec.from_dict({**tiny_spec("r", tiny_model_dir, STUDENTS).to_dict(), "teacher_logits": [str(partial)]})
    with pytest.raises(LabelStoreError, match=r"transfer texts have no logits in .*--augment-copies 0 --no-clauses") as err:
        build_run(spec, runs_dir=tmp_path / "runs", corpus=corpus)
    missing = tmp_path / "runs" / "r.partial" / "missing_teacher_logits.jsonl"
    assert missing.is_file() and str(missing) in str(err.value)
    assert len(missing.read_text().splitlines()) == int(str(err.value).split(" of ")[0])

    three = _hand_made_folder(tmp_path / "three", teacher, list(corpus.train.texts), label_names=["a", "b", "c"])
    spec = RunSpec.from_dict({**spec.to_dict(), "name": "r3", "teacher_logits": [str(three)]})
    with pytest.raises(LabelStoreError, match="have 3 classes .* the run's teacher has 2"):
        build_run(spec, runs_dir=tmp_path / "runs", corpus=corpus)

    other = make_tiny_model_dir(tmp_path / "other", seed=1)
    spec = RunSpec.from_dict({**spec.to_dict(), "name": "r4", "teacher_source": str(other),
                              "teacher_logits": [str(partial)]})
    with pytest.raises(LabelStoreError, match="made by another teacher"):
        build_run(spec, runs_dir=tmp_path / "runs", corpus=corpus)


def test_a_label_folder_of_another_teacher_is_not_mixed(tmp_path, tiny_model_dir):
    from kdcore.scale.label import label_collection

    folder = _hand_made_folder(tmp_path / "f", _teacher(tiny_model_dir), TEXTS[:20])
    other = make_tiny_model_dir(tmp_path / "other", seed=1)
    with pytest.raises(LabelStoreError, match="holds labels made with another teacher"):
        label_collection(tmp_path / "f" / "texts.jsonl", folder, teacher=str(other), teacher_config=TEACHER_CONFIG,
                         shard_size=20)


def test_precomputed_logits_need_the_teacher_as_loaded():
    with pytest.raises(ValueError, match="teacher epochs 0"):
        RunSpec("r", teacher_source="/t", teacher_is_encoder=False, teacher={"epochs": 1}, teacher_logits=["/l"])


def test_the_bounded_memory_trainer_matches_the_in_memory_one(tmp_path, tiny_model_dir):
    from kdcore.students import LinearStudent
    from kdcore.students.train_stream import fit_linear_stream

    teacher = _teacher(tiny_model_dir)
    folder = _hand_made_folder(tmp_path / "f", teacher, TEXTS)
    logits = teacher.predict_logits(TEXTS, use_cache=False)
    config = StudentConfig(kind="linear", min_count=2)
    in_memory = LinearStudent(config).fit(TEXTS, logits)
    labels = LabelFolder.open(folder)
    # One block: the same full-batch objective; several blocks: the same sum in another order.
    for block_texts in (10_000, 64):
        streamed = fit_linear_stream(LinearStudent(config), labels.texts_and_logits, block_texts=block_texts,
                                     workdir=tmp_path)
        assert streamed.featurizer_.features_ == in_memory.featurizer_.features_
        assert streamed.vocabulary_undercount_ == 0 and streamed.converged_
        np.testing.assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(streamed.predict_proba(TEXTS[:50]), in_memory.predict_proba(TEXTS[:50]), atol=1e-5)
    assert list(tmp_path.glob("kdlens-design-*")) == []  # the memory-mapped design is removed


def test_the_streaming_vocabulary_reports_what_pruning_may_have_lost():
    from kdcore.students.featurize import Featurizer
    from kdcore.students.train_stream import fit_vocabulary_stream

    chunks = [TEXTS[i:i + 40] for i in range(0, len(TEXTS), 40)]
    exact = Featurizer(min_count=1)
    assert fit_vocabulary_stream(exact, chunks) == 0
    assert exact.features_ == Featurizer(min_count=1).fit(TEXTS).features_
    pruned = Featurizer(min_count=1)
    bound = fit_vocabulary_stream(pruned, chunks, max_entries=60)
    assert bound > 0 and pruned.n_features < exact.n_features
    # Lossy counting's promise: every feature in more than `bound` texts is still counted (and kept).
    doc_freq = np.bincount(exact.transform(TEXTS).indices.numpy(), minlength=exact.n_features)
    frequent = {name for name, df in zip(exact.features_, doc_freq) if df > bound}
    assert frequent and frequent <= set(pruned.features_)


def test_only_the_label_module_imports_ray():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    importers = sorted(str(p.relative_to(root)) for p in (root / "kdcore").rglob("*.py")
                       if "import ray" in p.read_text(encoding="utf-8"))
    assert importers == ["kdcore/scale/label.py"]
    code = ("import sys, kdcore, kdcore.cli, kdcore.pipeline, kdcore.scale.precomputed, kdcore.students.train_stream; "
            "kdcore.cli.build_parser(); print('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_the_distill_command_takes_label_folders():
    from kdcore.cli import build_parser, spec_from_args

    args = build_parser().parse_args(["distill", "--name", "big", "--teacher", "/t", "--teacher-logits", "/a",
                                      "--teacher-logits", "/b"])
    spec = spec_from_args(args)
    assert spec.teacher_logits == ("/a", "/b") and spec.teacher.epochs == 0
    assert RunSpec.from_json(spec.to_json()).teacher_logits == ("/a", "/b")


def test_a_collection_reads_back_slice_by_slice_in_every_format(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"review {i}" + ("\nsecond line, quoted" if i % 7 == 0 else "") for i in range(100)]
    folder = tmp_path / "c"
    folder.mkdir()
    pd.DataFrame({"id": [f"c{i}" for i in range(100)], "review": texts}).to_csv(folder / "1.csv", index=False)
    (folder / "2.jsonl").write_text("\n\n".join(json.dumps({"id": f"j{i}", "review": t}) for i, t in enumerate(texts)),
                                    encoding="utf-8")
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(100)], "review": texts}), folder / "3.parquet",
                   row_group_size=13)
    collection = Collection.open(folder, id_column="id")
    assert collection.text_column == "review"  # detected as the readers detect it
    plan = collection.plan(30)
    assert [(p.file, p.start, p.stop) for p in plan[:4]] == [("1.csv", 0, 30), ("1.csv", 30, 60), ("1.csv", 60, 90),
                                                             ("1.csv", 90, 100)]
    read = [collection.read(piece) for piece in plan]
    assert [t for r in read for t in r.texts] == texts * 3
    assert [i for r in read for i in r.ids] == [f"{p}{i}" for p in "cjp" for i in range(100)]
    with pytest.raises(ValueError, match="has no column 'words'"):
        Collection.open(folder, text_column="words")


def test_precomputed_logits_are_for_sequence_runs():
    from kdcore.config import default_students

    with pytest.raises(ValueError, match="drop teacher_logits for a token run"):
        RunSpec("r", task="token", teacher_source="/t", teacher_is_encoder=False, teacher={"epochs": 0},
                students=default_students(["token_linear"], task="token"), teacher_logits=["/l"])
