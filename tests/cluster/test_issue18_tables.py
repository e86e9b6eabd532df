"""Issue 18: the command line's tables over a whole search. Numbers keep their significant
digits, searched parameters show (also when ASHA pruned all but one run), pruned runs carry the
summary of what they ran, `priorlab runs` fits a terminal and names the sweeps that exist, CSV
keeps integers, and "best" compares settings on the same data.

Stores are written with the store's own API and the writer class itself (no Ray)."""

from __future__ import annotations

import io

import pandas as pd

from priorlab.analysis.store import Store
from priorlab.cluster.cli import main
from priorlab.cluster.tables import best_table
from priorlab.cluster.writer import StoreWriter

LRS = [1e-4, 3.2e-4, 1e-3, 3e-3, 0.01, 0.0316]


def asha_store(root) -> Store:
    """A random search over lr and arch where ASHA stopped all runs but one, as the writer
    records it: rows logged, then `pruned`, then the stopped trial's last step."""
    w = StoreWriter(str(root))
    w.upsert_sweep("asha", "kind: dip\n", "host")
    runs = [{"run_id": f"r{i}", "kind": "dip",
             "params": {"task": "denoise", "image": "astronaut", "size": 64, "lr": lr,
                        "arch": "skip" if i % 2 else "seed-double", "iterations": 300}}
            for i, lr in enumerate(LRS)]
    w.register_runs("asha", runs)
    for i, r in enumerate(runs):
        w.start_run(r["run_id"], "node-a")
        w.log(r["run_id"], [(10, "psnr", 18.0 + i), (10, "ssim", 0.5), (10, "psnr_ema", 17.0 + i),
                            (20, "psnr", 19.0 + i), (20, "ssim", 0.6), (20, "psnr_ema", 18.5 + i)], [])
        if i == 0:
            w.finish_run(r["run_id"], "done", {"best_psnr": 30.0, "input_psnr": 20.0, "best_step": 300}, None)
        else:
            w.mark_unfinished([r["run_id"]], "pruned")
            w.log(r["run_id"], [(30, "psnr", 18.5 + i), (30, "psnr_ema", 18.7 + i)], [])  # the step after the stop
    w.flush()
    return w.store


def test_pruned_runs_carry_the_summary_of_what_they_ran(tmp_path):
    store = asha_store(tmp_path / "s")
    runs = store.runs(sweep="asha").set_index("run_id")
    r = runs.loc["r3"]
    assert r["status"] == "pruned"
    assert r["best_psnr"] == 22.0 and r["best_step"] == 20 and r["final_psnr"] == 21.5
    assert r["pruned_at"] == 30 and r["iterations_done"] == 30 and r["best_psnr_ema"] == 21.7
    assert r["reference"] == "image", "scored against a clean image, as the finished runs say"
    assert runs.loc["r0", "best_psnr"] == 30.0  # a run that finished keeps its own summary


def test_runs_table_keeps_significant_digits_and_shows_pruned_summaries(tmp_path, capsys):
    asha_store(tmp_path / "s")
    assert main(["runs", "--store", str(tmp_path / "s"), "--sweep", "asha"]) == 0
    out = capsys.readouterr().out
    for lr in ("0.0001", "0.00032", "0.001", "0.003", "0.01", "0.0316"):
        assert f" {lr} " in out, out
    assert "0.00 " not in out
    # (the finished column holds a space: "YYYY-MM-DD HH:MM")
    header = ["date", *out.splitlines()[0].split()]
    pruned = dict(zip(header, next(line.split() for line in out.splitlines() if line.split()[0] == "r3")))
    assert pruned["best_psnr"] == "22" and pruned["pruned_at"] == "30" and pruned["run"] == "pruned", out
    assert "image" not in out.splitlines()[0] and "size" not in out.splitlines()[0]  # constant: not a column


