"""Argument checks shared by every skattloc module.

One place for each rule, so that the same mistake gets the same message wherever it is
made. This module imports nothing from skattloc (numpy only), so any module can use it
without an import circle or a heavy import (``skattloc.features`` takes its checks from
here, not from the torch-based ``skattloc.data``).

Each ``check_*`` function raises ``ValueError`` naming the argument and the value it got,
and returns the value (converted where that helps the caller); ``as_*`` functions convert
and check.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "as_clip_list",
    "as_float_array",
    "check_binary",
    "check_bool",
    "check_classes",
    "check_dict",
    "check_finite",
    "check_finite_clips",
    "check_folder_path",
    "check_frame_pairs",
    "check_frame_scores",
    "check_int",
    "check_number",
    "check_option",
    "check_positive_int",
    "check_random_seed",
    "check_seconds",
    "preview",
    "repeated",
]


# ----------------------------------------------------------------------------- scalars
def _is_int(value) -> bool:
    """An int, numpy int included, but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    """A real number, numpy floats included, but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(value, name: str, *, allow_none: bool = False):
    """Raise ``ValueError`` unless ``value`` is an int >= 1 (``bool`` is not an int here).

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The argument's name, for the message.
    allow_none : bool, default=False
        Also accept None (e.g. for "no limit").

    Returns
    -------
    int or None
        ``value``, unchanged.

    Examples
    --------
    >>> from skattloc._checks import check_positive_int
    >>> check_positive_int(3, "n_mels")
    3
    >>> check_positive_int(0, "n_mels")
    Traceback (most recent call last):
    ...
    ValueError: n_mels must be a positive int, got 0
    """
    if allow_none and value is None:
        return None
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be {'None or ' if allow_none else ''}a positive int, got {value!r}")
    return value


def check_int(value, name: str, minimum=None, *, allow_bool: bool = False, allow_none: bool = False, hint: str = ""):
    """Raise ``ValueError`` unless ``value`` is an int (>= ``minimum`` when given).

    Parameters
    ----------
    value : object
    name : str
        The argument's name, for the message.
    minimum : int or None, default=None
        Smallest allowed value.
    allow_bool : bool, default=False
        Accept True and False (as 1 and 0).
    allow_none : bool, default=False
        Also accept None.
    hint : str, default=""
        Said in parentheses after the rule, e.g. ``"0 disables it"``.

    Returns
    -------
    int or None
        ``value``.

    Examples
    --------
    >>> from skattloc._checks import check_int
    >>> check_int(0, "num_workers", 0)
    0
    >>> check_int(True, "num_workers", 0)
    Traceback (most recent call last):
    ...
    ValueError: num_workers must be an int >= 0, got True
    """
    if allow_none and value is None:
        return None
    ok = isinstance(value, numbers.Integral) and (allow_bool or not isinstance(value, bool))
    if not ok or (minimum is not None and value < minimum):
        rule = "an int" + ("" if minimum is None else f" >= {minimum}")
        raise ValueError(
            f"{name} must be {'None or ' if allow_none else ''}{rule}{f' ({hint})' if hint else ''}, got {value!r}"
        )
    return value


def check_number(value, name: str, low=None, high=None, *, closed: str = "[]", word: str = "a number", hint: str = ""):
    """Raise ``ValueError`` unless ``value`` is a finite real number in the given range.

    Parameters
    ----------
    value : object
    name : str
        The argument's name, for the message.
    low, high : float or None
        Bounds; None for no bound. Without ``high`` the rule reads ``>= low``.
    closed : {"[]", "[)", "(]", "()"}, default="[]"
        Which bounds are allowed values.
    word : str, default="a number"
        How the message names the kind of value (e.g. ``"a finite number"``).
    hint : str, default=""
        Said in parentheses after the rule.

    Returns
    -------
    float
        ``value`` as a float.

    Examples
    --------
    >>> from skattloc._checks import check_number
    >>> check_number(0.2, "dropout", 0.0, 1.0, closed="[)")
    0.2
    >>> check_number(1.0, "dropout", 0.0, 1.0, closed="[)")
    Traceback (most recent call last):
    ...
    ValueError: dropout must be a number in [0.0, 1.0), got 1.0
    """
    try:
        ok = _is_real(value) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        ok = False
    if ok and low is not None:
        ok = value >= low if closed[0] == "[" else value > low
    if ok and high is not None:
        ok = value <= high if closed[1] == "]" else value < high
    if not ok:
        if high is None:
            rule = f">= {low}" if closed[0] == "[" else f"> {low}"
        else:
            rule = f"in {closed[0]}{low}, {high}{closed[1]}"
        raise ValueError(f"{name} must be {word} {rule}{f' ({hint})' if hint else ''}, got {value!r}")
    return float(value)


def check_seconds(value, name: str, allow_zero: bool = False) -> float:
    """A finite, positive (or, with ``allow_zero``, non-negative) number of seconds.

    Examples
    --------
    >>> from skattloc._checks import check_seconds
    >>> check_seconds(0.016, "hop_s")
    0.016
    >>> check_seconds(0, "hop_s")
    Traceback (most recent call last):
    ...
    ValueError: hop_s must be > 0 seconds; got 0.
    """
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds; got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds; got {value}.")
    return float(value)


def check_option(value, name: str, options):
    """Raise ``ValueError`` unless ``value`` is one of ``options``.

    Examples
    --------
    >>> from skattloc._checks import check_option
    >>> check_option("max", "pooling", ("att_loc", "att", "mean"))
    Traceback (most recent call last):
    ...
    ValueError: pooling must be one of ('att_loc', 'att', 'mean'), got 'max'
    """
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_bool(value, name: str):
    """Raise ``ValueError`` unless ``value`` is True or False (numpy bools included).

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc._checks import check_bool
    >>> check_bool(np.True_, "resume"), check_bool(False, "resume")
    (True, False)
    >>> check_bool("yes", "resume")
    Traceback (most recent call last):
    ...
    ValueError: resume must be True or False, got 'yes'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_folder_path(value, name: str):
    """Raise ``ValueError`` unless ``value`` is None or a non-empty str or ``os.PathLike``.

    Examples
    --------
    >>> from skattloc._checks import check_folder_path
    >>> check_folder_path("runs/a", "checkpoint_dir")
    'runs/a'
    >>> check_folder_path("", "checkpoint_dir")
    Traceback (most recent call last):
    ...
    ValueError: checkpoint_dir must be None or a folder path (str or os.PathLike), got ''
    """
    if value is not None and (not isinstance(value, (str, os.PathLike)) or os.fspath(value) == ""):
        raise ValueError(f"{name} must be None or a folder path (str or os.PathLike), got {value!r}")
    return value


