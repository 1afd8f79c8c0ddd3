"""The one tag encoder (issue 12): the same tags give the same matrix, classes and messages in
the estimators, the scorer and the data set loaders."""
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skattloc import AttLocTagger, GMMTagger
from skattloc.metrics import eer_score
from skattloc.tags import decode_tags, encode_tags

NAMES = [["speech", "dog"], [], ["dog"], ["speech"]]
MATRIX = [[1, 1], [0, 0], [1, 0], [0, 1]]


@pytest.mark.parametrize(
    "y",
    [
        NAMES,
        [set(t) for t in NAMES],
        [tuple(t) for t in NAMES],
        np.array([list(t) for t in NAMES], dtype=object),
    ],
    ids=["lists", "sets", "tuples", "object-array"],
)
def test_tag_names_in_any_collection(y):
    Y, classes = encode_tags(y)
    assert Y.tolist() == MATRIX and classes.tolist() == ["dog", "speech"] and Y.dtype == np.int64


@pytest.mark.parametrize(
    "y",
    [MATRIX, np.array(MATRIX), np.array(MATRIX, dtype=bool), np.array(MATRIX, dtype=float),
     sp.csr_matrix(MATRIX), torch.tensor(MATRIX)],
    ids=["lists", "ints", "bools", "floats", "sparse", "tensor"],
)
def test_indicator_matrices_in_any_form(y):
    Y, classes = encode_tags(y)
    assert Y.tolist() == MATRIX and classes.tolist() == [0, 1]


def test_a_first_clip_without_tags_is_still_read_as_names():
    """Only the first row used to decide: [[], ["dog"]] was taken for a (ragged) matrix."""
    Y, classes = encode_tags([[], ["dog"], ["cat", "dog"]])
    assert Y.tolist() == [[0, 0], [0, 1], [1, 1]] and classes.tolist() == ["cat", "dog"]
    Y, _ = encode_tags([[], []], classes=["dog"], kind="names")
    assert Y.tolist() == [[0], [0]]


def test_known_classes_keep_their_order_and_refuse_other_tags():
    Y, classes = encode_tags([["b"], ["a", "b"]], classes=np.array(["b", "a"], dtype=object))
    assert Y.tolist() == [[1, 0], [1, 1]] and classes.tolist() == ["b", "a"]
    with pytest.raises(ValueError, match=r"^Y has tags \['c', 'd'\] that are not in classes_=\['b', 'a'\]$"):
        encode_tags([["c"], ["d", "a"]], classes=["b", "a"])
    with pytest.raises(ValueError, match=r"the data has tags \['c'\] that are not in the model's tags"):
        encode_tags([["c"]], classes=["a"], name="the data", known_as="the model's tags ['a']")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=None, owner="GMMTagger"), r"^GMMTagger requires y to be passed, but the target y is None"),
        (dict(y=MATRIX, n_clips=3), r"^X has 3 clips but Y has 4 rows; they must match$"),
        (dict(y=["dog", "cat"]), r"^Y\[0\] is the string 'dog'; give each clip's tags as a list"),
        (dict(y=[set(), set()]), r"^Y has no tag in any clip; at least 1 class is required"),
        (dict(y=[0, 1, 1]), r"^Y must be 2-D \(n_clips, n_classes\), got a 1-D array"),
        (dict(y=[[0, 2], [1, 0]]), r"^Unknown label type: multiclass\. Y must be a 0/1 indicator matrix"),
        (dict(y=MATRIX, classes=[0, 1, 2]), r"^Y has 2 columns but the model has 3 classes"),
    ],
)
def test_one_set_of_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        encode_tags(**kwargs)


def test_decode_inverts_encode():
    Y, classes = encode_tags(NAMES)
    assert decode_tags(Y, classes) == [tuple(sorted(t)) for t in NAMES]


