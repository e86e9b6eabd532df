"""A checkpoint's load costs at most a small multiple of its file's size (issue 16, items 6-9).

The hostile files of the issue (`tests/hostile_checkpoints.py`) are each loaded in one child
process that shows torch's warnings as a user would see them; each must be refused in one line
naming the file, within 60 s of CPU, and the whole child must stay under 2.5 GB of peak RSS (its
address space is capped, so a regression fails the test instead of the machine). The cheaper
checks below load small files in-process.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import hostile_checkpoints as hc
import pytest
import torch

from priorlab.tasks.stylegan import checkpoints as ck
from priorlab.tasks.stylegan import nvidia_pickle as nv
from priorlab.tasks.stylegan.networks import GeneratorConfig

PEAK_RSS_LIMIT = int(2.5 * (1 << 30))
CPU_LIMIT_S = 60

CHILD = r"""
import json, resource, sys, time
import torch
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), resource.RLIM_INFINITY))  # a safety net, not the bound
from priorlab.tasks.stylegan import checkpoints as ck

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

for path in sys.argv[1:]:
    t0 = cpu()
    try:
        ck.load_generator(path)
        outcome, message = "loaded", ""
    except ck.CheckpointError as e:
        outcome, message = "refused", str(e)
    except BaseException as e:
        outcome, message = type(e).__name__, str(e)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(path=path, outcome=outcome, message=message, cpu=cpu() - t0, peak=peak)), flush=True)
