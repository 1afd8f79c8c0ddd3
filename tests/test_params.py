"""The parameter table (issue 16): each parameter of AttLocTagger declared once in
skattloc.params, and everything else derived from it."""
import inspect
import textwrap

import numpy as np
import pytest
from sklearn.base import clone

from skattloc import PAPER_CONFIG, AttLocTagger, params
from skattloc.params import PARAMETERS, Param


def test_init_signature_is_the_table_in_order_with_its_defaults():
    sig = inspect.signature(AttLocTagger.__init__)
    declared = [(p.name, p.default) for p in PARAMETERS.values()]
    in_init = [(name, p.default) for name, p in sig.parameters.items() if name != "self"]
    assert in_init == declared


def test_init_stores_each_argument_as_given():
    values = {name: object() for name in PARAMETERS}
    tagger = AttLocTagger(**values)
    assert all(getattr(tagger, name) is value for name, value in values.items())
    assert set(vars(tagger)) == set(PARAMETERS)


def test_every_group_is_known_and_the_network_group_is_cgrnns_keywords():
    torch = pytest.importorskip("torch")  # noqa: F841
    from skattloc.model import CGRNN

    assert {p.group for p in PARAMETERS.values()} <= set(params.GROUPS)
    cgrnn = [n for n in inspect.signature(CGRNN.__init__).parameters if n not in ("self", "n_mels", "n_classes")]
    assert sorted(params.names("network")) == sorted(cgrnn)


def test_module_keywords_are_training_parameters():
    pytest.importorskip("torch")
    from skattloc.module import AttLocModule

    # mean_teacher follows from the data (unlabeled clips), not from a parameter
    module_kw = [n for n in inspect.signature(AttLocModule.__init__).parameters if n not in ("self", "model", "mean_teacher")]
    assert set(module_kw) <= set(params.names("training"))


def test_docstring_lists_every_parameter_from_the_table():
    doc = AttLocTagger.__doc__
    for p in PARAMETERS.values():
        assert "    " + p.type_line() + "\n" in doc, p.name
        assert textwrap.dedent(p.doc).strip().split("\n")[0] in doc
    assert 'pooling : {"att_loc", "att", "mean", "linear_softmax", "auto", "loc"}, default="att_loc"' in doc


def test_paper_config_resume_and_legacy_values_come_from_the_table():
    assert PAPER_CONFIG == {n: p.paper for n, p in PARAMETERS.items() if n in PAPER_CONFIG}
    assert PAPER_CONFIG["rnn_hidden"] == 128 and PAPER_CONFIG["frontend"] == "frame_cnn"
    assert "batch_size" in params.resume_params() and "learning_rate" not in params.resume_params()
    assert params.legacy_values()["frontend"] == "frame_cnn"


def test_resume_fingerprint_covers_exactly_the_resume_parameters():
    pytest.importorskip("lightning")
    from skattloc.training import fit_fingerprint

    fp = fit_fingerprint(AttLocTagger(), 0, 40, np.array(["a"]), np.ones((2, 1)))
    assert set(fp["params"]) == set(params.resume_params())


@pytest.mark.parametrize("name", [n for n, p in PARAMETERS.items() if p.choices])
def test_choices_are_what_the_rule_accepts(name):
    for value in params.choices(name):  # each alone, with the one setting some of them need
        params.validate_params({name: value, **({"time_pool": 1} if name == "frontend" else {})})
    with pytest.raises(ValueError, match=name):
        params.validate_params({name: "no-such-option"})


def test_validate_params_refuses_unknown_names_and_checks_combinations():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_layers'\]"):
        params.validate_params({"n_layers": 2})
    with pytest.raises(ValueError, match="time_pool=2 needs frontend='conv2d'"):
        params.validate_params({"frontend": "frame_cnn", "time_pool": 2})
    with pytest.raises(ValueError, match="localization='loc'"):
        params.validate_params({"localization": "loc", "pooling": "mean"})
    with pytest.raises(ValueError, match="kernel_size=30 is larger than the 20"):
        params.validate_params({"frontend": "frame_cnn", "time_pool": 1}, n_features=20)


def test_a_new_parameter_is_one_declaration_plus_its_init_line(monkeypatch, tmp_path):
    """Declare a parameter in the table, add its __init__ line: get_params, clone, the
    checks, the docstring, the resume fingerprint and older model files all follow."""
    new = Param("smoothing_knob", 3, "inference", params.positive_int, kind="int",
                doc="A knob added after model files were written.", resume=True, legacy=1)
    monkeypatch.setitem(PARAMETERS, new.name, new)  # edit 1: the declaration
    sig = inspect.signature(AttLocTagger.__init__)
    args = ", ".join(f"{n}={p.default!r}" for n, p in sig.parameters.items() if n != "self")
    namespace = {"AttLocTagger": AttLocTagger}
    exec(textwrap.dedent(f"""
        class Tagger(AttLocTagger):
            def __init__(self, {args}, smoothing_knob=3):  # edit 2: its __init__ line
                vars(self).update((k, v) for k, v in locals().items() if k not in ("self", "__class__"))
    """), namespace)
    Tagger = namespace["Tagger"]
    assert Tagger().get_params()["smoothing_knob"] == 3
    assert clone(Tagger(smoothing_knob=5)).smoothing_knob == 5
    with pytest.raises(ValueError, match="smoothing_knob must be a positive int"):
        Tagger(smoothing_knob=0)._validate_params()
    assert "smoothing_knob : int, default=3" in params.docstring_section()
    assert "smoothing_knob" in params.resume_params()
    assert params.legacy_values()["smoothing_knob"] == 1
    pytest.importorskip("lightning")
    from skattloc.training import fit_fingerprint

    assert fit_fingerprint(Tagger(smoothing_knob=7), 0, 4, np.array(["a"]), np.ones((2, 1)))["params"]["smoothing_knob"] == 7
    # a model file written before the parameter existed loads with its legacy value
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 5, 4)).astype("float32"), np.eye(2, dtype=int)[np.arange(6) % 2]
    fitted = AttLocTagger(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4, max_epochs=1,
                          frontend="frame_cnn", time_pool=1, random_state=0).fit(X, Y)
    monkeypatch.delitem(PARAMETERS, new.name)
    path = fitted.save(tmp_path / "old.skattloc")  # written without the knob
    monkeypatch.setitem(PARAMETERS, new.name, new)
    assert Tagger.load(path).smoothing_knob == 1
