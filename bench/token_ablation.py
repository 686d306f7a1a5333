"""Which levers make a readable token student agree with the tagger: an ablation on the dev split.

Levers, each alone and together, on the token demo's teacher (MiniLM fine-tuned on WNUT-16):

- teacher features: the teacher's log-probabilities on each word and its three-word window taken
  alone, as named dense features (kdcore/students/token_teacher_features.py);
- CRF: a linear-chain CRF student trained with the structural distillation loss, decoded by its own
  Viterbi (kdcore/students/crf.py, token_crf.py);
- mention replacement: the demo's transfer set plus mention-replacement and tag-keeping
  substitution variants of the training sentences, labelled by the teacher (kdcore/augment_tokens.py).

The baseline is the demo's linear token student on the demo's transfer set. Every row is scored on the
dev sentences: entity agreement F1 with the teacher's decoded tags (exact span and type) and word
fidelity. With ``--test`` the best dev row and its label-trained twin (the same student on the gold
tags of the training sentences) are scored once on the test split, with intervals.

    python bench/token_ablation.py --run /tmp/h19runs/demo-ner [--test]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdcore.augment_tokens import augment_token_sentences  # noqa: E402
from kdcore.tasks.token.bio import entities  # noqa: E402
from kdcore.config import DistillConfig, StudentConfig  # noqa: E402
from kdcore.students import TokenLinearStudent  # noqa: E402
from kdcore.students.token_crf import TokenCRFConfig, TokenCRFStudent  # noqa: E402
from kdcore.students.token_teacher_features import TeacherWordFeatures, TokenTeacherCache  # noqa: E402
from kdcore.tasks.token.metrics import (bootstrap_f1_difference, decode, entity_counts, entity_scores,  # noqa: E402
                                  per_type_report, per_type_text, word_fidelity)
from kdcore.tasks import get_task  # noqa: E402
from kdcore.tasks.token.fit import augment_sentences  # noqa: E402

# (row name, student, transfer set): "linear" is the demo's student; the others TokenCRFStudent settings.
ROWS = [
    ("baseline: window linear (demo student)", "linear", "demo"),
    ("window linear, own L-BFGS trainer", {"crf": False, "teacher_terms": ""}, "demo"),
    ("+ teacher word/window features", {"crf": False, "teacher_terms": "word+window"}, "demo"),
    ("+ CRF", {"crf": True, "teacher_terms": ""}, "demo"),
    ("+ mention replacement transfer set", "linear", "augmented"),
    ("teacher features + CRF", {"crf": True, "teacher_terms": "word+window"}, "demo"),
    ("teacher features + mention replacement", {"crf": False, "teacher_terms": "word+window"}, "augmented"),
    ("all together", {"crf": True, "teacher_terms": "word+window"}, "augmented"),
]


def _load(run: Path, cache: Path):
    from kdcore.config import DataSource
    from kdcore.tasks.token.teacher import TokenTeacher

    corpus = get_task("token").load_corpus(DataSource(corpus="wnut16"))
    teacher = TokenTeacher.from_pretrained(run / "teacher", label_names=corpus.label_names, device="cpu")
    teacher.cache_dir = cache
    return corpus.with_label_order(teacher.label_names), teacher


def _transfer_sets(corpus, teacher, mention_copies, word_copies):
    train = [list(s) for s in corpus.train.sentences]
    demo = train + augment_sentences(train, 2, 0.1, 0)  # the demo's transfer set (DistillConfig defaults)
    gold = [corpus.train.tag_names(i) for i in range(len(corpus.train))]
    extra = augment_token_sentences(train, gold, mention_copies=mention_copies, word_copies=word_copies)
    seen = {tuple(s) for s in demo}
    augmented = demo + [s for s in extra if tuple(s) not in seen]
    logits = teacher.predict_word_logits(augmented)
    return {"demo": (demo, logits[:len(demo)]), "augmented": (augmented, logits)}


def _fit(spec, sentences, logits, source, l2, tags=None, max_iter=150, temperature=0.5, targets="marginals"):
    """``source``: the teacher's word-feature cache (the CRF-module students read it)."""
    names = list(source.teacher.label_names)
    if spec == "linear":
        student = TokenLinearStudent(StudentConfig(kind="token_linear", name="linear", l2=0.03))
        if tags is not None:
            return student.fit_sentences(sentences, tags=tags, label_names=names, device="cpu")
        return student.fit_sentences(sentences, teacher_logits=logits, label_names=names, distill=DistillConfig(),
                                     device="cpu")
    student = TokenCRFStudent(TokenCRFConfig(l2=l2, max_iter=max_iter, temperature=temperature, targets=targets, **spec))
    if tags is not None:
        return student.fit_sentences(sentences, tags=tags, label_names=names, teacher=source)
    return student.fit_sentences(sentences, teacher_logits=logits, label_names=names, teacher=source)


def _score(student, sentences, teacher_tags) -> dict:
    tags = student.tag(sentences)
    agreement = entity_scores(teacher_tags, tags)
    return {"f1": agreement["f1"], "precision": agreement["precision"], "recall": agreement["recall"],
            "fidelity": word_fidelity(tags, teacher_tags)["word_fidelity"], "tags": tags}


