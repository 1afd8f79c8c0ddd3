"""Every label a user has: clip tags, event times on some clips, and unlabeled clips.

:meth:`AttLocTagger.fit <skattloc.AttLocTagger.fit>` learns from three kinds of clips at once
(as the DCASE task 4 systems do):

- **tagged** clips: a row of ``y`` (clip loss, eq. 1);
- **timed** clips: clips named in ``fit(..., events=...)``, whose event times give a frame
  target for every frame (a frame loss on top of the clip loss; their tags follow from
  their events);
- **unlabeled** clips: a row of ``y`` equal to -1 (a 0/1 matrix) or None (tag-name
  collections), scikit-learn's semi-supervised convention; they train through the mean
  teacher's consistency loss only.

This module turns those inputs into per-clip targets and kinds; it imports no torch.
"""
from __future__ import annotations

import numbers
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _checks
from .events import events_to_frames, read_events_tsv

__all__ = ["KINDS", "Supervision", "parse_supervision", "split_by_groups", "split_by_kind"]

#: Clip kinds, by code: 0 tagged, 1 timed, 2 unlabeled.
KINDS = ("tagged", "timed", "unlabeled")
TAGGED, TIMED, UNLABELED = 0, 1, 2


def _unlabeled_rows(y, n_clips: int) -> Tuple[object, np.ndarray]:
    """``(y with the unlabeled rows dropped, mask of unlabeled rows)``.

    Unlabeled: a row of -1 in a numeric matrix, None in a list of tag collections. Anything
    else (a row mixing -1 with other values among it) comes back as it is, for the tag
    encoder to refuse.
    """
    none = np.zeros(n_clips, dtype=bool)
    if isinstance(y, (list, tuple)) and any(v is None for v in y):
        return [v for v in y if v is not None], np.array([v is None for v in y], dtype=bool)
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError):  # ragged tag collections
        return y, none
    if arr.dtype.kind not in "iuf" or arr.ndim != 2 or len(arr) != n_clips:
        return y, none
    mask = (arr == -1).all(axis=1) if arr.shape[1] else none
    return (arr[~mask] if mask.any() else y), mask


def _events_by_clip(events, n_clips: int, filenames) -> Dict[int, list]:
    """Events ``(clip, onset_s, offset_s, tag)`` grouped by clip index; ``clip`` is an index
    into X or (with ``filenames``) a clip name; ``events`` may be a DCASE TSV path."""
    if isinstance(events, (str, os.PathLike)):
        if filenames is None:
            raise ValueError(
                f"events={os.fspath(events)!r} is an event list that names clips by file name: give "
                f"filenames=, the name of each clip of X"
            )
        events = read_events_tsv(events)
    if filenames is not None:
        if isinstance(filenames, (str, bytes)) or len(filenames) != n_clips:
            raise ValueError(f"filenames must name each of the {n_clips} clips of X, got {len(filenames)} name(s)")
        index = {str(f): i for i, f in enumerate(filenames)}
        repeats = _checks.repeated([str(f) for f in filenames])
        if repeats:
            raise ValueError(f"filenames names a clip twice: {repeats[:3]}")
    out: Dict[int, list] = {}
    unknown = []
    for i, ev in enumerate(events):
        clip, onset, offset, tag = _checks.event_fields(ev, i, "events")
        if isinstance(clip, numbers.Integral) and not isinstance(clip, bool):
            j = int(clip)
            if not 0 <= j < n_clips:
                raise ValueError(f"events[{i}] names clip index {j}, but X has {n_clips} clips (0 .. {n_clips - 1})")
        elif filenames is not None and str(clip) in index:
            j = index[str(clip)]
        else:
            unknown.append(clip)
            continue
        out.setdefault(j, []).append((float(onset), float(offset), str(tag)))
    if unknown:
        how = "file names in filenames" if filenames is not None else "integer clip indices (or give filenames=)"
        raise ValueError(
            f"{len(unknown)} event(s) name clips that are not in X, e.g. {unknown[:3]}; events name their clips "
            f"by {how}"
        )
    return out


