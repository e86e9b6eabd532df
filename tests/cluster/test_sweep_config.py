"""Sweep configs: validation names the field, the value and what is allowed; expansion."""

from __future__ import annotations


import pytest

from priorlab.cluster.config import load, parse
from priorlab.cluster.errors import ConfigError
from priorlab.cluster.expand import expand, run_id


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
        ({"fixed": {"archh": "skip"}}, "fixed.archh", "unknown key", "did you mean 'arch'?"),
        ({"grid": {"arch": ["unet"]}}, "arch", "unet", "seed-double"),
        ({"fixed": {"size": 32, "depth": 5}}, "depth", "5", "allowed depths"),
        ({"fixed": {"size": 32, "task": "inpaint", "region": 32}}, "region", "32", "smaller than the image size"),
        ({"fixed": {"sigma": -0.1}}, "sigma", "-0.1", "neither a noise strength in [0, 1] nor 'auto'"),
        ({"fixed": {"loss": "l3"}}, "loss", "l3", "'l1', 'l2' or 'kl'"),
        ({"fixed": {"image": "/nonexistent/x.png"}}, "image", "/nonexistent/x.png", "bundled"),
        ({"kind": "dipp"}, "kind", "dipp", "allowed: dip"),
        ({"resources": {"cpu": 0}}, "resources.cpu", "0", "greater than or equal to 0.0001"),
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
        if path.name == "stylegan_ffhq.yaml":  # placeholder paths: refused in one line before anything runs
            with pytest.raises(ConfigError, match=r"^generator '/data/models/ffhq.pkl': no such file"):
                expand(cfg)
            continue
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


# ---- hostile or broken config files: refused in one line, before anything runs ----

def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 600, msg
    return msg


def test_yaml_alias_bomb_is_refused_without_expanding(tmp_path):
    # "billion laughs": 9 levels of 9 aliases = 9**9 strings from a few hundred bytes.
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("name: *i")
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    assert p.stat().st_size < 1000
    with pytest.raises(ConfigError) as err:
        load(p)
    assert "aliases expand" in _one_line(err)


def test_a_huge_value_is_quoted_short_in_the_error(tmp_path):
    p = tmp_path / "big.yaml"
    items = ",".join(["x" * 50] * 2000)
    p.write_text("name: t\nkind: dip\nfixed: {size: 32, width: 4}\ndescription: [" + items + "]\n")
    with pytest.raises(ConfigError) as err:
        load(p)
    assert "description" in _one_line(err) and "..." in str(err.value)


