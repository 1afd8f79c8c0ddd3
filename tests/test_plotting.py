"""Fig. 3-style localization plots and learning curves, built without pyplot."""
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from skattloc.plotting import plot_history, plot_localization
from skattloc.timing import FrameTiming

T = FrameTiming(0.016, 0.008)  # the default extractor's timing

CLASSES = ["tone", "chirp", "noise_burst"]


def _clip(n_frames=120, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_frames, 40)), rng.uniform(size=(n_frames, 3)), rng.uniform(size=n_frames)


def _spans(ax):
    return [p for p in ax.patches if isinstance(p, (Polygon, Rectangle))]


def test_three_panels_with_curves_events_and_attention(tmp_path):
    feats, scores, att = _clip()
    events = [("a.wav", 0.2, 0.6, "tone"), (1.0, 1.5, "noise_burst")]
    fig = plot_localization(feats, scores, CLASSES, events=events, attention=att,
                            clip_scores=[0.9, 0.1, 0.8], title="clip a", timing=T)
    assert isinstance(fig, Figure)
    spec_ax, loc_ax, att_ax = fig.axes[:3]
    assert spec_ax.images and spec_ax.images[0].get_array().shape == (40, 120)  # mel x time
    curves = [ln for ln in loc_ax.lines if len(ln.get_xdata()) == 120]
    assert len(curves) == 3
    np.testing.assert_allclose(curves[1].get_ydata(), scores[:, 1])
    # frame t drawn at its centre offset + (t + 0.5) * hop
    np.testing.assert_allclose(curves[0].get_xdata()[:2], [0.016, 0.032])
    assert len(_spans(loc_ax)) == 2 and len(_spans(att_ax)) == 2
    bars = [ln for ln in loc_ax.lines if len(ln.get_xdata()) == 2]
    assert sorted(tuple(np.round(b.get_xdata(), 3)) for b in bars) == [(0.2, 0.6), (1.0, 1.5)]
    np.testing.assert_allclose(att_ax.lines[0].get_ydata(), att)
    labels = [t.get_text() for t in loc_ax.get_legend().get_texts()]
    assert labels[0] == "tone (clip 0.90)"
    path = tmp_path / "fig.png"
    fig.savefig(path)
    assert path.stat().st_size > 10_000


def test_two_panels_without_attention_and_no_pyplot_state():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    feats, scores, _ = _clip()
    fig = plot_localization(feats, scores, CLASSES, timing=(0.02, 0.0))
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 2
    assert fig.axes[1].get_xlim() == pytest.approx((0.0, 120 * 0.02))
    assert plt.get_fignums() == before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(features=np.zeros(10)), "features must be 2-D"),
        (dict(frame_scores=np.zeros((5, 3))), "frame_scores must be 2-D .* n_frames=120"),
        (dict(classes=["a", "b"]), "classes has 2 labels"),
        (dict(events=[(0.1, 0.2, "dog")]), "event label 'dog' is not in classes"),
        (dict(events=[(0.1, "tone")]), "events must be"),
        (dict(attention=np.zeros(7)), "attention must have one value per frame"),
        (dict(timing=(0, 0.008)), "hop_s must be > 0 seconds"),
        (dict(timing=(0.016, -0.008)), "offset_s must be >= 0 seconds"),
        (dict(clip_scores=[0.5]), "clip_scores must have 3 values"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    feats, scores, att = _clip()
    args = dict(features=feats, frame_scores=scores, classes=CLASSES, timing=T)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        plot_localization(**args)


def test_plot_history_losses_left_metrics_right():
    history = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1.2 / (e + 1), "val_auroc": 0.5 + 0.1 * e}
               for e in range(4)]
    fig = plot_history(history)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "loss"
    assert sorted(ln.get_label() for ln in ax.lines) == ["train_loss", "val_loss"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 2, 3, 4])
    assert [ln.get_label() for ln in fig.axes[1].lines] == ["val_auroc"]
    fig = plot_history(history, keys=["train_loss"])
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1


def test_plot_history_errors():
    with pytest.raises(ValueError, match="history is empty"):
        plot_history([])
    with pytest.raises(ValueError, match="no values for \\['val_map'\\]"):
        plot_history([{"epoch": 0, "train_loss": 0.5}], keys=["val_map"])
