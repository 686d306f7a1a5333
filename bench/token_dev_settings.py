"""Token students' settings on the dev split of a finished token run (the demo-ner run by default).

For the distilled linear student: kd_kl temperature x L2 penalty, scored by entity agreement F1 with the
teacher on the dev sentences; for its label-trained twin: the L2 penalty, scored by gold entity F1 on dev
(the twin knows no teacher). The run's saved teacher labels the run's transfer set once; the test split is
not read.

    python bench/token_dev_settings.py [--run runs/demo-ner] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=str(ROOT / "runs" / "demo-ner"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--temperatures", default="0.5,1,2")
    parser.add_argument("--l2", default="0.3,1,3")
    args = parser.parse_args()

    import numpy as np

    from kdcore.config import DistillConfig, StudentConfig
    from kdcore.runs import load_run
    from kdcore.students import TokenLinearStudent
    from kdcore.tasks.token.metrics import decode, entity_scores
    from kdcore.utils import configure_threads

    configure_threads(args.threads)
    run = load_run(args.run)
    dev = run.split("dev")
    teacher = run.teacher
    names = teacher.label_names
    transfer = [json.loads(line)["tokens"] for line in (Path(args.run) / "data" / "transfer.jsonl").read_text().splitlines()]
    flat = run.array("teacher_logits.npy")
    logits = np.split(flat, np.cumsum([len(s) for s in transfer])[:-1])
    n_train = run.manifest["datasets"]["train"]["size"]
    teacher_dev = decode(teacher.predict_word_logits(dev.sentences), names)
    gold_dev = dev.gold_entities()
    print(f"dev: {len(dev)} sentences; teacher dev entity F1 {entity_scores(gold_dev, teacher_dev)['f1']:.4f}")
    print("distilled linear: temperature, l2 -> dev entity agreement F1 with the teacher")
    for temperature in map(float, args.temperatures.split(",")):
        for l2 in map(float, args.l2.split(",")):
            started = time.perf_counter()
            student = TokenLinearStudent(StudentConfig(kind="token_linear", l2=l2))
            student.fit_sentences(transfer, teacher_logits=logits, label_names=names,
                                  distill=DistillConfig(temperature=temperature))
            agreement = entity_scores(teacher_dev, student.tag(dev.sentences))["f1"]
            print(f"  T={temperature:g} l2={l2:g}: {agreement:.4f}  ({time.perf_counter() - started:.0f} s)", flush=True)
    print("label-trained twin (linear): l2 -> dev gold entity F1, dev entity agreement F1 with the teacher")
    gold_train = _gold_train(run, transfer[:n_train])
    for l2 in map(float, args.l2.split(",")):
        student = TokenLinearStudent(StudentConfig(kind="token_linear", l2=l2))
        student.fit_sentences(transfer[:n_train], tags=gold_train, label_names=names)
        tags = student.tag(dev.sentences)
        print(f"  l2={l2:g}: gold {entity_scores(gold_dev, tags)['f1']:.4f}, agreement "
              f"{entity_scores(teacher_dev, tags)['f1']:.4f}", flush=True)


def _gold_train(run, sentences):
    """Gold tags of the training sentences, re-read from the embedded corpus the run names (a run stores
    its dev and test splits, not its training split)."""
    from kdcore.config import RunSpec
    from kdcore.tasks import get_task

    spec = RunSpec.from_dict(run.manifest["spec"])
    corpus = get_task("token").load_corpus(spec.data).with_label_order(run.label_names)
    if [list(s) for s in corpus.train.sentences] != [list(s) for s in sentences]:
        raise SystemExit("The run's training sentences differ from its corpus's; cannot pair the gold tags.")
    return corpus.train.tags


if __name__ == "__main__":
    main()