"""

# What refuses each attack: the guard a user reads in the message.
REASONS = {
    "pkl_shared_views": "tensors hold more bytes",
    "pkl_many_layers": "tensors hold more bytes",
    "pkl_reparse": "no network 'G_ema'",  # parsed once, the file is just not a network
    "pkl_huge_resolution": "img_resolution: 32768",
    "pkl_empty_sets": "Python objects",
    "pkl_view_flood": "Python objects",
    "pt_meta": "meta device",
    "pt_shared_views": "tensors hold more bytes",
    "pt_zip_bomb": "inflate",
    "pt_sparse": "inconsistent with indices",
    "pt_dict_flood": "Python objects",
}


@pytest.fixture(scope="module")
def attack_reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    paths = {name: build(folder / f"{name}{suffix}") for name, (build, suffix) in hc.ATTACKS.items()}
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths.values())], capture_output=True, text=True,
                          env=env, timeout=20 * 60)
    reports = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            reports[r["path"]] = r
    return {name: reports.get(str(p)) for name, p in paths.items()}, proc, paths


@pytest.mark.parametrize("name", list(hc.ATTACKS))
def test_hostile_checkpoint_is_refused_in_one_line_within_bounds(attack_reports, name):
    reports, proc, paths = attack_reports
    report = reports[name]
    assert report is not None, f"the loading process died before reporting (exit {proc.returncode}): " \
                               f"{proc.stderr[-1000:]}"
    assert report["outcome"] == "refused", report
    message = report["message"]
    assert message.startswith(str(paths[name])) and "\n" not in message and len(message) < 400, message
    assert REASONS[name] in message, message
    assert report["cpu"] < CPU_LIMIT_S, report
    assert report["peak"] < PEAK_RSS_LIMIT, report  # the child's peak so far: this file's and the earlier ones'


def test_hostile_loads_print_nothing_but_their_errors(attack_reports):
    # Old code: torch's two-line warning about validating sparse tensors reached the terminal.
    _, proc, _ = attack_reports
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]


def test_generate_with_a_huge_declared_resolution_exits_2_in_one_line(tmp_path, capsys):
    # Old code: the 2**15-pixel generator loaded, then generate died in a RuntimeError traceback (exit 1).
    from priorlab.cluster import cli

    path = hc.pkl_huge_resolution(tmp_path / "huge.pkl")
    code = cli.main(["stylegan", "generate", "--checkpoint", str(path), "--seeds", "0", "--out",
                     str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "img_resolution" in err and "Traceback" not in err, err


# --- the guards one at a time, on small files -----------------------------------------------------


def test_views_sharing_one_storage_are_each_counted(tmp_path):
    store = hc.storage(torch.zeros(25_000))  # 100 KB
    path = tmp_path / "views.pkl"
    path.write_bytes(hc.dumps([hc.view(store, (25_000,)) for _ in range(50)]))  # 5 MB of tensors from ~110 KB
    with pytest.raises(nv.UnsafePickleError, match="tensors hold more bytes"):
        nv.load_pickle(path)
    path.write_bytes(hc.dumps([hc.view(store, (25_000,)) for _ in range(2)]))
    a, b = nv.load_pickle(path)
    assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()  # still one storage, not copies


def test_a_payload_referenced_twice_is_parsed_into_one_storage(tmp_path):
    # Old code parsed (and copied) a memoized payload again on every reference.
    payload = hc.legacy_storage_bytes(torch.arange(4.0))
    for protocol in (2, 4):  # protocol 2 spells bytes as _codecs.encode(str): the str is memoized instead
        path = tmp_path / f"twice{protocol}.pkl"
        path.write_bytes(hc.dumps([hc.Call(hc.LOAD_FROM_BYTES, payload), hc.Call(hc.LOAD_FROM_BYTES, payload)],
                                  protocol=protocol))
        a, b = nv.load_pickle(path)
        assert a is b
        assert torch.equal(torch.empty(0, dtype=torch.uint8).set_(a.untyped).view(torch.float32), torch.arange(4.0))


def test_zero_element_storages_spend_the_budget(tmp_path):
    # Old code: 0 bytes of data each, so any number of them passed.
    empties = [hc.storage(torch.zeros(0)) for _ in range(25_000)]  # distinct payloads, ~7 MB
    path = tmp_path / "empties.pkl"
    path.write_bytes(hc.dumps(empties, protocol=4))
    with pytest.raises(nv.UnsafePickleError, match="Python objects"):
        nv.load_pickle(path)


def test_a_network_larger_than_its_file_is_refused_before_it_is_built(tmp_path):
    # One tensor object per shape, shared by every layer: counted once as a tensor, but the declared
    # network (32 mapping layers of 512x512) needs 8M parameters from a ~1 MB file.
    cfg = hc.Config(img_resolution=4, z_dim=512, w_dim=512, channel_base=32, channel_max=8, mapping_layers=32)
    shared: dict = {}
    path = tmp_path / "shared_tensors.pkl"
    path.write_bytes(hc.nvidia_pickle(cfg, lambda name, shape: shared.setdefault(shape, hc.storage_tensor(shape))))
    with pytest.raises(ck.CheckpointError, match="declared network has .* parameters"):
        ck.load_generator(str(path))


def test_dense_tensors_only_in_pt_files(tmp_path):
    ok = torch.sparse_coo_tensor(torch.tensor([[0, 3]]), torch.tensor([1.0, 2.0]), (10,), check_invariants=True)
    path = tmp_path / "sparse.pt"
    torch.save({"g_ema": {"style.1.weight": ok}}, path)
    with pytest.raises(ck.CheckpointError, match="sparse_coo tensor"):
        ck.load_generator(str(path))


def test_a_legacy_pt_declaring_a_huge_storage_is_refused_in_one_line(tmp_path):
    buf = io.BytesIO()
    torch.save({"g_ema": {"style.1.weight": torch.zeros(4)}}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    i = data.index(b"cpu", data.index(b"FloatStorage")) + 3  # the storage record's element count follows
    assert data[i:i + 4] == b"q\x08K\x04"
    path = tmp_path / "legacy.pt"
    path.write_bytes(data[:i + 2] + b"J" + struct.pack("<i", 2 ** 29) + data[i + 4:])
    with pytest.raises(ck.CheckpointError) as err:
        ck.load_generator(str(path))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, field, allowed", [
    (dict(img_resolution=8192), "img_resolution: 8192", "up to 4096"),
    (dict(mapping_layers=33), "mapping_layers: 33", "at most 32"),
    (dict(z_dim=600_000), "z_dim: 600000", "at most 4096"),  # w_avg's estimate drew 4096 x z_dim normals
    (dict(channel_base=2 ** 16), "channel_base/channel_max", "at most 33554432")])
def test_config_bounds_name_the_field(kwargs, field, allowed):
    with pytest.raises(ValueError) as err:
        GeneratorConfig(**kwargs)
    assert field in str(err.value) and allowed in str(err.value), str(err.value)


def test_config_f_at_1024_is_within_bounds():
    cfg = GeneratorConfig()  # 1024 px, channel_base 32768, channel_max 512, 8 mapping layers
    assert cfg.img_resolution == 1024


def test_classifier_weights_are_bounded_by_their_file_too(tmp_path):
    # Old code: torch.load inflated the record (64 MB here, 2 GiB in the file) before anything looked.
    pytest.importorskip("torchvision")
    from priorlab.tasks.stylegan.classifiers import load_classifier

    path = hc.pt_zip_bomb(tmp_path / "weights.pt", inflated=1 << 26)
    with pytest.raises(ck.CheckpointError, match="inflate to 67"):
        load_classifier({"source": "torchvision:mobilenet_v3_small", "weights": str(path), "labels": ["a", "b"],
                         "positive": "b", "input_size": 32})