def check_dict(value, name: str):
    """Raise ``ValueError`` unless ``value`` is None or a dict.

    Examples
    --------
    >>> from skattloc._checks import check_dict
    >>> check_dict([("max_steps", 1)], "trainer_kwargs")
    Traceback (most recent call last):
    ...
    ValueError: trainer_kwargs must be a dict or None, got list
    """
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict or None, got {type(value).__name__}")
    return value


def check_random_seed(random_state) -> int:
    """An int seed from ``None`` (a fresh one), an int, or a numpy RandomState/Generator.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc._checks import check_random_seed
    >>> check_random_seed(7), check_random_seed(np.random.RandomState(0)) == check_random_seed(np.random.RandomState(0))
    (7, True)
    """
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy RandomState; got {random_state!r}")


# ----------------------------------------------------------------------------- arrays
def as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array; ``ValueError`` for ragged or non-numeric input.

    Examples
    --------
    >>> from skattloc._checks import as_float_array
    >>> as_float_array([[0, 1]], "y_true").dtype
    dtype('float64')
    """
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a numeric array-like (ragged nested lists are not "
            f"accepted here); got {type(x).__name__}: {exc}"
        ) from None


def check_finite(arr, name: str) -> None:
    """Raise ``ValueError`` counting the NaN and infinite values of an array.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc._checks import check_finite
    >>> check_finite(np.array([0.1, np.nan, np.inf]), "y_score")
    Traceback (most recent call last):
    ...
    ValueError: y_score contains 2 NaN or infinite value(s); expected finite numbers.
    """
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s); expected finite numbers.")


def check_finite_clips(clips, name: str) -> None:
    """Raise ``ValueError`` naming the clips (of a 3-D array or a list) that hold NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc._checks import check_finite_clips
    >>> check_finite_clips([np.zeros((3, 2)), np.full((2, 2), np.nan)], "X")
    Traceback (most recent call last):
    ...
    ValueError: X contains NaN or Inf in 1 clip(s) (first: index 1); features must be finite
    """
    if isinstance(clips, np.ndarray):
        idx = np.flatnonzero(~np.isfinite(clips).all(axis=tuple(range(1, clips.ndim))))
    else:
        idx = [i for i, c in enumerate(clips) if not np.isfinite(c).all()]
    if len(idx):
        raise ValueError(
            f"{name} contains NaN or Inf in {len(idx)} clip(s) (first: index {int(idx[0])}); "
            f"features must be finite"
        )


def check_binary(arr, name: str) -> np.ndarray:
    """``arr`` as a float array, after checking that it holds only 0 and 1.

    Examples
    --------
    >>> from skattloc._checks import check_binary
    >>> check_binary([0, 2], "y_true")
    Traceback (most recent call last):
    ...
    ValueError: y_true must be binary (0/1 or bool); found other values, e.g. [2.0].
    """
    arr = as_float_array(arr, name)
    check_finite(arr, name)
    bad = (arr != 0) & (arr != 1)
    if np.any(bad):
        examples = np.unique(arr[bad])[:5].tolist()
        raise ValueError(f"{name} must be binary (0/1 or bool); found other values, e.g. {examples}.")
    return arr


def as_clip_list(x, name: str) -> list:
    """A 3-D array ``(n_clips, n_frames, n_classes)`` or a list of 2-D arrays, as a list of
    2-D float64 arrays (clips may differ in length).

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc._checks import as_clip_list
    >>> [c.shape for c in as_clip_list([np.zeros((4, 2)), np.zeros((3, 2))], "y_score")]
    [(4, 2), (3, 2)]
    """
    if isinstance(x, np.ndarray):
        arr = as_float_array(x, name)
        if arr.ndim == 3:
            return [arr[i] for i in range(arr.shape[0])]
        raise ValueError(
            f"{name} must be an array of shape (n_clips, n_frames, n_classes) or a list "
            f"of (n_frames_i, n_classes) arrays; got an array of shape {arr.shape}."
        )
    if not isinstance(x, Sequence) or isinstance(x, (str, bytes)):
        raise ValueError(
            f"{name} must be an array of shape (n_clips, n_frames, n_classes) or a list "
            f"of (n_frames_i, n_classes) arrays; got {type(x).__name__}."
        )
    clips = []
    for i, clip in enumerate(x):
        c = as_float_array(clip, f"{name}[{i}]")
        if c.ndim != 2:
            raise ValueError(f"{name}[{i}] must be 2-D (n_frames, n_classes); got shape {c.shape}.")
        clips.append(c)
    return clips


def check_frame_scores(frame_scores, n_classes=None, name: str = "frame_scores", *, min_frames: int = 0) -> list:
    """Frame scores, clip by clip: finite, each clip ``(n_frames_i, n_classes)`` with one
    ``n_classes``; the one check of frame scores that events, post-processing and PSDS share.

    Parameters
    ----------
    frame_scores : ndarray or list of ndarray
        ``(n_clips, n_frames, n_classes)``, a list of ``(n_frames_i, n_classes)`` arrays, or
        one ``(n_frames, n_classes)`` array (one clip).
    n_classes : int, optional
        The number of class columns every clip must have (``len(classes)``); default:
        that of clip 0.
    name : str, default="frame_scores"
        How the messages name the argument.
    min_frames : int, default=0
        Fewest frames a clip may have (1: refuse empty clips).

    Returns
    -------
    list of ndarray
        One float64 ``(n_frames_i, n_classes)`` array per clip (views of a float64 input,
        not copies).

    Raises
    ------
    ValueError
        No clip, a clip that is not 2-D, a clip with another number of class columns or
        fewer than ``min_frames`` frames, or NaN / infinite scores; the message names the
        clip.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc._checks import check_frame_scores
    >>> [c.shape for c in check_frame_scores(np.zeros((4, 2)), 2)]  # one 2-D array: one clip
    [(4, 2)]
    >>> check_frame_scores([np.zeros((4, 2)), np.zeros((3, 3))], 2)
    Traceback (most recent call last):
    ...
    ValueError: frame_scores[1] has shape (3, 3): 3 class columns but classes has 2 labels; expected (n_frames, 2).
    """
    if isinstance(frame_scores, np.ndarray) and frame_scores.ndim == 2:
        frame_scores = [frame_scores]
    clips = as_clip_list(frame_scores, name)
    if not clips:
        raise ValueError(f"Empty input: {name} contains no clips; expected at least one (n_frames, n_classes) array.")
    expected = clips[0].shape[1] if n_classes is None else int(n_classes)
    source = "clip 0 has" if n_classes is None else "classes has"
    for i, c in enumerate(clips):
        if c.shape[1] != expected:
            raise ValueError(
                f"{name}[{i}] has shape {c.shape}: {c.shape[1]} class columns but {source} {expected} "
                f"{'columns' if n_classes is None else 'labels'}; expected (n_frames, {expected})."
            )
        if c.shape[0] < min_frames:
            raise ValueError(f"Empty input: {name}[{i}] has no frames; expected at least {min_frames}.")
        if not np.all(np.isfinite(c)):
            n_bad = int(c.size - np.count_nonzero(np.isfinite(c)))
            raise ValueError(
                f"{name}[{i}] contains {n_bad} NaN or infinite value(s); expected finite scores (no NaN or Inf)."
            )
    return clips


def check_frame_pairs(y_true, y_score, names=("y_true", "y_score")):
    """Frame-level truth and scores, clip by clip: 0/1 truth and finite scores of the same
    shapes, each clip ``(n_frames_i, n_classes)`` with one ``n_classes``.

    Parameters
    ----------
    y_true, y_score : ndarray of shape (n_clips, n_frames, n_classes) or list of 2-D arrays
    names : (str, str)
        How the messages name them.

    Returns
    -------
    true_clips, score_clips : list of ndarray
        One float64 ``(n_frames_i, n_classes)`` array per clip.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc._checks import check_frame_pairs
    >>> t, s = check_frame_pairs(np.zeros((2, 4, 3)), np.ones((2, 4, 3)))
    >>> len(t), s[0].shape
    (2, (4, 3))
    >>> check_frame_pairs(np.zeros((1, 4, 3)), np.ones((1, 4, 2)))
    Traceback (most recent call last):
    ...
    ValueError: Clip 0: y_true and y_score shapes differ: (4, 3) vs (4, 2); they must have the same shape.
    """
    a, b = names
    true_clips, score_clips = as_clip_list(y_true, a), as_clip_list(y_score, b)
    if len(true_clips) == 0:
        raise ValueError(f"Empty input: {a} contains no clips.")
    if len(true_clips) != len(score_clips):
        raise ValueError(
            f"{a} and {b} must contain the same number of clips; got {len(true_clips)} and {len(score_clips)}."
        )
    n_classes = true_clips[0].shape[1]
    for i, (t, s) in enumerate(zip(true_clips, score_clips)):
        if t.shape != s.shape:
            raise ValueError(f"Clip {i}: {a} and {b} shapes differ: {t.shape} vs {s.shape}; they must have the same shape.")
        if t.shape[1] != n_classes:
            raise ValueError(
                f"Clip {i} has {t.shape[1]} classes but clip 0 has {n_classes}; all clips must have the "
                "same number of classes."
            )
        check_binary(t, f"{a}[{i}]")
        check_finite(s, f"{b}[{i}]")
    if n_classes == 0:
        raise ValueError(f"Empty input: {a} has zero classes.")
    if sum(t.shape[0] for t in true_clips) == 0:
        raise ValueError(f"Empty input: {a} contains no frames.")
    return true_clips, score_clips


def check_classes(classes, n_classes=None) -> list:
    """Class labels as a list: a non-empty sequence of distinct labels, not a string.

    Parameters
    ----------
    classes : sequence or ndarray
        Labels, one per class column.
    n_classes : int, optional
        The number of class columns the labels must name.

    Returns
    -------
    list

    Examples
    --------
    >>> from skattloc._checks import check_classes
    >>> check_classes(("dog", "cat"))
    ['dog', 'cat']
    >>> check_classes(["dog", "dog"])
    Traceback (most recent call last):
    ...
    ValueError: classes contains duplicate labels: ['dog', 'dog'].
    """
    if isinstance(classes, (str, bytes)):
        raise ValueError(f"classes must be a sequence of labels, not the string {classes!r}.")
    classes = list(np.ravel(np.asarray(classes, dtype=object))) if isinstance(classes, np.ndarray) else list(classes)
    if len(classes) == 0:
        raise ValueError("classes must contain at least one label.")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes contains duplicate labels: {classes}.")
    if n_classes is not None and len(classes) != n_classes:
        raise ValueError(
            f"classes has {len(classes)} labels but the frame matrix has {n_classes} class columns."
        )
    return classes


def per_class(value, name: str, classes, low=None, high=None) -> np.ndarray:
    """One float per class from a number (all classes), a sequence in ``classes`` order, or
    a dict ``{label: value}`` with exactly the classes; finite, and in ``[low, high]``.

    Examples
    --------
    >>> from skattloc._checks import per_class
    >>> per_class({"cat": 0.2, "dog": 0.7}, "threshold", ["dog", "cat"]).tolist()
    [0.7, 0.2]
    >>> per_class([0.1, 0.2, 0.3], "threshold", ["dog", "cat"])
    Traceback (most recent call last):
    ...
    ValueError: threshold must be a number, 2 per-class values (in classes order) or a dict {label: value}; got shape (3,).
    """
    classes = list(classes)
    if isinstance(value, Mapping):
        missing = [c for c in classes if c not in value]
        extra = [k for k in value if k not in set(classes)]
        if missing or extra:
            parts = ([f"no entry for {missing}"] if missing else []) + ([f"labels not in classes {extra}"] if extra else [])
            raise ValueError(f"{name} dict must have exactly one entry per class of {classes}: {'; '.join(parts)}.")
        value = [value[c] for c in classes]
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a number, one per class, or a dict {{label: value}}; got {value!r}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric; got {value!r}.") from None
    if arr.ndim == 0:
        arr = np.full(len(classes), float(arr))
    elif arr.shape != (len(classes),):
        raise ValueError(
            f"{name} must be a number, {len(classes)} per-class values (in classes order) or a dict "
            f"{{label: value}}; got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} values must be finite; got {arr.tolist()}.")
    if (low is not None and np.any(arr < low)) or (high is not None and np.any(arr > high)):
        raise ValueError(f"{name} must lie in [{low}, {high}]; got {arr.tolist()}.")
    return arr


def event_fields(ev, i: int, name: str, mappings: bool = True):
    """``(filename, onset, offset, label)`` of one event, a 4-tuple or (with ``mappings``)
    a dict with the DCASE keys (``filename`` or ``file``, ``onset``/``event_onset``,
    ``offset``/``event_offset``, ``event_label``); ValueError naming ``name[i]`` otherwise.
    Times are returned as given (the callers check them).

    Examples
    --------
    >>> from skattloc._checks import event_fields
    >>> event_fields({"filename": "a.wav", "onset": 1, "offset": 2, "event_label": "dog"}, 0, "ref")
    ('a.wav', 1, 2, 'dog')
    >>> event_fields(("a.wav", 1.0), 3, "ref")
    Traceback (most recent call last):
    ...
    ValueError: ref[3] must be a (filename, onset, offset, event_label) tuple; got ('a.wav', 1.0).
    """
    if mappings and isinstance(ev, Mapping):
        fn = ev.get("filename", ev.get("file"))
        onset = ev.get("onset", ev.get("event_onset"))
        offset = ev.get("offset", ev.get("event_offset"))
        label = ev.get("event_label")
        if onset is None or offset is None or label is None:
            raise ValueError(
                f"{name}[{i}] must have 'onset', 'offset' and 'event_label' keys; got {sorted(ev)}."
            )
        return fn, onset, offset, label
    try:
        fn, onset, offset, label = ev
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}[{i}] must be a (filename, onset, offset, event_label) tuple; got {ev!r}."
        ) from None
    return fn, onset, offset, label


# ----------------------------------------------------------------------------- messages
def repeated(names) -> list:
    """The items of ``names`` seen before, in order (each repeat once per extra time).

    Examples
    --------
    >>> from skattloc._checks import repeated
    >>> repeated(["a", "b", "a", "c", "b"])
    ['a', 'b']
    """
    seen, repeats = set(), []
    for name in names:
        if name in seen:
            repeats.append(name)
        seen.add(name)
    return repeats


def preview(names, n: int = 5) -> str:
    """The first ``n`` items quoted and comma-joined, with ``", ..."`` when there are more.

    Examples
    --------
    >>> from skattloc._checks import preview
    >>> preview(["a.wav", "b.wav", "c.wav"], n=2)
    "'a.wav', 'b.wav', ..."
    """
    names = list(names)
    shown = ", ".join(repr(str(x)) for x in names[:n])
    return shown + (", ..." if len(names) > n else "")
