"""The recipe options of issue 10: CRNN front end, new poolings, z_loc background slot and
input, weight averaging, early stopping on validation EER, explicit validation data."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skattloc import AttLocTagger
from skattloc.model import CGRNN

CRNN = dict(frontend="conv2d", n_filters=16, conv_blocks=3, rnn_hidden=16, rnn_layers=1, dense_units=16)


def _net(**kw):
    torch.manual_seed(0)
    return CGRNN(**{"n_mels": 40, "n_classes": 4, **kw}).eval()


@pytest.mark.parametrize("time_pool", [1, 2, 4])
@pytest.mark.parametrize("pooling", ["mean", "att", "att_loc", "linear_softmax", "auto"])
def test_crnn_padding_never_leaks_and_frames_keep_the_input_rate(pooling, time_pool):
    check_padding_never_leaks(_net(pooling=pooling, time_pool=time_pool, **CRNN))


def check_padding_never_leaks(net):
    """A clip alone and the same clip padded with loud garbage in a batch: the same outputs,
    one frame row per input frame. ``net`` takes 40 bands."""
    torch.manual_seed(1)
    with torch.no_grad():
        long, short = torch.randn(1, 41, 40), torch.randn(1, 23, 40)
        alone = net(short)
        batch = torch.cat([long, F.pad(short, (0, 0, 0, 18), value=1e3)])  # loud garbage padding
        both = net(batch, torch.tensor([41, 23]))
    n_classes = both.clip.shape[1]
    assert both.frame.shape == (2, 41, n_classes) and alone.frame.shape == (1, 23, n_classes)
    torch.testing.assert_close(both.clip[1], alone.clip[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both.frame[1, :23], alone.frame[0], rtol=1e-5, atol=1e-6)
    if both.att is not None:
        torch.testing.assert_close(both.att[1, :23], alone.att[0], rtol=1e-5, atol=1e-6)


def test_time_pooling_repeats_frame_outputs():
    net = _net(time_pool=4, **CRNN)
    with torch.no_grad():
        out = net(torch.randn(2, 30, 40))
    f = out.frame
    assert torch.equal(f[:, 0], f[:, 3]) and torch.equal(f[:, 4], f[:, 7])  # 4 input frames share one output
    assert not torch.equal(f[:, 0], f[:, 4])


def test_linear_softmax_and_auto_pool_by_hand():
    x = torch.randn(2, 9, 40)
    with torch.no_grad():
        out = _net(pooling="linear_softmax")(x)
        o = out.frame.numpy().astype(np.float64)
        np.testing.assert_allclose(out.clip.numpy(), (o**2).sum(1) / o.sum(1), rtol=1e-5)
        net = _net(pooling="auto")
        net.alpha.copy_(torch.tensor([0.0, 1.0, 5.0, -2.0]))
        out = net(x)
    o = out.frame.numpy().astype(np.float64)
    alpha = np.array([0.0, 1.0, 5.0, -2.0])
    w = np.exp(alpha * o)
    w /= w.sum(1, keepdims=True)
    np.testing.assert_allclose(out.clip.numpy(), (w * o).sum(1), rtol=1e-5)
    np.testing.assert_allclose(out.clip.numpy()[:, 0], o[:, :, 0].mean(1), rtol=1e-5)  # alpha 0: the mean
    assert net.alpha.requires_grad


def test_background_slot_is_left_out_of_every_output():
    net = _net(loc_background=True)
    assert net.loc.out_features == 5  # 4 classes + background
    with torch.no_grad():
        out = net(torch.randn(3, 12, 40) * 4)
    assert out.loc.shape == (3, 12, 4)
    s = out.loc.sum(-1)
    assert bool((s < 1).all()) and bool((s > 0).all())  # the background takes the rest
    # eq. (8) with the 4 class columns only
    a, f, z = out.att.numpy(), out.frame.numpy(), out.loc.numpy()
    expected = (a[..., None] * f * z).sum(1) / z.sum(1)
    np.testing.assert_allclose(out.clip.numpy(), expected, rtol=1e-5)


def test_background_slot_is_ignored_with_the_sigmoid():
    net = _net(loc_background=True, loc_activation="sigmoid")
    assert net.loc.out_features == 4 and net.loc_background is False


def test_loc_input_rnn_reads_the_gru_output():
    net = _net(loc_input="rnn", rnn_hidden=32)
    assert net.loc.in_features == 64  # 2 directions x 32
    net_cnn = _net(rnn_hidden=32)
    assert net_cnn.loc.in_features == 128  # the CNN's filters (eq. 4 -> 6)


def test_crnn_counts_and_attention_reads_the_front_end():
    net = _net(pooling="att", **CRNN)
    # channels 4, 8, 16; 40 bands -> 20 -> 10 -> 5: 16 * 5 features per frame
    assert net.blocks.out_features == 80 and net.att.in_features == 80 and net.gru.input_size == 80


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(frontend="frame_cnn", time_pool=2), "needs frontend='conv2d'"),
        (dict(frontend="conv2d", time_pool=3), "power of 2"),
        (dict(frontend="conv2d", time_pool=16, conv_blocks=3), "at least 4 conv blocks"),
        (dict(loc_input="gru"), "loc_input must be one of"),
        (dict(frontend="cnn2d"), "frontend must be one of"),
    ],
)
def test_inconsistent_architectures_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        CGRNN(n_mels=40, n_classes=3, **kw)
    with pytest.raises(ValueError, match=match):
        AttLocTagger(**kw).fit(np.zeros((2, 5, 40)), np.eye(2, dtype=int))


def test_conv2d_front_end_takes_fewer_features_than_a_paper_kernel(synth):
    X = synth["X"][:8, :, :12]  # 12 bands < kernel_size 30
    Y = synth["Y"][:8]
    with pytest.raises(ValueError, match="kernel_size"):
        AttLocTagger(frontend="frame_cnn", time_pool=1, max_epochs=1, rnn_hidden=4, rnn_layers=1, dense_units=4,
                     random_state=0).fit(X, Y)
    t = AttLocTagger(max_epochs=1, random_state=0, **CRNN).fit(X, Y)
    assert t.predict_proba(X).shape == (8, 3)


@pytest.mark.parametrize("pooling", ["linear_softmax", "auto", "mean"])
def test_frame_outputs_of_poolings_without_attention(synth, pooling):
    X, Y = synth["X"][:16], synth["Y"][:16]
    t = AttLocTagger(pooling=pooling, max_epochs=1, random_state=0, **CRNN, time_pool=2).fit(X, Y)
    out = t.frame_outputs(X[:2])
    assert "att" not in out[0] and "loc" not in out[0]
    np.testing.assert_array_equal(out[0]["att_frame"], out[0]["frame"])
    assert t.localize(X[:2]).shape == X[:2].shape[:2] + (3,)


def test_explicit_validation_data_early_stopping_on_eer_and_weight_averaging(synth):
    tr, te = synth["train"], synth["test"]
    X, Y = synth["X"], synth["Y"]
    common = dict(max_epochs=6, random_state=0, learning_rate=3e-3, batch_size=32, **CRNN)
    t = AttLocTagger(early_stopping=True, early_stopping_metric="val_eer", patience=2, ema_decay=0.9, **common)
    t.fit(X[tr], Y[tr], X_val=X[te], y_val=Y[te])
    eers = [h["val_eer"] for h in t.history_]
    assert all(0 <= e <= 1 for e in eers)
    # the restored weights are the best epoch's: their validation EER is the minimum logged
    assert -t.score(X[te], Y[te]) == pytest.approx(min(eers), abs=1e-6)
    assert len(t.validation_indices_) == 0
    # weight averaging changes the result; without it the same seed gives other weights
    plain = AttLocTagger(ema_decay=0.0, **common).fit(X[tr], Y[tr])
    ema = AttLocTagger(ema_decay=0.9, **common).fit(X[tr], Y[tr])
    assert not np.allclose(plain.predict_proba(X[te]), ema.predict_proba(X[te]))


def test_ema_weights_are_the_moving_average_of_the_steps():
    """One epoch, 3 steps: the final weights are the moving average of the per-step weights,
    with the decay ramped up as min(decay, (1 + n) / (10 + n))."""
    from lightning.pytorch.callbacks import Callback

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, 6, 8)).astype(np.float32), np.eye(2, dtype=int)[np.arange(12) % 2]
    seen = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, pl_module, *a):
            seen.append({k: v.detach().clone() for k, v in pl_module.model.state_dict().items()})

    kw = dict(frontend="conv2d", n_filters=4, rnn_hidden=4, rnn_layers=1, dense_units=4, batch_size=4,
              max_epochs=1, random_state=0, ema_decay=0.5)
    t = AttLocTagger(callbacks=[Record()], **kw).fit(X, Y)
    avg = {k: v.clone().float() for k, v in seen[0].items()}
    for n, state in enumerate(seen[1:], start=1):
        d = min(0.5, (1 + n) / (10 + n))  # the warm-up ramp: 2/11, 3/12, then 0.5 would apply
        for k in avg:
            avg[k] = d * avg[k] + (1 - d) * state[k].float()
    got = t.model_.state_dict()
    for k in ("out.weight", "gru.weight_hh_l0", "blocks.convs.0.weight"):
        torch.testing.assert_close(got[k].float(), avg[k], rtol=1e-5, atol=1e-6)


def test_validation_arguments_are_checked(synth):
    X, Y = synth["X"][:10], synth["Y"][:10]
    with pytest.raises(ValueError, match="together"):
        AttLocTagger(max_epochs=1).fit(X, Y, X_val=X)
    t = AttLocTagger(max_epochs=1, validation_fraction=0.2, **CRNN).fit(X, Y, X_val=X[:4], y_val=Y[:4])
    assert len(t.validation_indices_) == 0 and t.event_settings_["source"] == "weak"  # X_val replaced the split
    with pytest.raises(ValueError, match="early_stopping_metric must be one of"):
        AttLocTagger(early_stopping_metric="val_f1").fit(X, Y)
    with pytest.raises(ValueError, match="ema_decay"):
        AttLocTagger(ema_decay=1.0).fit(X, Y)
    with pytest.raises(ValueError, match="X_val"):
        AttLocTagger(max_epochs=1, **CRNN).fit(X, Y, X_val=X[:, :, :20], y_val=Y)


def test_paper_config_is_the_papers_network():
    from skattloc import PAPER_CONFIG

    t = AttLocTagger(**PAPER_CONFIG)
    net = t._build_model(40, 5)
    assert sum(p.numel() for p in net.parameters()) == 926_699  # the paper's sizes, 40 bands, 5 tags
    assert net.frontend == "frame_cnn" and net.pooling == "att_loc" and net.loc_activation == "softmax"
    assert net.loc.out_features == 5 and net.loc.in_features == 128 and net.att.in_features == 40
    assert (t.max_epochs, t.batch_size, t.learning_rate) == (20, 100, 1e-3)
    assert t.spec_augment == 0 and t.mixup_alpha == 0 and t.ema_decay == 0 and t.lr_schedule == "constant"
    assert set(PAPER_CONFIG) <= set(AttLocTagger().get_params())


def test_a_model_file_without_the_new_parameters_loads_as_the_network_it_holds(tmp_path, synth):
    """Files written before the recipe parameters existed hold the paper's network."""
    import skattloc.persistence as persistence

    X, Y = synth["X"][:16], synth["Y"][:16]
    old = AttLocTagger(frontend="frame_cnn", time_pool=1, loc_background=False, loc_input="cnn", rnn_hidden=8, rnn_layers=1, dense_units=8, n_filters=8, max_epochs=1,
                       random_state=0).fit(X, Y)
    path = old.save(tmp_path / "m.skattloc")
    blob = persistence.safe_torch_load(path)
    for k in ("frontend", "conv_blocks", "time_pool", "loc_background", "loc_input", "ema_decay",
              "early_stopping_metric", "calibrate_events"):
        blob["params"].pop(k)
    blob["fitted"].pop("event_settings_")
    blob["fitted"].pop("validation_indices_")
    torch.save(blob, tmp_path / "old.skattloc")
    loaded = AttLocTagger.load(tmp_path / "old.skattloc")
    assert loaded.frontend == "frame_cnn" and loaded.calibrate_events is False
    np.testing.assert_array_equal(loaded.predict_proba(X), old.predict_proba(X))
    ev = loaded.detect_events(X[:2], filenames=["a", "b"])  # default settings without event_settings_
    assert isinstance(ev, list)


