"""Aug-Linear ablation: the teacher's n-gram features and transfer-set additions, on the DEV split.

    KDLENS_THREADS=1 python bench/aug_ablation.py --run runs/demo [--rows linear,aug-both] [--redo]
    KDLENS_THREADS=1 python bench/aug_ablation.py --run runs/demo --test aug-both   # read test once

Reads a finished run (read-only): its teacher, its transfer set with the teacher's logits, its
dev and test splits. Every row trains one student on a transfer set and scores it on dev:
fidelity (agreement with the teacher's label, with its standard error), accuracy, training
seconds and features (n-grams in the vocabulary; for aug_linear also the frozen dimensions).
aug_linear rows report dev fidelity twice: unseen n-grams counted 0, and scored through their
teacher features (``embed_unseen``). The rows: the plain linear student (the default), + the
teacher's logits on each n-gram, + the n-gram embedding term, both, word triples
(``ngram_max=3``) for the linear student and the aug row, and each transfer-set
addition alone (more copies, longer n-gram samples, no unlabelled text, an uploaded file of
other text) for the linear student, the MLP and the best aug row.

The n-gram pass (teacher embeddings and logits of every vocabulary n-gram) is timed on its
own and cached under ``--cache`` (keyed by the teacher's weights), as are the teacher's logits
on dev and on new transfer texts, so a second invocation recomputes nothing. Rows already in
``--out``.json are skipped unless ``--redo``. ``--test ROW`` trains that row and the
label-trained twin of the same architecture (and the plain linear twin), then reads the test
split once: fidelity with its standard error, and the paired margin over each twin.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from kdcore.config import DEFAULT_STUDENTS, DataSource, DistillConfig, StudentConfig  # noqa: E402
from kdcore.tasks.sequence.corpus import load_corpus  # noqa: E402
from kdcore.tasks.sequence.fit import fit_label_twin as _fit_label_twin  # noqa: E402
from kdcore.tasks.sequence.transfer import build_transfer_set  # noqa: E402
from kdcore.metrics import accuracy  # noqa: E402
from kdcore.ngram_cache import NgramCache  # noqa: E402
from kdcore.runs import load_run  # noqa: E402
from kdcore.students import make_student  # noqa: E402
from kdcore.utils import configure_threads  # noqa: E402

LINEAR = {"kind": "linear", "name": "linear"}
MLP = {k: v for k, v in DEFAULT_STUDENTS[1].to_dict().items()}
AUG = {"kind": "aug_linear", "name": "aug"}
# Transfer-set variants: DistillConfig overrides, or "upload" (extra unlabelled texts from a file of other text).
TRANSFERS = {
    "base": {},
    "copies4": {"augment_copies": 4},
    "ngram10": {"ngram_max_words": 10},
    "no-unlabelled": {"use_unlabelled": False},
    "upload": "upload",
    "copies4-no-unlabelled": {"augment_copies": 4, "use_unlabelled": False},
}
# name -> (family, transfer, student config)
ROWS = {
    "linear": ("linear", "base", LINEAR),
    "aug-teacher": ("linear", "base", {**AUG, "aug_terms": "free+teacher"}),
    "aug-embedding": ("linear", "base", {**AUG, "aug_terms": "free+embedding"}),
    "aug-both": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher"}),
    "aug-both-nofree": ("linear", "base", {**AUG, "aug_terms": "embedding+teacher"}),
    "aug-both-l2=10": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher", "aug_l2": 10.0}),
    "aug-both-l2=0.1": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher", "aug_l2": 0.1}),
    "aug-both-150k": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher", "max_features": 150_000}),
    "mlp": ("mlp", "base", MLP),
    # The aug row's own distillation settings (a "distill" key: DistillConfig overrides for that student).
    "aug-both-T1": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher", "distill": {"temperature": 1.0}}),
    "aug-both-T0.3": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher",
                                         "distill": {"temperature": 0.3}}),
    "aug-both-150k+no-unlabelled": ("linear", "no-unlabelled",
                                    {**AUG, "aug_terms": "free+embedding+teacher", "max_features": 150_000}),
    # Word triples ("not very good"): the linear student alone, and aug_linear, which scores the
    # triples it never saw through their teacher features.
    "linear-tri": ("linear", "base", {**LINEAR, "ngram_max": 3}),
    "aug-both-tri": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher", "ngram_max": 3}),
    "aug-both-tri-100k": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher", "ngram_max": 3,
                                             "max_features": 100_000}),
    "aug-both-tri+no-unlabelled": ("linear", "no-unlabelled", {**AUG, "aug_terms": "free+embedding+teacher",
                                                                "ngram_max": 3}),
    "aug-both-tri-150k+no-unlabelled": ("linear", "no-unlabelled", {**AUG, "aug_terms": "free+embedding+teacher",
                                                                     "ngram_max": 3, "max_features": 150_000}),
    "aug-both-tri-250k": ("linear", "base", {**AUG, "aug_terms": "free+embedding+teacher", "ngram_max": 3,
                                             "max_features": 250_000}),
    "linear-150k": ("linear", "base", {**LINEAR, "max_features": 150_000}),
}
for _transfer in TRANSFERS:
    if _transfer != "base":
        ROWS[f"linear+{_transfer}"] = ("linear", _transfer, LINEAR)
        ROWS[f"mlp+{_transfer}"] = ("mlp", _transfer, MLP)
        ROWS[f"aug-both+{_transfer}"] = ("linear", _transfer, {**AUG, "aug_terms": "free+embedding+teacher"})


def standard_error(agree: np.ndarray) -> float:
    return float(agree.std(ddof=1) / np.sqrt(len(agree))) if len(agree) > 1 else float("nan")


class _PartialRun:
    """A demo build's ``.partial`` folder once its labels stage is done, read only: the demo's spec
    (embedded corpus, default distillation), its teacher, transfer set and logits."""

    def __init__(self, path: Path):
        from kdcore.config import RunSpec, TeacherConfig
        from kdcore.data import TextDataset
        from kdcore.teacher import Teacher

        self.path = path
        self.spec = RunSpec("demo", teacher=TeacherConfig(max_steps=450)).to_dict()
        self.manifest = {"spec": self.spec, "distill": self.spec["distill"]}
        labels = load_corpus(DataSource()).train.label_names
        self.teacher = Teacher.from_pretrained(path / "teacher", label_names=labels,
                                               config=TeacherConfig.from_dict(self.spec["teacher"]))
        lines = (path / "data" / "transfer.jsonl").read_text(encoding="utf-8").split("\n")
        rows = [json.loads(line) for line in lines if line.strip()]
        self.transfer = TextDataset([r["text"] for r in rows], None, self.teacher.label_names, name="transfer")

    def split(self, name):
        if name == "transfer":
            return self.transfer
        corpus = load_corpus(DataSource()).with_label_order(self.teacher.label_names)
        return getattr(corpus, name)

    def array(self, relative):
        return np.load(self.path / relative, allow_pickle=False)


class Bench:
    def __init__(self, args):
        path = Path(args.run)
        self.run = load_run(path) if (path / "manifest.json").is_file() else _PartialRun(path)
        self.teacher = self.run.teacher
        cache = Path(args.cache)
        self.teacher.cache_dir = cache / "teacher_logits"
        self.ngrams = NgramCache(self.teacher, cache / "ngrams")
        spec = self.run.manifest["spec"]
        self.corpus = load_corpus(DataSource.from_dict(spec["data"])).with_label_order(self.teacher.label_names)
        self.extra_texts = list(spec.get("extra_texts", []))
        self.distill = DistillConfig.from_dict(self.run.manifest["distill"])
        self.dev = self.run.split("dev")
        if self.dev.content_hash() != self.corpus.dev.content_hash():
            raise SystemExit("The run's dev split differs from the corpus rebuilt from its spec; cannot compare.")
        transfer = self.run.split("transfer")
        self.known_logits = dict(zip(transfer.texts, self.run.array("teacher_logits.npy")))
        print(f"teacher {self.teacher.fingerprint()[:12]}, transfer set {len(transfer)} texts, dev {len(self.dev)}",
              flush=True)
        self.dev_teacher = self.teacher.predict_logits(self.dev.texts)
        self.upload_path = args.upload
        self.save_dir = args.save
        self._transfers: dict = {}

    def transfer(self, name: str):
        """(texts, teacher logits, seconds the teacher spent on new texts) of a transfer variant."""
        if name not in self._transfers:
            option = TRANSFERS[name]
            extra = list(self.extra_texts)
            config = self.distill
            if option == "upload":
                extra += self._upload_texts()
            else:
                config = replace(self.distill, **option)
            dataset = build_transfer_set(self.corpus.train, self.corpus.unlabelled, config, extra)
            texts = list(dataset.texts)
            new = [t for t in texts if t not in self.known_logits]
            started = time.perf_counter()
            if new:
                self.known_logits.update(zip(new, self.teacher.predict_logits(new)))
            seconds = time.perf_counter() - started if new else 0.0
            logits = np.stack([self.known_logits[t] for t in texts])
            self._transfers[name] = (texts, logits, dataset.labels, seconds, len(new))
        return self._transfers[name]

    def _upload_texts(self) -> list[str]:
        if self.upload_path:
            return [line.strip() for line in Path(self.upload_path).read_text(encoding="utf-8").splitlines() if line.strip()]
        from kdcore.corpora import load_corpus as named_corpus

        # Other text a user might upload: the debates corpus's statements (out of domain).
        debates = named_corpus("debates")
        return [t for split in (debates.train, debates.dev, debates.test) for t in split.texts]

    def ngram_pass(self, config: dict, texts) -> tuple[float, int, int]:
        """Time the teacher pass over the n-grams of ``config``'s vocabulary on ``texts``."""
        student = make_student(StudentConfig.from_dict({k: v for k, v in config.items() if k != "distill"}))
        names = student._new_featurizer().fit(texts).features_
        before = self.ngrams.computed
        started = time.perf_counter()
        self.ngrams.features(names)
        return time.perf_counter() - started, self.ngrams.computed - before, len(names)

    def fit(self, config: dict, texts, logits=None, labels=None):
        config = dict(config)
        distill = replace(self.distill, **config.pop("distill", {}))
        student = make_student(StudentConfig.from_dict(config))
        if hasattr(student, "use_teacher"):
            student.use_teacher(self.ngrams)
        started = time.perf_counter()
        if logits is not None:
            student.fit(texts, teacher_logits=logits, label_names=self.teacher.label_names, distill=distill)
        else:
            student = _fit_label_twin(student.config, texts, labels, self.teacher.label_names, self.corpus.dev, None,
                                      "cpu", teacher=self.ngrams)
        return student, time.perf_counter() - started

    def score(self, student, texts, teacher_logits, labels) -> dict:
        started = time.perf_counter()
        logits = student.predict_logits(texts)
        agree = logits.argmax(1) == teacher_logits.argmax(1)
        return {"fidelity": float(agree.mean()), "fidelity_se": standard_error(agree),
                "accuracy": accuracy(labels, logits.argmax(1)), "predict_s": time.perf_counter() - started,
                "agree": agree}

    def row(self, name: str) -> dict:
        family, transfer, config = ROWS[name]
        texts, logits, _, label_s, n_new = self.transfer(transfer)
        out = {"row": name, "family": family, "transfer": transfer, "transfer_texts": len(texts),
               "transfer_new_texts": n_new, "teacher_new_texts_s": label_s, "config": config}
        if config["kind"] == "aug_linear":
            out["ngram_pass_s"], out["ngrams_computed"], _ = self.ngram_pass(config, texts)
        student, out["fit_s"] = self.fit(config, texts, logits)
        out["features"] = student.featurizer_.n_features
        out["frozen_dims"] = int(getattr(student.module_, "projection", np.zeros((0,))).shape[0])
        out["n_nonzero"] = int(student.n_nonzero_)
        labels = self.dev.labels
        if config["kind"] == "aug_linear":
            open_config = student.config
            student.config = replace(open_config, embed_unseen=False)
            closed = self.score(student, self.dev.texts, self.dev_teacher, labels)
            student.config = open_config
            out.update({f"closed_{k}": v for k, v in closed.items() if k != "agree"})
        scored = self.score(student, self.dev.texts, self.dev_teacher, labels)
        out.update({f"dev_{k}": v for k, v in scored.items() if k != "agree"})
        out["dev_agree"] = "".join("1" if a else "0" for a in scored["agree"])  # for paired differences
        out["grown_features"] = student.featurizer_.n_features - out["features"]
        return out

    def test(self, name: str) -> dict:
        """The chosen row on test (read once), with its label-trained twins."""
        family, transfer, config = ROWS[name]
        texts, logits, gold, _, _ = self.transfer(transfer)
        test = self.run.split("test")
        test_teacher = self.run.array("teacher_test_logits.npy")
        student, fit_s = self.fit(config, texts, logits)
        if self.save_dir:
            student.save(Path(self.save_dir) / name)  # before it meets the test texts, as a run saves it
        scored = self.score(student, test.texts, test_teacher, test.labels)
        result = {"row": name, "fit_s": fit_s, **{f"test_{k}": v for k, v in scored.items() if k != "agree"}}
        keep = gold >= 0
        train_texts = [t for t, k in zip(texts, keep) if k]
        for twin_name, twin_config in (("twin", {**config, "name": config["name"] + "-labels"}),
                                       ("linear_twin", {**LINEAR, "name": "linear-labels"})):
            twin, _ = self.fit(twin_config, train_texts, labels=gold[keep])
            twin_scored = self.score(twin, test.texts, test_teacher, test.labels)
            diff = scored["agree"].astype(float) - twin_scored["agree"].astype(float)
            result.update({f"{twin_name}_fidelity": twin_scored["fidelity"],
                           f"{twin_name}_fidelity_se": twin_scored["fidelity_se"],
                           f"{twin_name}_accuracy": twin_scored["accuracy"],
                           f"margin_over_{twin_name}": float(diff.mean()),
                           f"margin_over_{twin_name}_se": standard_error(diff)})
        return result


