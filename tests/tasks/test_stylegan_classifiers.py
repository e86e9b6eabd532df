"""Classifier plug-ins (builtin, TorchScript, torchvision, Python callable) and image similarity."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from priorlab.tasks.stylegan.classifiers import ClassifierConfig, image_statistic, load_classifier
from priorlab.tasks.stylegan.latents import pixel_distance, slerp, ssim



def images(n=6, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_builtin_brightness_is_a_sigmoid_around_center():
    clf = load_classifier({"source": "builtin:brightness", "center": 0.5, "scale": 0.05, "positive": "bright"})
    x = torch.stack([torch.full((3, 8, 8), v) for v in (0.2, 0.5, 0.8)])
    p = clf(x)
    assert p[1] == pytest.approx(0.5) and p[0] < 0.01 and p[2] > 0.99
    assert clf.label(p).tolist() == [0, 1, 1] and clf.positive == "bright"


def test_builtin_auto_calibrates_to_median():
    clf = load_classifier("builtin:redness")
    x = images(9)
    with pytest.raises(RuntimeError, match="calibrate"):
        clf(x)
    clf.calibrate(x)
    p = clf(x)
    assert float(p.median()) == pytest.approx(0.5, abs=1e-5)
    assert torch.allclose(image_statistic("redness", x), (x[:, 0] - (x[:, 1] + x[:, 2]) / 2).mean(dim=(1, 2)))


def test_torchscript_classifier_softmax_positive_by_name(tmp_path):
    class Net(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=(1, 2, 3))
            return torch.stack([-10 * m, 10 * m], dim=1)  # (N, 2) logits: [under 21, over 21]

    path = tmp_path / "age.pt"
    torch.jit.script(Net()).save(str(path))
    clf = load_classifier({"source": f"torchscript:{path}", "labels": ["under 21", "over 21"],
                           "positive": "over 21", "negative": "under 21"})
    x = images()
    want = torch.softmax(torch.stack([-10 * x.mean((1, 2, 3)), 10 * x.mean((1, 2, 3))], 1), 1)[:, 1]
    assert torch.allclose(clf(x), want)


def test_torchvision_classifier_from_weights_file(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=2).eval()
    path = tmp_path / "w.pt"
    torch.save(net.state_dict(), path)
    clf = load_classifier({"source": "torchvision:mobilenet_v3_small", "weights": str(path),
                           "labels": ["young", "old"], "positive": "old", "input_size": 32})
    x = images(2)
    p = clf(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    xr = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        want = net((xr - mean) / std).softmax(1)[:, 1]
    assert torch.allclose(p, want, atol=1e-5)


def test_python_callable_classifier(tmp_path, monkeypatch):
    (tmp_path / "my_attr.py").write_text("def score(x):\n    return x[:, 1].mean(dim=(1, 2))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_attr", raising=False)
    x = images()
    for source in ("my_attr:score", "python:my_attr:score"):
        p = load_classifier(source)(x)
        assert torch.allclose(p, x[:, 1].mean(dim=(1, 2)))
    with pytest.raises(ValueError, match="cannot import"):
        load_classifier("my_attr:missing")


@pytest.mark.parametrize("kwargs, match", [
    ({"source": "builtin:age"}, "allowed: brightness"),
    ({"source": "onnx"}, "allowed: builtin:NAME"),
    ({"source": "torchvision:resnet18"}, "weights"),
    ({"source": "builtin:brightness", "labels": ["a", "b"], "positive": "c"}, "not one of labels"),
    ({"source": "builtin:brightness", "threshold": 1.5}, "threshold"),
    ({"source": "builtin:brightness", "temperature": 2}, "temperature"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        ClassifierConfig(**kwargs)


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity

    a = images(2, size=32, seed=1)
    b = (a + 0.1 * images(2, size=32, seed=2)).clamp(0, 1)
    ours = ssim(a, b)
    for i in range(2):
        want = structural_similarity(a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy(), channel_axis=2,
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
        assert float(ours[i]) == pytest.approx(want, abs=1e-4)
    assert torch.allclose(ssim(a, a), torch.ones(2))
    assert torch.allclose(pixel_distance(a, a), torch.zeros(2))


def test_slerp_endpoints_and_norm():
    a, b = torch.randn(8), torch.randn(8)
    t = torch.linspace(0, 1, 5)
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    ua, ub = a / a.norm(), b / b.norm()
    mid = slerp(ua, ub, torch.tensor([0.5]))[0]
    assert float(mid.norm()) == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(slerp(a, a, t).numpy()).all()
