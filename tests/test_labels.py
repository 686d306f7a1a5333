"""A teacher's classes are matched to the data's by name, mapped, or refused; never renamed."""

import numpy as np
import pytest

from kdcore.data import TextDataset
from kdcore.labels import LabelMismatch, align_labels, parse_label_map
from kdcore.teacher import Teacher

from conftest import make_tiny_model_dir


def test_same_names_in_another_order_keep_the_model_order():
    assert align_labels(["sadness", "joy", "anger"], ["anger", "joy", "sadness"]) == ["sadness", "joy", "anger"]


def test_no_data_names_gives_the_model_names():
    assert align_labels(["neg", "pos"], None) == ["neg", "pos"]


def test_different_names_are_refused_naming_both_sets():
    with pytest.raises(LabelMismatch) as err:
        align_labels(["rotten", "fresh"], ["great", "other"])
    message = str(err.value)
    assert "rotten" in message and "fresh" in message and "great" in message and "other" in message
    assert "--label-map" in message


def test_label_map_renames_teacher_classes_onto_the_data():
    assert align_labels(["rotten", "fresh"], ["great", "other"], "fresh=great,rotten=other") == ["other", "great"]


@pytest.mark.parametrize("bad", ["fresh=great", "fresh=great,rotten=great", "fresh=great,mild=other,rotten=other"])
def test_incomplete_or_colliding_label_maps_are_refused(bad):
    with pytest.raises(LabelMismatch):
        align_labels(["rotten", "fresh"], ["great", "other"], bad)


def test_malformed_label_map_text():
    with pytest.raises(LabelMismatch, match="TEACHER_CLASS=DATA_CLASS"):
        parse_label_map("fresh:great")
    assert parse_label_map("a=b, c=d") == {"a": "b", "c": "d"}


def test_generic_names_match_by_index_only_when_asked():
    with pytest.raises(LabelMismatch, match="--labels-by-index"):
        align_labels(["LABEL_0", "LABEL_1"], ["neg", "pos"])
    assert align_labels(["LABEL_0", "LABEL_1"], ["neg", "pos"], by_index=True) == ["neg", "pos"]
    with pytest.raises(LabelMismatch, match="equal counts"):
        align_labels(["LABEL_0", "LABEL_1"], ["a", "b", "c"], by_index=True)


def test_dataset_reindexed_to_the_teacher_order_keeps_every_row_meaning():
    data = TextDataset(["x", "y", "z", "w"], np.array([0, 1, 2, -1]), ["anger", "joy", "sadness"])
    reordered = data.with_label_order(["sadness", "joy", "anger"])
    assert reordered.label_names == ["sadness", "joy", "anger"]
    assert reordered.labels.tolist() == [2, 1, 0, -1]
    before = [data.label_names[i] if i >= 0 else None for i in data.labels]
    after = [reordered.label_names[i] if i >= 0 else None for i in reordered.labels]
    assert before == after
    with pytest.raises(ValueError, match="not the same names"):
        data.with_label_order(["anger", "joy"])


def test_pretrained_teacher_with_another_class_order_scores_the_data_right(tmp_path):
    folder = make_tiny_model_dir(tmp_path / "emotions", label_names=("sadness", "joy", "anger"), seed=3)
    data = TextDataset(["a", "b", "c", "d", "e", "f"], np.array([0, 1, 2, 0, 1, 2]), ["anger", "joy", "sadness"])
    teacher = Teacher.from_pretrained(folder, label_names=data.label_names, device="cpu")
    assert teacher.label_names == ["sadness", "joy", "anger"]  # the model's outputs are never renamed
    aligned = data.with_label_order(teacher.label_names)
    predicted = teacher.predict_logits(aligned.texts).argmax(axis=1)
    # Accuracy computed by class name equals accuracy computed on the re-indexed ids.
    by_name = np.mean([teacher.label_names[p] == data.label_names[g] for p, g in zip(predicted, data.labels)])
    assert np.mean(predicted == aligned.labels) == pytest.approx(by_name)


def test_pretrained_teacher_with_foreign_classes_is_refused(tmp_path):
    folder = make_tiny_model_dir(tmp_path / "fresh", label_names=("rotten", "fresh"), seed=4)
    with pytest.raises(LabelMismatch, match=r"\[rotten, fresh\].*\[great, other\]"):
        Teacher.from_pretrained(folder, label_names=["great", "other"], device="cpu")
    mapped = Teacher.from_pretrained(folder, label_names=["great", "other"], label_map={"fresh": "great",
                                                                                      "rotten": "other"}, device="cpu")
    assert mapped.label_names == ["other", "great"]


def _dataset(label_values):
    names = sorted(set(label_values))
    return TextDataset([f"text {i}" for i in range(len(label_values))],
                       np.array([names.index(v) for v in label_values]), names)


def test_check_labels_clean_multiclass_has_no_findings():
    from kdcore.labels import check_labels

    assert check_labels(_dataset(["a"] * 10 + ["b"] * 10 + ["c"] * 10)) == []
    assert check_labels(TextDataset(["x", "y"], None, [])) == []


