"""The DESED baseline as a parameter set (issue 19, part 3): the conv blocks' channel list,
GLU, average pooling and dropout, a frame output read from the GRUs, and the ``"loc"``
pooling; :data:`skattloc.DESED_CONFIG` builds the DCASE task 4 baseline CRNN from them."""
import numpy as np
import pytest
import torch

from skattloc import DESED_CONFIG, PAPER_CONFIG, AttLocTagger
from skattloc.model import CGRNN, ConvBlocks
from skattloc.params import names, validate_params
from tests.test_recipe_options import check_padding_never_leaks

SMALL = dict(frontend="conv2d", n_filters=8, conv_blocks=3, rnn_hidden=8, rnn_layers=1, dense_units=8)


def _net(**kw):
    torch.manual_seed(0)
    return CGRNN(**{"n_mels": 40, "n_classes": 4, **SMALL, **kw}).eval()


def test_desed_config_builds_the_dcase_baseline_crnn():
    net = AttLocTagger(**DESED_CONFIG)._build_model(128, 10)
    # The DCASE 2022-2024 baseline on its own 128 mel bands and 10 classes.
    assert [c.out_channels for c in net.blocks.convs] == [16, 32, 64, 128, 128, 128, 128]
    assert net.blocks.pools == [(2, 2), (2, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2)]
    assert net.blocks.out_features == 128 and net.gru.input_size == 128 and net.gru.num_layers == 2
    assert net.gru.hidden_size == 128 and net.dense is None and net.out.in_features == 256
    assert net.att is None and net.loc.out_features == 10 and net.loc.in_features == 256
    assert net.dropout.p == 0.5 and net.blocks.drop.p == 0.5
    # DESED's CRNN has 1,112,420 parameters: its convolutions also carry a bias, which the
    # batch norm right after makes redundant (16 + 32 + 64 + 4 x 128 = 624 values).
    assert sum(p.numel() for p in net.parameters()) == 1_112_420 - 624
    assert set(DESED_CONFIG) == set(PAPER_CONFIG)  # the same keys: a complete recipe
    validate_params(DESED_CONFIG)


def test_glu_is_a_channel_map_times_the_sigmoid_of_its_input():
    blocks = ConvBlocks(8, 4, 1, 1, channels=[3], activation="glu").eval()
    y = torch.randn(2, 3, 5, 8)
    expected = blocks.gates[0](y) * torch.sigmoid(y)
    torch.testing.assert_close(blocks._activate(y, 0), expected)
    with torch.no_grad():
        blocks.gates[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        blocks.gates[0].bias.zero_()
    torch.testing.assert_close(blocks._activate(y, 0), y * torch.sigmoid(y))


def test_average_pooling_averages_each_window_of_valid_frames():
    blocks = ConvBlocks(4, 2, 1, 2, channels=[2], pool="avg")
    y = torch.arange(2 * 5 * 4, dtype=torch.float32).view(1, 2, 5, 4)
    pooled = blocks._pool(y, None, 2, 2)
    assert pooled.shape == (1, 2, 3, 2)
    torch.testing.assert_close(pooled[0, 0, 0, 0], y[0, 0, :2, :2].mean())
    torch.testing.assert_close(pooled[0, 1, 2, 1], y[0, 1, 4:, 2:].mean())  # the last, partial window: its own frame only
    m = torch.tensor([1.0, 1, 1, 0, 0]).view(1, 1, 5, 1)
    masked = blocks._pool(y, m, 2, 2)
    torch.testing.assert_close(masked[0, 0, 1, 0], y[0, 0, 2:3, :2].mean())  # frame 3 is padding
    assert float(masked[0, :, 2].abs().sum()) == 0.0  # a window wholly past the clip's end


@pytest.mark.parametrize("activation, pool", [("glu", "max"), ("glu", "avg"), ("relu", "avg")])
@pytest.mark.parametrize("time_pool", [2, 4])
def test_padding_never_leaks_with_glu_and_average_pooling(activation, pool, time_pool):
    check_padding_never_leaks(_net(conv_activation=activation, conv_pool=pool, time_pool=time_pool, pooling="loc",
                                   dense_units=0))


def test_glu_max_pooling_keeps_negative_maxima():
    # Zero padding would replace a window's negative maximum by 0; the clip's own frames decide.
    blocks = ConvBlocks(2, 1, 1, 2, channels=[1], activation="glu")
    y = -torch.ones(1, 1, 3, 2) * torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 3, 1)
    pooled = blocks._pool(y, None, 2, 2)
    torch.testing.assert_close(pooled.flatten(), torch.tensor([-1.0, -3.0]))