def test_inference_leaves_the_global_rng_untouched(synth):
    X, Y = synth["X"][:16], synth["Y"][:16]
    t = AttLocTagger(max_epochs=1, random_state=0, **CRNN).fit(X, Y)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    t.predict_proba(X)
    t.detect_events(X)
    torch.testing.assert_close(torch.rand(3), expected)


def test_validation_eer_is_this_epochs_when_the_callbacks_see_it(synth):
    """Early stopping and the best-epoch weights read val_eer at the end of the validation
    epoch: it must be the EER of the weights being validated, not of the epoch before."""
    from lightning.pytorch.callbacks import Callback

    from skattloc.metrics import equal_error_rate

    X, Y = synth["X"][:60], synth["Y"][:60]
    Xv, Yv = synth["X"][240:280], synth["Y"][240:280]
    seen = []

    class Check(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            with torch.no_grad():
                p = pl_module.model(torch.from_numpy(Xv)).clip.numpy()
            seen.append((float(trainer.callback_metrics["val_eer"]), float(equal_error_rate(Yv, p))))

    AttLocTagger(max_epochs=3, batch_size=16, ema_decay=0.0, callbacks=[Check()], random_state=0, **CRNN).fit(
        X, Y, X_val=Xv, y_val=Yv)
    assert len(seen) == 3
    for logged, actual in seen:
        assert logged == pytest.approx(actual, abs=1e-6)


def test_auto_validation_split_needs_100_clips(synth):
    X, Y = synth["X"], synth["Y"]
    small = AttLocTagger(max_epochs=1, random_state=0, **CRNN).fit(X[:99], Y[:99])
    assert len(small.validation_indices_) == 0 and small.event_settings_["source"] == "default"
    assert "val_eer" not in small.history_[0]
    big = AttLocTagger(max_epochs=1, random_state=0, **CRNN).fit(X[:100], Y[:100])
    assert len(big.validation_indices_) == 10 and big.event_settings_["source"] == "weak"
    with pytest.raises(ValueError, match='validation_fraction must be a number in \\[0.0, 1.0\\) \\(or "auto"\\)'):
        AttLocTagger(validation_fraction="half").fit(X[:10], Y[:10])


def test_event_scores_are_localize_smoothed_and_scaled_by_the_clip_probability(synth):
    X, Y = synth["X"][:100], synth["Y"][:100]
    t = AttLocTagger(max_epochs=1, random_state=0, **CRNN).fit(X, Y)
    t.event_settings_ = dict(t.event_settings_, median_filter=[0.0] * 3)  # no smoothing: a plain product
    es = t.event_scores(X[:4])
    assert es.shape == (4, X.shape[1], 3)
    np.testing.assert_allclose(es, t.localize(X[:4]) * t.predict_proba(X[:4])[:, None, :], rtol=1e-6)