def markdown(rows: list[dict], reference: str = "aug-both") -> str:
    """The dev table; each row's fidelity also as a paired difference from ``reference`` (same dev texts)."""
    base = next((r for r in rows if r["row"] == reference and "dev_agree" in r), None)
    lines = ["| row | family | transfer set (texts) | features (frozen dims) | fit s | dev fidelity ± SE | "
             f"minus {reference} (paired SE) | dev fidelity, unseen = 0 | dev accuracy | n-gram pass s (computed) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        closed = f"{r['closed_fidelity']:.4f}" if "closed_fidelity" in r else "-"
        ngram = f"{r['ngram_pass_s']:.0f} ({r['ngrams_computed']})" if "ngram_pass_s" in r else "-"
        dims = f" ({r['frozen_dims']})" if r.get("frozen_dims") else ""
        paired = "-"
        if base is not None and "dev_agree" in r and r["row"] != reference:
            diff = np.array([int(c) for c in r["dev_agree"]], float) - np.array([int(c) for c in base["dev_agree"]], float)
            paired = f"{diff.mean():+.4f} ({standard_error(diff):.4f})"
        lines.append(f"| {r['row']} | {r['family']} | {r['transfer']} ({r['transfer_texts']}) | {r['features']}{dims} | "
                     f"{r['fit_s']:.0f} | {r['dev_fidelity']:.4f} ± {r['dev_fidelity_se']:.4f} | {paired} | {closed} | "
                     f"{r['dev_accuracy']:.4f} | {ngram} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated; known: {', '.join(ROWS)}")
    parser.add_argument("--cache", default=".cache/aug_ablation")
    parser.add_argument("--out", default="bench/results/aug_ablation")
    parser.add_argument("--upload", default=None, help="a text file (one text a line) for the upload row")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--redo", action="store_true")
    parser.add_argument("--test", default=None, help="read the test split once for this row")
    parser.add_argument("--save", default=None, help="with --test: save the row's student under this folder")
    args = parser.parse_args()
    configure_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    if args.test:
        result = bench.test(args.test)
        print(json.dumps(result, indent=2))
        Path(f"{out}_test.json").write_text(json.dumps(result, indent=2))
        return
    done = {r["row"]: r for r in json.loads(Path(f"{out}.json").read_text())} if Path(f"{out}.json").is_file() else {}
    for name in [n.strip() for n in args.rows.split(",") if n.strip()]:
        if name not in ROWS:
            raise SystemExit(f"Unknown row {name!r}; known: {', '.join(ROWS)}.")
        if name in done and not args.redo:
            continue
        done[name] = bench.row(name)
        print(json.dumps({k: v for k, v in done[name].items() if k != "config"}), flush=True)
        Path(f"{out}.json").write_text(json.dumps(list(done.values()), indent=2))
    table = markdown([done[n] for n in ROWS if n in done])
    Path(f"{out}_dev.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
