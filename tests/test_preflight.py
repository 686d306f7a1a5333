"""The checks before a run starts (kdcore.preflight), from the CLI as the Distill view makes them."""

from __future__ import annotations

from kdcore.cli import main
from kdcore.preflight import preflight, teacher_label_names

ROWS = [f"a good fun film {i}" for i in range(12)] + [f"a dull boring plot {i}" for i in range(12)]


def _csv(tmp_path, labels, name="data.csv"):
    path = tmp_path / name
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(ROWS, labels)), encoding="utf-8")
    return path


def test_teacher_label_names_read_from_the_config(tiny_model_dir, tmp_path):
    assert teacher_label_names(str(tiny_model_dir)) == ["neg", "pos"]
    assert teacher_label_names(str(tmp_path / "nothing")) is None


def test_check_refuses_a_mismatch_and_accepts_the_mapping(tiny_model_dir, tmp_path, capsys):
    data = _csv(tmp_path, ["great"] * 12 + ["awful"] * 12)
    base = ["distill", "--name", "x", "--data", str(data), "--teacher", str(tiny_model_dir), "--check",
            "--runs-dir", str(tmp_path / "runs")]
    assert main(base) == 2
    out = capsys.readouterr().out
    assert "error:" in out and "[neg, pos]" in out and "[awful, great]" in out
    assert main(base + ["--label-map", "neg=awful,pos=great"]) == 0
    out = capsys.readouterr().out
    assert "neg→awful, pos→great" in out and "splits: train 20, dev 2, test 2" in out
    assert "training rows per class: awful 10, great 10" in out
    assert not (tmp_path / "runs").exists()  # a check writes nothing


def test_check_reports_label_column_problems(tiny_model_dir, tmp_path, capsys):
    from kdcore.config import DataSource, RunSpec

    spilled = _csv(tmp_path, [f"this is really a sentence number {i} of text" for i in range(24)], "spilled.csv")
    spec = RunSpec("x", teacher_source=str(tiny_model_dir), teacher_is_encoder=False,
                   data=DataSource(path=str(spilled), label_column="label"))
    result = preflight(spec)
    assert not result.ok and "reads like text" in " ".join(f["message"] for f in result.findings)
    rare = _csv(tmp_path, ["neg"] * 21 + ["pos"] * 3, "rare.csv")
    spec = RunSpec("x", data=DataSource(path=str(rare)))  # the embedded encoder, fine-tuned
    result = preflight(spec)
    levels = {f["level"] for f in result.findings}
    assert "warning" in levels and result.ok  # a rare class is dropped, said out loud, not refused
    assert any("fine-tuned" in f["message"] for f in result.findings)


def test_check_of_unlabelled_data_says_pure_distillation(tiny_model_dir, tmp_path):
    from kdcore.config import DataSource, RunSpec

    path = tmp_path / "texts.txt"
    path.write_text("\n".join(ROWS), encoding="utf-8")
    result = preflight(RunSpec("x", teacher_source=str(tiny_model_dir), teacher_is_encoder=False,
                               data=DataSource(path=str(path))))
    assert result.ok and result.class_counts == {}
    assert any("No gold labels" in f["message"] for f in result.findings)
    refused = preflight(RunSpec("x", data=DataSource(path=str(path))))  # an encoder cannot learn without labels
    assert not refused.ok and "no labels" in refused.findings[0]["message"]


def test_check_shows_every_finding_of_the_reader_with_counts(tiny_model_dir, tmp_path, capsys):
    """Empty texts whose label cell holds spilled text, duplicates with conflicting labels and copies in another
    case are named and counted by `distill --check`, before anything trains (and kept for the run's report)."""
    lines = ["text,label"] + [f"{t},{'pos' if i < 12 else 'neg'}" for i, t in enumerate(ROWS)]
    lines += [f"{ROWS[i]},{'neg' if i < 12 else 'pos'}" for i in (0, 1, 13)]  # the same text, the other label
    lines += [',"this is a whole review that spilled into the label column"'] * 4
    lines += [ROWS[2].upper() + ",pos"]
    path = tmp_path / "messy.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["distill", "--name", "x", "--data", str(path), "--teacher", str(tiny_model_dir), "--check",
            "--runs-dir", str(tmp_path / "runs")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 empty texts" in out and "4 of the empty texts have text in their label cell" in out
    assert "3 repeated texts carry a different label" in out and "except for case or spacing" in out
    assert "reader: rows read 32, rows kept 28" in out and "duplicates with another label 3" in out
    from kdcore.config import DataSource, RunSpec
    from kdcore.tasks import task_of

    spec = RunSpec("x", teacher_source=str(tiny_model_dir), teacher_is_encoder=False, data=DataSource(path=str(path)))
    task = task_of(spec)
    _, findings = task.check(spec, task.load_corpus(spec.data))  # what the run's metrics (and report) carry
    assert sum(f.get("check") == "reader" for f in findings) == 5  # empty, spilled, repeated, conflicting, case


def test_check_refuses_a_tokenizer_of_another_model(tmp_path, capsys):
    from conftest import TINY_WORDS, make_tiny_model_dir
    from transformers import BertTokenizerFast

    model_dir = make_tiny_model_dir(tmp_path / "model")
    vocab = [*TINY_WORDS[:2], "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS[2:]]  # as many tokens
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        (model_dir / name).unlink(missing_ok=True)
    BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True).save_pretrained(model_dir)
    data = _csv(tmp_path, ["pos"] * 12 + ["neg"] * 12)
    assert main(["distill", "--name", "x", "--data", str(data), "--teacher", str(model_dir), "--check",
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "pad token id is 0 but the tokenizer's is 2" in capsys.readouterr().out