def test_non_utf8_duplicate_keys_and_oversized_files_are_one_line_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_bytes(b"name: t\nkind: dip\ndescription: caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(ConfigError) as err:
        load(p)
    assert "not UTF-8" in _one_line(err) and "0xe9" in str(err.value)

    p.write_text("name: t\nkind: dip\nfixed:\n  size: 32\n  iterations: 10\n  iterations: 300\n")
    with pytest.raises(ConfigError) as err:
        load(p)
    msg = _one_line(err)
    assert "duplicate key 'iterations'" in msg and "line 6" in msg and "line 5" in msg

    p.write_text("name: t\nkind: dip\ndescription: '" + "x" * 1_100_000 + "'\n")
    with pytest.raises(ConfigError) as err:
        load(p)
    assert "too large" in _one_line(err)


def test_merge_keys_may_still_be_overridden(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: t\nkind: dip\nfixed: &b {size: 32, width: 4, iterations: 10}\n"
                 "groups: [{name: g, fixed: {<<: *b, iterations: 20}}]\n")
    cfg, _ = load(p)
    assert expand(cfg)[0]["params"]["iterations"] == 20


# ---- typos name the block they are in, the nearest valid key and the allowed keys ----

@pytest.mark.parametrize(
    "over, block, key, nearest",
    [
        # the typo in the top-level `fixed:` of a config with groups (named groups[0] on old main)
        ({"fixed": {"size": 32, "iteration": 300}, "groups": [{"name": "denoise"}]},
         "fixed", "iteration", "iterations"),
        ({"grid": {"sigmaa": [0.1]}}, "grid", "sigmaa", "sigma"),
        ({"groups": [{"name": "a"}, {"name": "b", "fixed": {"lossx": "l1"}}]}, "groups[1].fixed", "lossx", "loss"),
        ({"fixed": {"size": 32}, "groups": [{"name": "b", "kind": "dip-baseline", "grid": {"methd": ["tv"]}}]},
         "groups[0].grid", "methd", "method"),
        # a top-level key that no group's kind takes
        ({"fixed": {"size": 32, "sigam": 0.1}, "groups": [{"name": "b", "kind": "dip-baseline"}]},
         "fixed", "sigam", "sigma"),
        ({"gird": {}}, "", "gird", "grid"),
        ({"resources": {"cpus": 1}}, "resources", "cpus", "cpu"),
        ({"groups": [{"name": "a", "fixd": {}}]}, "groups[0]", "fixd", "fixed"),
    ],
)
def test_typos_name_their_block_the_nearest_key_and_the_allowed_keys(over, block, key, nearest):
    with pytest.raises(ConfigError) as err:
        expand(parse(_cfg(**over)))
    msg = str(err.value)
    assert msg.startswith(f"{block}.{key}: unknown key" if block else f"{key}: unknown key"), msg
    assert f"did you mean {nearest!r}?" in msg and "allowed: " in msg, msg


def test_a_value_error_names_the_block_it_came_from():
    with pytest.raises(ConfigError) as err:
        expand(parse(_cfg(fixed={"size": 32, "sigma": -1}, groups=[{"name": "g", "grid": {"loss": ["l1", "l3"]}}])))
    assert "fixed.sigma = -1" in str(err.value), err.value
    with pytest.raises(ConfigError) as err:
        expand(parse(_cfg(groups=[{"name": "g", "grid": {"loss": ["l1", "l3"]}}])))
    assert "groups[0] (g): groups[0].grid.loss = 'l3'" in str(err.value), err.value


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_infinite_or_nan_resources_are_refused(tmp_path, value):
    p = tmp_path / "c.yaml"
    p.write_text(f"name: t\nkind: dip\nresources: {{cpu: {value}}}\n")
    with pytest.raises(ConfigError, match="resources.cpu"):
        load(p)
    p.write_text(f"name: t\nkind: dip\nresources: {{custom: {{big: {value}}}}}\n")
    with pytest.raises(ConfigError, match="finite number"):
        load(p)


# ---- image files are checked once at expansion: decodes, within the documented limits ----

def _image_error(tmp_path, path) -> str:
    with pytest.raises(ConfigError) as err:
        expand(parse(_cfg(grid={"image": ["astronaut", str(path)]})))
    msg = _one_line(err)
    assert str(path) in msg, msg
    return msg


def _png_with_size(png: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR chunk is rewritten to `width` x `height` (with a valid CRC)."""
    import struct
    import zlib

    ihdr = bytearray(png[12:29])  # b"IHDR" + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    return png[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + png[33:]


def test_non_image_corrupt_and_oversized_image_files_are_refused(tmp_path, monkeypatch):
    import io

    from PIL import Image

    import priorlab.tasks.images as images

    text = tmp_path / "notes.png"
    text.write_text("this is not a png")
    assert "not an image that decodes" in _image_error(tmp_path, text)

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(buf, format="PNG")
    corrupt = tmp_path / "cut.png"
    corrupt.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # a truncated PNG: header fine
    assert "not an image that decodes" in _image_error(tmp_path, corrupt)

    # A decompression bomb: a PNG whose header says 20000 x 20000 (1.2 GB decoded). The pixel
    # data need not be there: the header alone must refuse it.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_with_size(buf.getvalue(), 20000, 20000))
    assert "20000 x 20000 pixels" in _image_error(tmp_path, bomb)

    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 1000)  # a "huge" file without writing 100 MB
    big = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(big, format="PNG")
    big.write_bytes(big.read_bytes() + b"\0" * 2000)
    assert "larger than the limit" in _image_error(tmp_path, big)


def test_good_image_files_pass_and_a_fixed_image_is_checked_too(tmp_path):
    from PIL import Image

    good = tmp_path / "ok.png"
    Image.new("RGB", (40, 40), (200, 10, 10)).save(good)
    assert expand(parse(_cfg(fixed={"size": 32, "width": 4, "iterations": 10, "image": str(good)})))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ConfigError, match="bad.jpg"):
        expand(parse(_cfg(fixed={"size": 32, "width": 4, "iterations": 10, "image": str(bad)})))


def test_same_sweep_ignores_layout_and_operational_settings_but_not_the_runs():
    from priorlab.cluster.config import same_sweep

    base = "name: s\nkind: dip\nfixed: {size: 32, width: 4, iterations: 10}\ngrid: {seed: [0, 1]}\n"
    cfg = parse({"name": "s", "kind": "dip", "fixed": {"iterations": 10, "width": 4, "size": 32},
                 "grid": {"seed": [0, 1]}, "resources": {"cpu": 2}, "retries": 3, "description": "again"})
    assert same_sweep(cfg, "# a comment\n" + base)
    assert not same_sweep(parse({**cfg.model_dump(), "grid": {"seed": [0, 1, 2]}}), base)
    assert not same_sweep(cfg, "name: s\nkind: [not valid\n")


def test_a_config_error_never_shows_pydantics_value_error_prefix(tmp_path, capsys):
    from priorlab.cluster.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\nkind: dip\ngrid:\n  lr: {dist: loguniform}\n")
    assert main(["sweep", str(cfg), "--plan", "--store", str(tmp_path / "s")]) == 2
    out = capsys.readouterr()
    line = (out.out + out.err).strip()
    assert "grid axis 'lr'" in line and "Value error" not in line, line
