"""The networks: shapes at every depth, the report's layer layout, heads, seeded init."""

import pytest
import torch
from torch import nn

from priorlab.tasks.dip.models import ARCHS, build_model, init_weights_


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_maps_noise_to_an_image_of_the_same_size(arch, depth):
    for c in (32, 3):
        model = build_model(arch, depth, width=8, in_channels=c)
        y = model(torch.rand(1, c, 64, 64))
        assert y.shape == (1, 3, 64, 64)


def test_seed_double_is_the_reports_figure_5():
    m = build_model("seed-double", depth=4, width=128, in_channels=3)
    convs = [x for x in m.encoder.modules() if isinstance(x, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (3, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2),
        (256, 512, 1), (512, 512, 2), (512, 1024, 1), (1024, 1024, 2),
    ]
    convs = [x for x in m.decoder.modules() if isinstance(x, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1024, 512), (512, 512), (512, 256), (256, 256), (256, 128), (128, 128), (128, 3), (3, 3),
    ]
    ups = [x for x in m.decoder.modules() if isinstance(x, nn.Upsample)]
    assert len(ups) == 4 and all(u.mode == "bicubic" for u in ups)
    # The report's decoder ends in BatchNorm + LeakyReLU on the RGB output.
    assert isinstance(m.decoder[-1][-2], nn.BatchNorm2d) and isinstance(m.decoder[-1][-1], nn.LeakyReLU)


def test_seed_single_has_one_strided_conv_per_encoder_level():
    m = build_model("seed-single", depth=2, width=16, in_channels=32)
    convs = [x for x in m.encoder.modules() if isinstance(x, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [(32, 16, 2), (16, 32, 2)]
    assert sum(isinstance(x, nn.Conv2d) for x in m.decoder.modules()) == 2


def test_skip_is_the_dip_reference_network():
    m = build_model("skip", depth=5, width=128, in_channels=32)
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    assert {c.padding_mode for c in convs if c.kernel_size == (3, 3)} == {"reflect"}
    assert sum(c.out_channels == 4 and c.kernel_size == (1, 1) for c in convs) == 5  # skip branches
    assert [x.mode for x in m.modules() if isinstance(x, nn.Upsample)] == ["bilinear"] * 5
    assert {x.negative_slope for x in m.modules() if isinstance(x, nn.LeakyReLU)} == {0.2}
    assert isinstance(m.out[0], nn.Conv2d) and m.out[0].kernel_size == (1, 1)
    assert isinstance(m.out[-1], nn.Sigmoid)


@pytest.mark.parametrize("arch", ARCHS)
def test_heads(arch):
    x = torch.randn(1, 8, 32, 32) * 10
    y = build_model(arch, 2, 8, 8, head="sigmoid")(x)
    assert (y > 0).all() and (y < 1).all()
    linear = build_model(arch, 2, 8, 8, head="linear")
    assert not isinstance(list(linear.modules())[-1], (nn.Sigmoid, nn.LeakyReLU))
    with pytest.raises(ValueError, match="head"):
        build_model(arch, 2, 8, 8, head="tanh")


def test_unknown_arch_names_the_allowed_ones():
    with pytest.raises(ValueError, match="seed-double, seed-single, skip"):
        build_model("unet", 2, 8)


def test_init_is_a_function_of_the_generator_alone():
    a = init_weights_(build_model("skip", 2, 8, 8), torch.Generator().manual_seed(3))
    torch.manual_seed(123)  # the global RNG must not matter
    b = init_weights_(build_model("skip", 2, 8, 8), torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
