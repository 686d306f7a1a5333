"""The command line: --help everywhere, evaluate / explain / report on a run, clear errors."""

from __future__ import annotations

import pytest

from kdcore.cli import build_parser, main


@pytest.mark.parametrize("command", ["demo", "distill", "evaluate", "explain", "report"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_evaluate_prints_the_model_table(tiny_run_dir, capsys):
    assert main(["evaluate", "--run", str(tiny_run_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("teacher", "linear", "linear-labels", "mlp", "mlp-labels"):
        assert name in out
    assert "fidelity" in out


def test_evaluate_refresh_measures_an_older_run_again(tiny_run_dir, tmp_path, capsys):
    """A run written before intervals existed gets them (and its twin margins) from --refresh; the
    numbers it had are measured again, not copied, and what only the build knew is kept."""
    import json
    import shutil

    from kdcore.runs import load_run, update_run_metrics

    copy = tmp_path / "older"
    shutil.copytree(tiny_run_dir, copy)
    run = load_run(copy)
    metrics = json.loads(json.dumps(run.metrics))
    kept = metrics["models"]["linear"]["fidelity"]
    for entry in metrics["models"].values():
        for key in ("accuracy_ci", "fidelity_ci", "macro_f1_ci", "fidelity_over_twin"):
            entry.pop(key, None)
    metrics["models"]["linear"]["fidelity"] = -1.0  # a stale number is replaced, not kept
    metrics["findings"] = [{"level": "warning", "message": "kept"}]
    update_run_metrics(run, metrics)
    assert main(["evaluate", "--run", str(copy), "--refresh", "--threads", "1"]) == 0
    assert "95% CI" in capsys.readouterr().out
    fresh = load_run(copy).metrics
    assert fresh["models"]["linear"]["fidelity"] == pytest.approx(kept)
    assert fresh["models"]["linear"]["fidelity_over_twin"]["twin"] == "linear-labels"
    assert fresh["models"]["teacher"]["accuracy_ci"] and fresh["findings"] == [{"level": "warning", "message": "kept"}]


def test_explain_prints_every_model_side_by_side(tiny_run_dir, capsys):
    assert main(["explain", "good film , bad plot", "--run", str(tiny_run_dir), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("word"))
    assert all(name in header for name in ("teacher", "linear", "mlp"))
    assert "good" in out and "p(target)" in out


def test_demo_reuses_a_finished_run(tiny_run_dir, capsys):
    assert main(["demo", "--runs-dir", str(tiny_run_dir.parent), "--name", tiny_run_dir.name]) == 0
    assert "is ready" in capsys.readouterr().out


def test_missing_run_and_bad_name_are_clear_errors(tmp_path, capsys):
    assert main(["evaluate", "--run", "nothing-here", "--runs-dir", str(tmp_path)]) == 2
    assert "not a finished kd-lens run" in capsys.readouterr().err
    assert main(["evaluate", "--run", "../no-such-escape", "--runs-dir", str(tmp_path)]) == 2
    assert "not allowed" in capsys.readouterr().err


def test_distill_on_an_unreadable_file_says_what_to_do(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00\x01binary\x00\x00")
    assert main(["distill", "--name", "x", "--data", str(bad), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err) > 30
    assert not (tmp_path / "x").exists()
