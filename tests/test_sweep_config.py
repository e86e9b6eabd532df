"""Sweep configs: validation names the field, the value and what is allowed; expansion."""

from __future__ import annotations


import pytest

from cluster.config import ConfigError, expand, load, parse, run_id


def _cfg(**over):
    base = {"name": "t", "kind": "dip", "fixed": {"size": 32, "width": 4, "iterations": 10}, "grid": {}}
    base.update(over)
    return base


def test_expansion_applies_task_axes_only_to_their_task():
    cfg = parse(_cfg(grid={"task": ["denoise", "inpaint"], "region": [8, 16], "arch": ["seed-double", "seed-single"]}))
    trials = expand(cfg)
    denoise = [t for t in trials if t["params"]["task"] == "denoise"]
    inpaint = [t for t in trials if t["params"]["task"] == "inpaint"]
    # region multiplies inpainting only: 2 archs for denoise, 2 archs x 2 regions for inpaint
    assert len(denoise) == 2 and len(inpaint) == 4
    assert all(t["params"]["region"] is None for t in denoise)
    assert len({t["run_id"] for t in trials}) == len(trials)


def test_groups_switch_kind_and_inherit_only_accepted_settings():
    cfg = parse(_cfg(
        fixed={"size": 32, "sigma": 0.2, "width": 4, "iterations": 10},
        groups=[{"name": "dip", "grid": {"loss": ["l1", "l2"]}},
                {"name": "base", "kind": "dip-baseline", "grid": {"method": ["nlm", "tv"]}}],
    ))
    trials = expand(cfg)
    kinds = sorted(t["kind"] for t in trials)
    assert kinds == ["dip", "dip", "dip-baseline", "dip-baseline"]
    base = [t for t in trials if t["kind"] == "dip-baseline"]
    assert all(t["params"]["sigma"] == 0.2 and "width" not in t["params"] for t in base)


def test_run_id_is_deterministic_and_parameter_sensitive():
    a = expand(parse(_cfg()))[0]
    b = expand(parse(_cfg()))[0]
    assert a["run_id"] == b["run_id"] == run_id("dip", a["params"])
    c = expand(parse(_cfg(fixed={"size": 32, "width": 4, "iterations": 11})))[0]
    assert c["run_id"] != a["run_id"]


@pytest.mark.parametrize(
    "over, field, value, allowed",
    [
        ({"fixed": {"archh": "skip"}}, "archh", "skip", "Extra inputs are not permitted"),
        ({"grid": {"arch": ["unet"]}}, "arch", "unet", "seed-double"),
        ({"fixed": {"size": 32, "depth": 5}}, "depth", "5", "allowed depths"),
        ({"fixed": {"size": 32, "task": "inpaint", "region": 32}}, "region", "32", "smaller than the image size"),
        ({"fixed": {"sigma": -0.1}}, "sigma", "-0.1", "greater than or equal to 0"),
        ({"fixed": {"loss": "l3"}}, "loss", "l3", "'l1', 'l2' or 'kl'"),
        ({"fixed": {"image": "/nonexistent/x.png"}}, "image", "/nonexistent/x.png", "bundled"),
        ({"kind": "dipp"}, "kind", "dipp", "allowed: dip"),
        ({"resources": {"cpu": 0}}, "resources.cpu", "0", "greater than 0"),
        ({"retries": -1}, "retries", "-1", "greater than or equal to 0"),
        ({"grid": {"depth": []}}, "grid", "", "no values"),
    ],
)
def test_bad_fields_are_named_with_value_and_what_is_allowed(over, field, value, allowed):
    with pytest.raises(ConfigError) as err:
        expand(parse(_cfg(**over)))
    msg = str(err.value)
    assert field in msg and value in msg and allowed in msg, msg


def test_unknown_top_level_key_and_bad_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: t\nkind: dip\ngird: {}\n")
    with pytest.raises(ConfigError, match="gird"):
        load(p)
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(p)
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "missing.yaml")


def test_image_folder_expands_to_its_files(tmp_path):
    from PIL import Image

    for n in ("a.png", "b.png"):
        Image.new("RGB", (40, 40), (200, 10, 10)).save(tmp_path / n)
    (tmp_path / "notes.txt").write_text("not an image")
    trials = expand(parse(_cfg(grid={"image": [str(tmp_path)]})))
    assert sorted(t["params"]["image"] for t in trials) == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]


def test_shipped_configs_validate():
    from pathlib import Path

    for path in sorted(Path("configs").glob("*.yaml")):
        cfg, _ = load(path)
        trials = expand(cfg)
        assert trials, path
    smoke = expand(load("configs/dip_smoke.yaml")[0])
    dip = [t for t in smoke if t["kind"] == "dip"]
    axes = {k: {str(t["params"].get(k)) for t in dip} for k in ("arch", "depth", "sigma", "loss", "task", "region")}
    assert axes["arch"] == {"seed-double", "seed-single", "skip"} and axes["depth"] == {"2", "4"} and len(axes["loss"]) == 3
    assert {"denoise", "inpaint"} == axes["task"] and len(axes["region"] - {"None"}) == 2


def test_the_smoke_sweep_puts_baselines_beside_dip_on_the_same_noisy_images():
    # The demo must show DIP against the classical denoisers: the same image, size, sigma and
    # seed give the same corrupted input, so Analysis can compare them run for run.
    smoke = expand(load("configs/dip_smoke.yaml")[0])
    noisy = lambda t: (t["params"]["image"], t["params"]["size"], t["params"]["sigma"], t["params"]["seed"])
    baselines = [t for t in smoke if t["kind"] == "dip-baseline"]
    skip = [t for t in smoke if t["params"].get("arch") == "skip"]
    assert {t["params"]["method"] for t in baselines} >= {"nlm", "tv", "wavelet"}
    assert {noisy(t) for t in baselines} == {noisy(t) for t in skip}


def test_group_resources_override_the_sweep_default():
    cfg = parse(_cfg(resources={"cpu": 2, "gpu": 0.25},
                     groups=[{"name": "dip"}, {"name": "b", "kind": "dip-baseline", "fixed": {"method": "tv"},
                                               "resources": {"cpu": 1, "custom": {"big": 1}}}]))
    res = {t["kind"]: t["resources"] for t in expand(cfg)}
    assert res == {"dip": {"CPU": 2, "GPU": 0.25}, "dip-baseline": {"CPU": 1, "big": 1}}
