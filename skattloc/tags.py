"""Clip tags as 0/1 indicator matrices: the one tag encoder of skattloc.

Clip-level tags (``y`` of :meth:`AttLocTagger.fit <skattloc.AttLocTagger.fit>` and
:meth:`GMMTagger.fit <skattloc.GMMTagger.fit>`, the tags of a data set, the ``y`` that
:data:`~skattloc.metrics.eer_scorer` scores) come in two forms:

- an **indicator matrix** ``(n_clips, n_classes)`` of 0/1 (bool, int or float), column
  ``k`` standing for ``classes[k]`` (``0 .. n_classes-1`` when the classes are not named);
- **tag names**: one collection (list, tuple or set) of names per clip, e.g.
  ``[["dog", "speech"], [], ["dog"]]``; the classes are then the sorted names.

How the form is told: a numeric array is a matrix, an object array holds tag collections;
a list is a matrix when every row is a non-empty sequence of numbers (``[[0, 1], [1, 0]]``),
else it holds tag collections (``[[], ["dog"]]``; an empty row is a clip without tags, as a
matrix row is never empty, so ``[[], [3], [1, 3]]`` are tags named by numbers). Every estimator, data set loader, scorer and
command of skattloc encodes tags with :func:`encode_tags`, so the same input gives the same
classes and the same messages everywhere.
"""
from __future__ import annotations

import unicodedata
import warnings

import numpy as np

__all__ = ["check_tag_names", "decode_tags", "encode_tags", "tagger_sklearn_tags"]

_FORMS = "an (n_clips, n_classes) 0/1 matrix or one collection of tag names per clip"


def _is_number_row(row) -> bool:
    """A number, or a 1-D sequence of numbers or bools (a row of an indicator matrix)."""
    if isinstance(row, (set, frozenset, str, bytes)):
        return False
    try:
        a = np.asarray(row)
    except ValueError:  # ragged
        return False
    return a.ndim <= 1 and a.dtype != object and (np.issubdtype(a.dtype, np.number) or a.dtype == bool)


def _as_array_like(y):
    """Sparse matrices, torch tensors and other array-likes (DataFrames...) as numpy."""
    if hasattr(y, "toarray"):
        return y.toarray()
    if hasattr(y, "detach") and hasattr(y, "numpy"):  # a torch tensor, without importing torch
        return y.detach().cpu().numpy()
    if not isinstance(y, (np.ndarray, list, tuple)) and hasattr(y, "__array__"):
        return np.asarray(y)
    return y


def encode_tags(y, classes=None, *, n_clips=None, kind="auto", name="Y", owner="skattloc", known_as=None):
    """Clip tags as a 0/1 indicator matrix, and the classes of its columns.

    Parameters
    ----------
    y : array-like of shape (n_clips, n_classes), or sequence of collections of tag names
        The tags of each clip (see the module documentation for the two forms).
    classes : array-like of shape (n_classes,), optional
        The classes the columns must stand for (e.g. a fitted estimator's ``classes_``).
        Tag names outside them raise ``ValueError``; a matrix must have one column per
        class. None: found from ``y`` (the sorted tag names, or ``0 .. n_classes-1``).
    n_clips : int, optional
        The number of clips ``y`` must describe (the clips of ``X``).
    kind : {"auto", "names"}, default="auto"
        ``"names"``: ``y`` holds tag collections, even when every one is empty.
    name : str, default="Y"
        How the messages name ``y``.
    owner : str, default="skattloc"
        Who requires ``y`` (the message when ``y`` is None), e.g. ``"AttLocTagger"``.
    known_as : str, optional
        How the messages name ``classes``; default ``"classes_=[...]"``.

    Returns
    -------
    Y : ndarray of shape (n_clips, n_classes), int64
        ``Y[i, k] = 1`` iff clip ``i`` has the tag ``classes[k]``.
    classes : ndarray of shape (n_classes,) or the given ``classes``
        Found from ``y`` when ``classes`` is None: the sorted tag names (an object array
        of names, or of ints when every tag is an int), or ``arange(n_classes)`` for a
        matrix.

    Raises
    ------
    ValueError
        ``y`` is None; its row count is not ``n_clips``; a clip's tags are a string; a
        tag is not in ``classes``; no clip has a tag (names without ``classes``); a matrix
        that is not 2-D, has no column, holds values other than 0/1, or has another number
        of columns than ``classes``; a tag name (found from ``y``) with a tab, a line break
        or another control character (:func:`check_tag_names`).

    Warns
    -----
    UserWarning
        Tag names (found from ``y``) with a comma (:func:`check_tag_names`).

    Examples
    --------
    >>> from skattloc.tags import encode_tags
    >>> Y, classes = encode_tags([["speech", "dog"], [], ["dog"]])
    >>> Y.tolist(), classes.tolist()
    ([[1, 1], [0, 0], [1, 0]], ['dog', 'speech'])
    >>> encode_tags([[0, 1], [1, 1]])[1]
    array([0, 1])
    >>> encode_tags([["cat"]], classes=classes)
    Traceback (most recent call last):
    ...
    ValueError: Y has tags ['cat'] that are not in classes_=['dog', 'speech']
    """
    if y is None:
        raise ValueError(
            f"{owner} requires y to be passed, but the target y is None; give clip tags {name}: {_FORMS}"
        )
    y = _as_array_like(y)
    if n_clips is not None and len(y) != n_clips:
        raise ValueError(f"X has {n_clips} clips but {name} has {len(y)} rows; they must match")
    if kind == "names" or (y.dtype == object if isinstance(y, np.ndarray) else _holds_tag_lists(y)):
        return _encode_names(y, classes, name, known_as)
    return _encode_matrix(y, classes, name)