def test_both_estimators_read_tags_alike():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 6, 4)).astype(np.float32)
    tags = [[], ["dog"], ["cat", "dog"], ["cat"]] * 2  # the first clip has no tag
    gmm = GMMTagger(n_components=1, n_mfcc=2, random_state=0).fit(X, tags)
    att = AttLocTagger(n_filters=2, kernel_size=2, rnn_hidden=2, rnn_layers=1, dense_units=2, max_epochs=1,
                       random_state=0).fit(X, tags)
    assert gmm.classes_.tolist() == att.classes_.tolist() == ["cat", "dog"]
    for est in (gmm, att):
        with pytest.raises(ValueError, match=r"Y has tags \['bird'\] that are not in classes_"):
            est.score(X[:2], [["bird"], []])
        with pytest.raises(ValueError, match=rf"^{type(est).__name__} requires y to be passed"):
            est.fit(X, None)
        assert not hasattr(est, "_mlb")  # no fitted state beside classes_


def test_scorer_names_unknown_tags_with_the_same_template():
    class Fixed:
        classes_ = np.array(["a", "b"])

        def predict_proba(self, X):
            return np.asarray(X, dtype=float)

    X = [[0.9, 0.2], [0.1, 0.8]]
    with pytest.raises(ValueError, match=r"^y has tags \['z'\] that are not in the estimator's classes_ \['a', 'b'\]$"):
        eer_score(Fixed(), X, [["z"], ["a"]])


# ------------------------------------------------------------------ tag names no output can hold (issue 17, item 4)
@pytest.mark.parametrize(
    "tag, what",
    [
        ("car\thorn", r"a tab \('\\t'\)"),
        ("car\nhorn", r"a newline \('\\n'\)"),
        ("car horn\r", r"a carriage return \('\\r'\)"),
        ("car\x00horn", r"a control character \('\\x00'\)"),
        ("car\x1bhorn", r"a control character \('\\x1b'\)"),
        ("car\u2028horn", r"a control character \('\\u2028'\)"),
    ],
    ids=["tab", "newline", "carriage-return", "nul", "escape", "line-separator"],
)
def test_tag_names_with_control_characters_are_refused(tag, what):
    with pytest.raises(ValueError, match=rf"^Y has the tag {re.escape(repr(tag))}, whose name holds {what}: the DCASE event list \(tab-separated, one event per line\) cannot carry it; expected tag names without tabs, line breaks or other control characters$"):
        encode_tags([["dog", tag], []])


def test_fit_refuses_a_tag_name_with_a_tab_before_training():
    X = np.random.default_rng(0).normal(size=(4, 6, 4)).astype(np.float32)
    tags = [["dog"], ["car\thorn"], [], ["dog"]]
    att = AttLocTagger(n_filters=2, kernel_size=2, rnn_hidden=2, rnn_layers=1, dense_units=2, max_epochs=1, random_state=0)
    for est in (att, GMMTagger(n_components=1, n_mfcc=2, random_state=0)):
        with pytest.raises(ValueError, match=r"Y has the tag 'car\\thorn', whose name holds a tab"):
            est.fit(X, tags)
        assert not hasattr(est, "classes_")


def test_tag_names_with_a_comma_are_accepted_with_a_warning():
    with pytest.warns(UserWarning, match=r"^Y has tags with a comma: \['car, horn', 'dog,cat'\]; the predictions CSV of `skattloc predict` separates a clip's tags with commas"):
        Y, classes = encode_tags([["car, horn"], ["dog,cat", "bird"], []])
    assert classes.tolist() == ["bird", "car, horn", "dog,cat"] and Y.tolist() == [[0, 1, 0], [1, 0, 1], [0, 0, 0]]


def test_other_tag_names_pass_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # spaces (leading and trailing too), unicode, ints: as they are
        Y, classes = encode_tags([[" dog", "car horn ", "Hund-Bellen/ä"], []])
        assert classes.tolist() == [" dog", "Hund-Bellen/ä", "car horn "]
        assert encode_tags([[], [3], [1, 3]])[1].tolist() == [1, 3]
        # known classes (predict, score): checked when they were found, not again
        encode_tags([["a,b"]], classes=np.array(["a,b"], dtype=object))


def test_tag_names_mixing_strings_and_numbers_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"^Y mixes tag names of different types \(int: \[3\], str: \['dog'\]\); expected all tags as strings"):
        encode_tags([["dog"], [3]])