class Supervision:
    """The labels of each training clip, by kind (see the module).

    Attributes
    ----------
    kinds : ndarray of int (n_clips,)
        0 tagged, 1 timed, 2 unlabeled.
    Y : ndarray float32 (n_clips, n_classes)
        Clip targets; the rows of unlabeled clips are NaN.
    frames : list of (ndarray (n_frames_i, n_classes) float32 or None)
        Frame targets of timed clips (None for the others).
    classes : ndarray
    events : dict
        Clip index -> ``[(onset_s, offset_s, tag), ...]`` of the timed clips.
    """

    def __init__(self, kinds, Y, frames, classes, events):
        self.kinds, self.Y, self.frames, self.classes, self.events = kinds, Y, frames, classes, events

    @property
    def counts(self) -> dict:
        """``{"tagged": n, "timed": n, "unlabeled": n}``."""
        return {name: int(np.sum(self.kinds == k)) for k, name in enumerate(KINDS)}

    @property
    def plain(self) -> bool:
        """Only tagged clips: ``fit`` runs exactly as with clip tags alone."""
        return bool((self.kinds == TAGGED).all())

    def reference(self, idx, filenames) -> list:
        """Events ``(filename, onset_s, offset_s, tag)`` of the timed clips among ``idx``,
        named by ``filenames`` (one name per clip of ``idx``)."""
        return [(filenames[p], on, off, tag) for p, i in enumerate(idx) for on, off, tag in self.events.get(int(i), [])]


def parse_supervision(y, n_clips: int, lengths: Sequence[int], encode, classes=None, events=None,
                      filenames=None, timing=None) -> Supervision:
    """Read ``y`` and ``events`` into per-clip kinds and targets.

    Parameters
    ----------
    y : 0/1 matrix (n_clips, n_classes) with -1 rows, or tag collections with None
    n_clips : int
    lengths : sequence of int
        Frames per clip (the frame targets' lengths).
    encode : callable
        ``encode(y_rows, n_rows, classes) -> (Y float32, classes)``: the tag encoder.
    classes : array, optional
        Known classes (``warm_start``).
    events : list of (clip, onset_s, offset_s, tag), or a DCASE TSV path, optional
    filenames : sequence of str, optional
        Clip names, when ``events`` names clips by file name.
    timing : FrameTiming, optional
        The frames' timing: needed to turn event times into frame targets.

    Returns
    -------
    Supervision

    Raises
    ------
    ValueError
        Events for clips not in X, events outside a clip, a tag not in the tag set, a
        timed clip whose ``y`` row contradicts its events, event times without a frame
        timing, no labelled clip at all.
    """
    y_rows, unlabeled = _unlabeled_rows(y, n_clips)
    if len(unlabeled) != n_clips:  # the tag encoder says what is wrong with y
        encode(y, n_clips, classes)
    by_clip = _events_by_clip(events, n_clips, filenames) if events is not None else {}
    timed = np.zeros(n_clips, dtype=bool)
    timed[list(by_clip)] = True
    if not (~unlabeled | timed).any():
        raise ValueError(
            "every clip is unlabeled (y rows of -1 or None) and none has event times: fit needs some labelled clips"
        )
    Y_lab, classes = encode(y_rows, int((~unlabeled).sum()), classes) if (~unlabeled).any() else (None, classes)
    if classes is None:  # every labelled clip is timed and unlabeled in y: the tags come from the events
        classes = np.asarray(sorted({tag for evs in by_clip.values() for *_, tag in evs}), dtype=object)
    names = [str(c) for c in classes]
    Y = np.full((n_clips, len(names)), np.nan, dtype=np.float32)
    if Y_lab is not None:
        Y[~unlabeled] = Y_lab
    frames: List[Optional[np.ndarray]] = [None] * n_clips
    if by_clip:
        if timing is None:
            raise ValueError(
                "events need the frame timing of X to become frame targets: give features that carry it "
                "(LogMelExtractor output) or AttLocTagger(frame_timing=...)"
            )
        for j, evs in sorted(by_clip.items()):
            n, duration = int(lengths[j]), timing.clip_duration(int(lengths[j]))
            clip = f"clip {j}" if filenames is None else f"clip {j} ({filenames[j]!r})"
            for on, off, tag in evs:
                if tag not in names:
                    raise ValueError(f"event ({on:g}, {off:g}, {tag!r}) of {clip} has a tag that is not one of the classes {names}")
                if not (0 <= on < off <= duration + timing.hop_s):
                    raise ValueError(
                        f"event ({on:g}, {off:g}, {tag!r}) of {clip} is outside the clip (0 .. {duration:g} s) "
                        f"or ends before it starts"
                    )
            target = events_to_frames([(0, on, off, tag) for on, off, tag in evs], None, names, n, timing=timing,
                                      n_clips=1)[0].astype(np.float32)
            tags = np.zeros(len(names), dtype=np.float32)
            tags[[names.index(tag) for *_, tag in evs]] = 1
            if not unlabeled[j] and not np.array_equal(Y[j], tags):
                raise ValueError(
                    f"{clip}: its y row says tags {[c for c, v in zip(names, Y[j]) if v]} but its events have "
                    f"{[c for c, v in zip(names, tags) if v]}; a timed clip's tags follow from its events (give the "
                    f"same tags, or -1 / None in y)"
                )
            Y[j], frames[j] = tags, target
    kinds = np.where(timed, TIMED, np.where(unlabeled, UNLABELED, TAGGED)).astype(np.int64)
    return Supervision(kinds, Y, frames, classes, by_clip)