def test_end_summary_shows_what_the_search_varied_when_asha_pruned_all_but_one(tmp_path):
    store = asha_store(tmp_path / "s")
    table = best_table(store, "asha")
    header = table.splitlines()[1].split()
    assert "lr" in header and "arch" in header, table
    assert "0.0001" in table and "0.00 " not in table
    assert "5 pruned" in table


def test_runs_with_an_unknown_sweep_names_the_sweeps_and_exits_2(tmp_path, capsys):
    asha_store(tmp_path / "s")
    assert main(["runs", "--store", str(tmp_path / "s"), "--sweep", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'nope'" in err and "asha" in err


def test_runs_csv_writes_whole_numbers_as_integers(tmp_path, capsys):
    asha_store(tmp_path / "s")
    assert main(["runs", "--store", str(tmp_path / "s"), "--format", "csv"]) == 0
    text = capsys.readouterr().out
    df = pd.read_csv(io.StringIO(text))
    assert ",64," in text and "64.0" not in text
    assert df["best_step"].dropna().astype(int).tolist()


def test_runs_table_splits_a_dict_parameter_and_lists_a_single_runs_parameters(tmp_path, capsys):
    store = Store(tmp_path / "s")
    store.upsert_sweep("sg", "kind: stylegan-direction\n", "host")
    clf = {"source": "builtin:redness", "positive": "redder", "negative": "less red", "threshold": 0.5,
           "labels": ["a" * 60, "b" * 60], "weights": None}
    store.register_runs("sg", [{"run_id": f"s{i}", "kind": "stylegan-direction",
                                "params": {"generator": "random:32", "classifier": {**clf, "threshold": t}, "seed": 0}}
                               for i, t in enumerate((0.4, 0.6))])
    for i in range(2):
        store.start_run(f"s{i}")
        store.finish_run(f"s{i}", "done", {"z_val_accuracy": 0.9})
    assert main(["runs", "--store", str(tmp_path / "s")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "classifier.threshold" in lines[0] and "classifier.source" not in lines[0]
    assert max(len(line) for line in lines) < 120

    one = Store(tmp_path / "one")
    one.upsert_sweep("x", "kind: dip\n", "host")
    one.register_runs("x", [{"run_id": "only1", "kind": "dip", "params": {"arch": "skip", "lr": 1e-4}}])
    assert main(["runs", "--store", str(tmp_path / "one")]) == 0
    out = capsys.readouterr().out
    assert "arch=skip" in out and "lr=0.0001" in out


def test_best_settings_compare_settings_on_the_same_images(tmp_path):
    """The easy image gives every setting a high PSNR; arch B beats A on both images, but A
    ran twice on the easy one: ranked across images, A would look best."""
    store = Store(tmp_path / "s")
    store.upsert_sweep("grid", "kind: dip\n", "host")
    rows = [("a1", "A", "easy", 0, 30.0), ("a2", "A", "easy", 1, 30.2), ("a3", "A", "hard", 0, 20.0),
            ("b1", "B", "easy", 0, 30.5), ("b3", "B", "hard", 0, 22.0), ("b4", "B", "hard", 1, 22.1)]
    store.register_runs("grid", [{"run_id": r, "kind": "dip", "params": {"task": "denoise", "arch": a, "image": im,
                                                                         "seed": sd}} for r, a, im, sd, _ in rows])
    for r, *_, psnr in rows:
        store.start_run(r)
        store.finish_run(r, "done", {"best_psnr": psnr})
    table = best_table(store, "grid")
    first = table.splitlines()[2].split()
    assert first[0] == "B", table
    assert "same image, seed" in table.splitlines()[0]


def test_a_pruned_photo_with_no_clean_copy_says_it_had_no_reference():
    import pandas as pd

    from priorlab.analysis.partial import summary_from_metrics

    rows = pd.DataFrame({"step": [10, 20], "name": ["loss", "loss"], "value": [0.3, 0.2]})
    summary = summary_from_metrics(rows)
    assert summary["reference"] == "none" and "best_psnr" not in summary