def _table(results) -> str:
    lines = ["| configuration | transfer sentences | entity agreement F1 | precision | recall | word fidelity | fit s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['row']} | {r['transfer']} | {r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} "
                     f"| {r['fidelity']:.4f} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def _interval(counts) -> list[float]:
    from kdcore.intervals import bootstrap

    def f1(idx):
        shared, predicted, reference = counts[idx].sum(axis=0)
        return 2 * shared / (predicted + reference) if predicted + reference else 1.0

    return list(bootstrap(f1, len(counts), n_boot=2000))


def _test(best, spec, transfer, corpus, teacher, cache, l2, max_iter) -> str:
    """The best dev configuration and its label-trained twin, scored once on the test split."""
    test = corpus.test.sentences
    teacher_tags = decode(teacher.predict_word_logits(test), teacher.label_names)
    twin = _fit(spec, corpus.train.sentences, None, cache, l2, tags=list(corpus.train.tags), max_iter=max_iter)
    rows, counts = {}, {}
    for name, student in (("distilled", best), ("label-trained twin", twin)):
        scored = _score(student, test, teacher_tags)
        counts[name] = entity_counts(teacher_tags, scored["tags"])
        rows[name] = {**scored, "ci": _interval(counts[name])}
        rows[name]["per_type"] = per_type_report(teacher_tags, scored["tags"])
    margin = bootstrap_f1_difference(counts["distilled"], counts["label-trained twin"])
    gold = [corpus.test.tag_names(i) for i in range(len(corpus.test))]
    lines = [f"Test split ({len(test)} sentences, {int(counts['distilled'][:, 2].sum())} teacher entities); "
             f"configuration: {transfer}",
             "", "| model | entity agreement F1 [95% CI] | word fidelity |", "|---|---|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['f1']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | {r['fidelity']:.4f} |")
    lines += ["", f"Margin distilled - twin: {margin['difference']:+.3f} [{margin['low']:+.3f}, {margin['high']:+.3f}] "
              f"(paired bootstrap over sentences, {margin['n_boot']} draws)", "",
              "Teacher on gold (per type):", "```", per_type_text(per_type_report(gold, teacher_tags)), "```",
              "Distilled student's agreement with the teacher (per type; the teacher's tags as reference):", "```",
              per_type_text(rows["distilled"]["per_type"]), "```"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=str(ROOT / "runs" / "demo-ner"))
    parser.add_argument("--cache", default="/tmp/kdcore_token_ablation_cache")
    parser.add_argument("--rows", default="0,2,3,4,7", help="comma-separated row numbers of ROWS (default: each lever "
                                                           "alone and all together)")
    parser.add_argument("--temperature", type=float, default=0.5, help="of the teacher's per-word distributions "
                                                                        "(the demo students' kd_kl default)")
    parser.add_argument("--targets", default="marginals", choices=("marginals", "path"))
    parser.add_argument("--max-iter", type=int, default=150, help="L-BFGS iterations of the CRF-module students")
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--mention-copies", type=int, default=2)
    parser.add_argument("--word-copies", type=int, default=1)
    parser.add_argument("--test", action="store_true", help="score the best dev row and its twin on test, once")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "token_ablation_dev.md"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # 2 shared cores: a second thread spins more than it helps
    started = time.perf_counter()
    corpus, teacher = _load(Path(args.run), Path(args.cache))
    sets = _transfer_sets(corpus, teacher, args.mention_copies, args.word_copies)
    dev = corpus.dev.sentences
    teacher_dev_tags = decode(teacher.predict_word_logits(dev), teacher.label_names)
    labelled = time.perf_counter() - started
    print(f"teacher labels: {labelled:.0f} s; transfer sets {', '.join(f'{k}={len(v[0])}' for k, v in sets.items())}",
          flush=True)
    cache = TokenTeacherCache(teacher, Path(args.cache) / "token_words")
    chosen = [int(k) for k in args.rows.split(",")] if args.rows else range(len(ROWS))
    if any(ROWS[k][1] != "linear" and ROWS[k][1]["teacher_terms"] for k in chosen):
        feature_started = time.perf_counter()
        TeacherWordFeatures(["word", "window"], teacher.label_names, source=cache).transform(sets["augmented"][0] + dev)
        print(f"teacher word/window features: {cache.computed} computed in {time.perf_counter() - feature_started:.0f} s",
              flush=True)
    results, students = [], {}
    for k in chosen:
        row, spec, transfer = ROWS[k]
        sentences, logits = sets[transfer]
        fit_started = time.perf_counter()
        student = _fit(spec, sentences, logits, cache, args.l2, max_iter=args.max_iter, temperature=args.temperature,
                       targets=args.targets)
        seconds = time.perf_counter() - fit_started
        scored = _score(student, dev, teacher_dev_tags)
        results.append({"row": row, "transfer": len(sentences), "seconds": seconds,
                        **{key: v for key, v in scored.items() if key != "tags"}})
        students[k] = student
        print(json.dumps(results[-1]), flush=True)
    table = _table(results)
    header = (f"Dev split: {len(dev)} sentences, {sum(len(t) for t in teacher_dev_tags)} words, "
              f"{sum(len(entities(t)) for t in teacher_dev_tags)} "
              f"teacher entities; CRF-module students l2={args.l2}, at most {args.max_iter} L-BFGS iterations, temperature {args.temperature}, targets {args.targets}; wall {time.perf_counter() - started:.0f} s.\n\n")
    Path(args.out).write_text(header + table + "\n", encoding="utf-8")
    print(header + table)
    if args.test:
        best = max(range(len(results)), key=lambda i: results[i]["f1"])
        k = list(chosen)[best]
        report = _test(students[k], ROWS[k][1], f"{ROWS[k][0]} ({ROWS[k][2]} transfer set)", corpus, teacher, cache,
                       args.l2, args.max_iter)
        Path(args.out.replace("_dev.md", "_test.md")).write_text(report + "\n", encoding="utf-8")
        print(report)


if __name__ == "__main__":
    main()