def split_by_kind(kinds: np.ndarray, fraction: float, rng: np.random.RandomState, requested=None):
    """``(train_idx, val_idx)``: ``fraction`` of the tagged and of the timed clips held out
    for validation, drawn separately, so that each kind keeps its share in both parts;
    unlabeled clips always train (they cannot be scored). A kind too small to give a
    validation clip trains whole. ``val_idx`` is None when ``fraction`` is 0."""
    n = len(kinds)
    if fraction <= 0:
        return np.arange(n), None
    train, val = [np.flatnonzero(kinds == UNLABELED)], []
    for kind in (TAGGED, TIMED):
        idx = np.flatnonzero(kinds == kind)
        n_val = min(int(round(fraction * len(idx))), max(len(idx) - 1, 0))
        perm = rng.permutation(len(idx))
        val.append(idx[perm[:n_val]])
        train.append(idx[perm[n_val:]])
    val_idx = np.sort(np.concatenate(val))
    if len(val_idx) == 0:
        labelled = int((kinds != UNLABELED).sum())
        raise ValueError(
            f"validation_fraction={fraction if requested is None else requested} leaves no validation clip among the "
            f"{labelled} labelled clips: give more labelled clips, or set validation_fraction=0"
        )
    return np.sort(np.concatenate(train)), val_idx


def check_groups(groups, n_clips: int) -> np.ndarray:
    """``groups`` as a 1-D array of ``n_clips`` labels, or ValueError naming the problem."""
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n_clips:
        raise ValueError(f"groups must give one label per clip of X ({n_clips}), got shape {g.shape}")
    if g.dtype.kind == "f" and not np.isfinite(g).all():
        raise ValueError("groups holds NaN or Inf; give every clip the label of its recording (or source)")
    if g.dtype.kind == "O" and any(v is None for v in g):
        raise ValueError("groups holds None; give every clip the label of its recording (or source)")
    return g


def split_by_groups(kinds: np.ndarray, groups: np.ndarray, fraction: float, rng: np.random.RandomState,
                    requested=None):
    """``(train_idx, val_idx)``: whole groups held out until they hold ``fraction`` of the
    labelled clips, so that no group (a recording, a speaker, a source) is on both sides.

    The groups of the labelled clips are taken in a random order, each whole, until the
    validation clips reach ``round(fraction * n_labelled)``; the last group taken can make
    the share larger. Unlabeled clips of a validation group are left out of training too
    (they would share its recording); the others train. ``kinds`` as
    :func:`split_by_kind`; with timed clips the shares of the kinds follow the groups.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.supervision import TAGGED, split_by_groups
    >>> kinds = np.full(8, TAGGED)
    >>> groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    >>> train, val = split_by_groups(kinds, groups, 0.25, np.random.RandomState(0))
    >>> len(val), len(set(groups[val]) & set(groups[train]))
    (2, 0)
    """
    labelled = np.flatnonzero(kinds != UNLABELED)
    names = fraction if requested is None else requested
    uniq = np.unique(groups[labelled])
    if len(uniq) < 2:
        raise ValueError(f"groups gives the labelled clips {len(uniq)} group(s); a validation split by groups needs "
                         f"at least 2 (one to train on, one to validate), or drop groups")
    target = int(round(fraction * len(labelled)))
    if target < 1:
        raise ValueError(f"validation_fraction={names} of {len(labelled)} labelled clips is no validation clip: give "
                         f"more clips, or set validation_fraction=0 and drop groups")
    chosen, count = [], 0
    sizes = {g: int(np.sum(groups[labelled] == g)) for g in uniq}
    for g in uniq[rng.permutation(len(uniq))]:
        if count >= target:
            break
        if count + sizes[g] >= len(labelled):  # never every labelled clip
            continue
        chosen.append(g)
        count += sizes[g]
    in_val = np.isin(groups, chosen)
    val_idx = np.flatnonzero(in_val & (kinds != UNLABELED))
    train_idx = np.flatnonzero(~in_val)
    return train_idx, val_idx

