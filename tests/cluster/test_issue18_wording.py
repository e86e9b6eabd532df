"""Issue 18 defect 11 (CLI): what a new user reads when a flag is wrong, and the progress bars."""

from __future__ import annotations

import pytest

from priorlab.cluster.cli import main


def _err(argv, tmp_path, capsys) -> str:
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err  # one line, never a header plus a field list
    assert "Value error" not in err, err  # pydantic's prefix is noise to a user
    return err


def test_a_bad_flag_is_one_line_naming_the_flag_the_value_and_what_is_allowed(tmp_path, capsys):
    err = _err(["dip", "--depth", "5", "--size", "32"], tmp_path, capsys)
    assert "--depth 5" in err and "allowed depths for size 32: [1, 2, 3]" in err, err


def test_two_bad_flags_are_still_one_line(tmp_path, capsys):
    err = _err(["dip", "--depth", "9", "--loss", "l3"], tmp_path, capsys)
    assert "--depth 9" in err and "--loss l3" in err, err


@pytest.mark.parametrize("flag, value, near", [("--arch", "Skip", "skip"), ("--loss", "L2", "l2"),
                                                ("--arch", "skp", "skip")])
def test_a_near_miss_gets_did_you_mean(flag, value, near, tmp_path, capsys):
    err = _err(["dip", flag, value], tmp_path, capsys)
    assert f"did you mean {near!r}" in err, err


def test_sigma_on_the_0_255_scale_says_sigma_is_in_0_1_units(tmp_path, capsys):
    err = _err(["dip", "--sigma", "25"], tmp_path, capsys)
    assert "0-1 units" in err and "25/255" in err and "0.098" in err, err


def test_a_plugin_that_does_not_import_mentions_pythonpath(tmp_path, capsys):
    err = _err(["dip", "--loss", "nosuchmodule_h18a:fn"], tmp_path, capsys)
    assert "cannot import" in err and "PYTHONPATH" in err, err
    err = _err(["dip", "--arch", "nosuchmodule_h18a:net"], tmp_path, capsys)
    assert "PYTHONPATH" in err, err


def test_a_classifier_that_does_not_import_mentions_pythonpath():
    from priorlab.tasks.plugins import PYTHONPATH_HINT, resolve

    with pytest.raises(ValueError, match="PYTHONPATH"):
        resolve("nosuchmodule_h18a:classify")
    assert "PYTHONPATH" in PYTHONPATH_HINT


def test_baseline_shows_no_empty_0it_progress_bar(tmp_path, capsys):
    assert main(["baseline", "--method", "tv", "--size", "32", "--sigma", "0.2", "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "0it" not in err and "it/s" not in err, err


def test_the_packed_trial_bar_counts_trials_not_runs():
    pytest.importorskip("ray")
    from priorlab.cluster.progress import ProgressCallback

    cb = ProgressCallback(total=3, desc="x trials", unit="trial")
    try:
        assert cb.bar.unit == "trial"
    finally:
        cb.bar.close()
    import inspect

    from priorlab.cluster import sweep

    src = inspect.getsource(sweep._fit)
    assert '"pack": "trial"' in src  # the sweep gives the pack phase's bar the unit it counts