def _holds_tag_lists(rows) -> bool:
    """Whether a list (not an array) holds tag collections rather than matrix rows: some row
    is not a sequence of numbers, or some rows are empty and others not (a clip without tags
    beside tagged ones; a matrix row is never empty)."""
    if not all(_is_number_row(r) for r in rows):
        return True
    sizes = {np.size(r) for r in rows if np.ndim(r) == 1}
    return 0 in sizes and len(sizes) > 1


def _encode_names(y, classes, name, known_as):
    rows = list(y)
    for i, tags in enumerate(rows):
        if isinstance(tags, (str, bytes)):
            raise ValueError(
                f"{name}[{i}] is the string {tags!r}; give each clip's tags as a list, tuple or "
                f"set of tag names (e.g. ['b', 'p']), or an (n_clips, n_classes) 0/1 matrix"
            )
    if classes is None:
        from sklearn.preprocessing import MultiLabelBinarizer  # its class order and dtype rules

        mlb = MultiLabelBinarizer()
        try:
            Y = mlb.fit_transform(rows)
        except TypeError:  # sorting names of different types: '<' between int and str
            by_type = {}
            for tag in sorted({t for tags in rows for t in tags}, key=repr):
                by_type.setdefault(type(tag).__name__, []).append(tag)
            if len(by_type) < 2:
                raise
            kinds = ", ".join(f"{kind}: {tags[:5]}" for kind, tags in sorted(by_type.items()))
            raise ValueError(
                f"{name} mixes tag names of different types ({kinds}); expected all tags as strings "
                f"(or all as ints)"
            ) from None
        if Y.shape[1] == 0:
            raise ValueError(
                f"{name} has no tag in any clip; at least 1 class is required (each clip's tags as "
                f"a list of names, e.g. [['dog'], []])"
            )
        check_tag_names(mlb.classes_, name)
        return Y.astype(np.int64), mlb.classes_
    listed = np.asarray(classes).tolist()
    index = {c: k for k, c in enumerate(listed)}
    unknown = sorted({t for tags in rows for t in tags} - set(index), key=str)
    if unknown:
        raise ValueError(f"{name} has tags {unknown} that are not in {known_as or f'classes_={listed}'}")
    Y = np.zeros((len(rows), len(listed)), dtype=np.int64)
    for i, tags in enumerate(rows):
        Y[i, [index[t] for t in tags]] = 1
    return Y, classes


def _control_character(tag):
    """The first character of a tag name that no line of a tab-separated file can hold (a
    tab, a line break, another control character), or None."""
    if isinstance(tag, bytes):
        tag = tag.decode("latin-1")
    if not isinstance(tag, str):
        return None
    for ch in tag:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):  # controls; line/paragraph separators
            return ch
    return None


def check_tag_names(classes, name="Y") -> None:
    """Refuse tag names that the outputs of skattloc cannot hold; warn about commas.

    The DCASE event list that ``skattloc localize`` writes (and
    :func:`skattloc.events.write_events_tsv`) is tab-separated with one event per line, so a
    tag name with a tab, a line break or another control character cannot be written in
    it. The predictions CSV of ``skattloc predict`` joins a clip's tags with commas in its
    ``tags`` column, so a tag name with a comma would be read back as several tags.
    Leading and trailing spaces are kept as they are.

    Parameters
    ----------
    classes : sequence
        The tag names (other values, e.g. ints, are not checked).
    name : str, default="Y"
        How the messages name the tags' source.

    Raises
    ------
    ValueError
        A tag name holds a tab, a newline, a carriage return or another control character
        (or a Unicode line or paragraph separator); the message names it (``repr``).

    Warns
    -----
    UserWarning
        Tag names with a comma, all named in one warning.

    Examples
    --------
    >>> from skattloc.tags import check_tag_names
    >>> check_tag_names(["dog", "car horn"])
    >>> check_tag_names(["dog", "car\\thorn"])
    Traceback (most recent call last):
    ...
    ValueError: Y has the tag 'car\\thorn', whose name holds a tab ('\\t'): the DCASE event list (tab-separated, one event per line) cannot carry it; expected tag names without tabs, line breaks or other control characters
    """
    words = {"\t": "a tab", "\n": "a newline", "\r": "a carriage return"}
    commas = []
    for tag in np.asarray(classes, dtype=object).tolist():
        ch = _control_character(tag)
        if ch is not None:
            what = words.get(ch, "a control character")
            raise ValueError(
                f"{name} has the tag {tag!r}, whose name holds {what} ({ch!r}): the DCASE event "
                f"list (tab-separated, one event per line) cannot carry it; expected tag names "
                f"without tabs, line breaks or other control characters"
            )
        if isinstance(tag, str) and "," in tag:
            commas.append(tag)
    if commas:
        warnings.warn(
            f"{name} has tags with a comma: {commas}; the predictions CSV of `skattloc predict` "
            f"separates a clip's tags with commas, so it would list each as several tags. "
            f"Rename them (e.g. 'a;b' or 'a_b') to use that CSV",
            UserWarning,
            stacklevel=4,
        )