def test_loc_pooling_is_eq8_without_the_attention_unit():
    net = _net(pooling="loc", loc_background=False)
    with torch.no_grad():
        out = net(torch.randn(3, 12, 40))
    assert out.att is None
    f, z = out.frame.numpy(), out.loc.numpy()
    np.testing.assert_allclose(out.clip.numpy(), (f * z).sum(1) / z.sum(1), rtol=1e-5)


def test_no_dense_layer_reads_the_gru_output():
    net = _net(dense_units=0)
    assert net.dense is None and net.out.in_features == 16  # 2 directions x 8
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in _net().parameters())


def test_conv_channels_replace_the_doubling_rule():
    net = _net(conv_channels=(5, 7, 9))
    assert [c.out_channels for c in net.blocks.convs] == [5, 7, 9] and net.blocks.out_features == 9 * 5
    assert [c.out_channels for c in _net().blocks.convs] == [2, 4, 8]


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(conv_channels=(4, 8)), "conv_channels lists 2 blocks but conv_blocks=3"),
        (dict(conv_channels=(4, 0, 8)), "conv_channels must be None or a non-empty list of positive ints"),
        (dict(conv_channels="16,32"), "conv_channels must be None"),
        (dict(conv_activation="gelu"), "conv_activation must be one of"),
        (dict(conv_pool="median"), "conv_pool must be one of"),
        (dict(conv_dropout=1.0), "conv_dropout"),
        (dict(dense_units=-1), "dense_units"),
        (dict(pooling="mean", localization="loc"), "only pooling='att_loc' or 'loc'"),
    ],
)
def test_bad_values_are_refused_at_fit(kw, match):
    with pytest.raises(ValueError, match=match):
        AttLocTagger(**{**SMALL, **kw}).fit(np.zeros((2, 5, 40)), np.eye(2, dtype=int))


def test_a_small_desed_network_fits_saves_and_loads(tmp_path, synth):
    X, Y = synth["X"][:16], synth["Y"][:16]
    params = dict(DESED_CONFIG, conv_channels=(4, 4, 8), conv_blocks=3, rnn_hidden=8, rnn_layers=1, max_epochs=2,
                  batch_size=8, validation_fraction=0.0, early_stopping=False, random_state=0)
    t = AttLocTagger(**params).fit(X, Y)
    again = AttLocTagger(**params).fit(X, Y)
    np.testing.assert_array_equal(t.predict_proba(X), again.predict_proba(X))  # reproducible on the CPU
    loaded = AttLocTagger.load(t.save(tmp_path / "desed.skattloc"))
    assert tuple(loaded.conv_channels) == (4, 4, 8) and loaded.conv_activation == "glu"
    np.testing.assert_allclose(loaded.predict_proba(X), t.predict_proba(X), rtol=1e-6)
    assert loaded.localize(X).shape == (16, X.shape[1], Y.shape[1])


def test_network_keywords_include_the_new_conv_options():
    assert {"conv_channels", "conv_activation", "conv_pool", "conv_dropout"} <= set(names("network"))


def test_cli_desed_starts_from_the_config_and_refuses_paper_too(capsys):
    from skattloc.cli import _fit_params, build_parser

    parser = build_parser()
    args = parser.parse_args(["fit", "data", "-o", "m.skattloc", "--desed", "--epochs", "3"])
    params = _fit_params(args)
    assert params["conv_channels"] == DESED_CONFIG["conv_channels"] and params["pooling"] == "loc"
    assert params["max_epochs"] == 3  # other options still apply
    with pytest.raises(SystemExit):
        parser.parse_args(["fit", "data", "-o", "m.skattloc", "--desed", "--paper"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_user_guide_states_both_parameter_sets_as_they_are():
    import ast
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "user_guide.md").read_text()
    paper = re.search(r"`skattloc.PAPER_CONFIG` is, as plain data:\n\n```python\n(.*?)```", text, re.S).group(1)
    assert ast.literal_eval(paper) == PAPER_CONFIG
    diff = re.search(r"It differs from `PAPER_CONFIG` in these entries:\n\n```python\n(.*?)```", text, re.S).group(1)
    assert ast.literal_eval(diff) == {k: v for k, v in DESED_CONFIG.items() if PAPER_CONFIG[k] != v}
