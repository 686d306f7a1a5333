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