def _encode_matrix(y, classes, name):
    try:
        Y = np.asarray(y)
    except ValueError:  # ragged rows of numbers
        sizes = sorted({int(np.size(r)) for r in y})
        raise ValueError(
            f"{name} rows have different lengths {sizes}; as an (n_clips, n_classes) 0/1 matrix every row "
            f"needs one value per class, or give one collection of tag names per clip"
        ) from None
    if Y.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_clips, n_classes), got a 1-D array of shape {Y.shape}; "
            f"for one tag use {name}.reshape(-1, 1)"
        )
    if Y.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_clips, n_classes) 0/1 matrix, got shape {Y.shape}")
    if Y.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 columns (shape {Y.shape}); at least 1 class is required: an (n_clips, "
            f"n_classes) 0/1 matrix with n_classes >= 1"
        )
    if not (np.issubdtype(Y.dtype, np.number) or Y.dtype == bool):
        raise ValueError(f"{name} must hold 0/1 values, got dtype {Y.dtype}")
    bad = ~np.isin(Y, (0, 1))
    if bad.any():
        vals = np.unique(Y[bad])[:5]
        kind = "continuous" if np.any(vals != np.round(vals)) else "multiclass"
        raise ValueError(
            f"Unknown label type: {kind}. {name} must be a 0/1 indicator matrix (n_clips, n_classes); "
            f"found other values such as {vals.tolist()}"
            + (" (AttLocTagger.fit reads a row of -1 in every column as an unlabeled clip; -1 never marks "
               "a single tag)" if -1 in vals else "")
        )
    if classes is None:
        return Y.astype(np.int64), np.arange(Y.shape[1])
    if Y.shape[1] != len(classes):
        raise ValueError(
            f"{name} has {Y.shape[1]} columns but the model has {len(classes)} classes "
            f"(classes_={np.asarray(classes).tolist()}); the columns must match classes_"
        )
    return Y.astype(np.int64), classes


def decode_tags(Y, classes) -> list:
    """The tags of each row of an indicator matrix, as tuples of class names.

    Parameters
    ----------
    Y : array-like of shape (n_clips, n_classes)
        0/1 indicator matrix.
    classes : array-like of shape (n_classes,)
        The class of each column.

    Returns
    -------
    list of tuple
        One tuple per clip, in column order.

    Examples
    --------
    >>> from skattloc.tags import decode_tags
    >>> decode_tags([[1, 0, 1], [0, 0, 0]], ["dog", "cat", "speech"])
    [('dog', 'speech'), ()]
    """
    classes = np.asarray(classes)
    return [tuple(classes[np.flatnonzero(row)].tolist()) for row in np.asarray(Y)]


def tagger_sklearn_tags(tags):
    """Declare, on scikit-learn's estimator tags, what a clip tagger of skattloc takes.

    Clips of frames as input (a 3-D array or a list of 2-D arrays, not a 2-D table), and
    clip tags as target: required, multi-label (one column per tag, see
    :func:`encode_tags`). :class:`~skattloc.AttLocTagger` and
    :class:`~skattloc.GMMTagger` both declare this.

    Parameters
    ----------
    tags : sklearn.utils.Tags
        ``super().__sklearn_tags__()`` of the estimator.

    Returns
    -------
    sklearn.utils.Tags
        ``tags``, changed in place.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator, ClassifierMixin
    >>> from skattloc.tags import tagger_sklearn_tags
    >>> class Tagger(ClassifierMixin, BaseEstimator):
    ...     def __sklearn_tags__(self):
    ...         return tagger_sklearn_tags(super().__sklearn_tags__())
    >>> t = Tagger().__sklearn_tags__()
    >>> t.input_tags.three_d_array, t.input_tags.two_d_array, t.classifier_tags.multi_label
    (True, False, True)
    """
    tags.input_tags.two_d_array = False
    tags.input_tags.three_d_array = True
    tags.target_tags.required = True
    tags.target_tags.multi_output = True
    tags.target_tags.single_output = False
    tags.classifier_tags.multi_label = True
    return tags