def test_check_labels_text_spilled_into_the_label_column():
    from kdcore.labels import check_labels

    values = [f"value {i}" for i in range(60)] + ["value 1"] * 5
    findings = check_labels(_dataset(values))
    assert [f.level for f in findings][:1] == ["error"] and "distinct values" in findings[0].message


def test_check_labels_label_that_reads_like_text():
    from kdcore.labels import check_labels

    values = ["this film was a real joy to watch from start to end"] * 6 + ["dull and far too long for what it is"] * 6
    assert any(f.level == "error" and "reads like text" in f.message for f in check_labels(_dataset(values)))


def test_check_labels_single_class_is_an_error():
    from kdcore.labels import check_labels

    assert any(f.level == "error" and "at least two" in f.message for f in check_labels(_dataset(["a"] * 9)))


def test_rare_classes_are_warned_about_and_dropped_out_loud():
    from kdcore.labels import check_labels, drop_rare_classes

    data = _dataset(["a"] * 10 + ["b"] * 10 + ["rare"] * 2)
    findings = check_labels(data)
    assert [f.level for f in findings] == ["warning"] and "rare (2)" in findings[0].message
    kept = drop_rare_classes(data)
    assert kept.label_names == ["a", "b"] and len(kept) == 20
    assert [kept.label_names[i] for i in kept.labels] == ["a"] * 10 + ["b"] * 10


def test_majority_accuracy():
    from kdcore.labels import majority_accuracy

    assert majority_accuracy([0, 0, 0, 1, -1]) == pytest.approx(0.75)


# ------------------------------------------------------------------------------ label values that are not classes
@pytest.mark.parametrize("variants", [["positive", "Positive"], ["positive", "POSITIVE "], ["very positive", "Very  positive"]])
def test_label_values_differing_in_case_or_spacing_are_named_and_refused(tmp_path, variants):
    from kdcore.labels import check_labels
    from kdcore.readers import read_csv

    rows = [(f"text {i}", variants[0]) for i in range(8)] + [(f"other {i}", variants[1]) for i in range(6)]
    rows += [(f"bad {i}", "negative") for i in range(8)]
    path = tmp_path / "labels.csv"
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    errors = [f.message for f in check_labels(read_csv(path)) if f.level == "error"]
    assert len(errors) == 1 and "differ only in case or spacing" in errors[0]
    assert "(8 rows)" in errors[0] and "(6 rows)" in errors[0] and "replace" in errors[0]


@pytest.mark.parametrize("na", ["NA", "N/A", "null", "None", "nan", " n/a "])
def test_na_like_label_values_are_named_and_refused(tmp_path, na):
    from kdcore.labels import check_labels
    from kdcore.readers import read_csv

    rows = [(f"good {i}", "pos") for i in range(8)] + [(f"bad {i}", "neg") for i in range(8)]
    rows += [(f"unknown {i}", na) for i in range(5)] + [("no label at all", "")]
    path = tmp_path / "na.csv"
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    dataset = read_csv(path)
    assert dataset.report.missing_labels == 1  # an empty cell is a missing label, dropped and counted
    errors = [f.message for f in check_labels(dataset) if f.level == "error"]
    assert len(errors) == 1 and "read as a missing label" in errors[0] and f"{na.strip()!r} (5 rows)" in errors[0]
    assert "Leave those cells empty" in errors[0]


def test_a_build_on_label_variants_is_refused_before_any_folder(tmp_path, tiny_model_dir):
    from kdcore.config import DataSource, RunSpec
    from kdcore.data import DataError
    from kdcore.pipeline import build_run

    path = tmp_path / "variants.csv"
    rows = [f"good film {i},positive" for i in range(12)] + [f"great film {i},Positive" for i in range(6)]
    rows += [f"bad film {i},negative" for i in range(12)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    spec = RunSpec("variants", teacher_source=str(tiny_model_dir), teacher_is_encoder=False,
                   data=DataSource(path=str(path)), cache_dir=None, threads=1)
    with pytest.raises(DataError, match="'positive' \\(12 rows\\), 'Positive' \\(6 rows\\) differ only in case"):
        build_run(spec, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_labels_by_index_only_for_placeholder_names():
    # Real names that match the data's: by position would invert them.
    with pytest.raises(LabelMismatch, match="match the data's by name: drop --labels-by-index"):
        align_labels(["pos", "neg"], ["neg", "pos"], by_index=True)
    with pytest.raises(LabelMismatch, match="--label-map"):
        align_labels(["rotten", "fresh"], ["neg", "pos"], by_index=True)
    assert align_labels(["pos", "neg"], ["neg", "pos"]) == ["pos", "neg"]  # matched by name, the model's order
    assert align_labels(["LABEL_0", "LABEL_1"], ["neg", "pos"], by_index=True) == ["neg", "pos"]


def test_a_teacher_with_real_names_is_not_inverted_by_labels_by_index(tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "named", label_names=("pos", "neg"))
    with pytest.raises(LabelMismatch, match="drop --labels-by-index"):
        Teacher.from_pretrained(model_dir, label_names=["neg", "pos"], labels_by_index=True, device="cpu")
