"""Weakly labelled audio data sets: a synthetic generator and folder loaders.

* :func:`make_weak_events` synthesises clips with known event times (like
  sklearn's ``make_*`` functions).
* :func:`load_weak_dataset` reads a DCASE-style folder (``audio/``,
  ``weak.csv``, optional ``strong.tsv``), e.g. ``shared/data/domestic-mix``, or a CSV
  list of audio files and their tags, and selects cross-validation folds.
* :func:`load_chime_home` reads the DCASE 2016 Task 4 CHiME-Home release.

Both loaders return a :class:`sklearn.utils.Bunch` with the keys ``filenames``,
``paths``, ``tags``, ``Y``, ``classes``, ``folds``, ``strong``, ``audio``, ``root`` and
``DESCR``.
"""
import csv
import numbers
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from . import _checks
from .features import load_audio as _load_audio
from .tags import encode_tags

__all__ = [
    "CHIME_HOME_TAGS",
    "EVENT_TYPES",
    "load_chime_home",
    "load_weak_dataset",
    "make_weak_events",
    "match_event_names",
]

#: Synthetic event types of :func:`make_weak_events`; column ``k`` of ``Y`` is ``EVENT_TYPES[k]``.
EVENT_TYPES = ("tone", "chirp", "noise_burst", "click_train", "am_tone")

#: CHiME-Home tags in the order of Table 1 of Xu et al. (2017): child speech, adult
#: male speech, adult female speech, video game/TV, percussive sounds, broadband
#: noise, other identifiable sounds.
CHIME_HOME_TAGS = ("c", "m", "f", "v", "p", "b", "o")


# --------------------------------------------------------------------------- synth
def _rng(random_state):
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**32, dtype=np.uint64))
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.Generator)):
        return np.random.default_rng(random_state)
    raise TypeError(
        "random_state must be None, an int, a numpy Generator or RandomState, "
        f"got {type(random_state).__name__}"
    )


def _synth_event(kind, n, sr, rng):
    """Unit-RMS float64 waveform of ``n`` samples for event type ``kind``."""
    t = np.arange(n) / sr
    if kind == "tone":  # steady harmonic tone, f0 500-700 Hz
        f0 = rng.uniform(500.0, 700.0)
        x = sum(a * np.sin(2 * np.pi * h * f0 * t) for h, a in ((1, 1.0), (2, 0.5), (3, 0.25)))
    elif kind == "chirp":  # linear sweep 1 -> 4 kHz over the event
        f0, f1 = rng.uniform(900.0, 1100.0), rng.uniform(3800.0, 4200.0)
        x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * n / sr)))
    elif kind == "noise_burst":  # white noise band-passed to 4-7 kHz (FFT mask)
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1.0 / sr)
        spec[(freqs < 4000.0) | (freqs > 7000.0)] = 0.0
        x = np.fft.irfft(spec, n)
    elif kind == "click_train":  # decaying 1 ms clicks every 15-30 ms
        period = int(sr * rng.uniform(0.015, 0.030))
        x = np.zeros(n)
        x[::period] = 1.0
        decay = np.exp(-np.arange(int(0.002 * sr)) / (0.0003 * sr))
        x = np.convolve(x, decay)[:n]
    elif kind == "am_tone":  # low pure tone 150-250 Hz, 4-8 Hz amplitude modulation
        fc, fm = rng.uniform(150.0, 250.0), rng.uniform(4.0, 8.0)
        x = (1.0 + 0.9 * np.sin(2 * np.pi * fm * t)) * np.sin(2 * np.pi * fc * t)
    else:  # pragma: no cover - guarded by make_weak_events
        raise ValueError(f"unknown event type {kind!r}")
    fade = min(int(0.005 * sr), n // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        x[:fade] *= ramp
        x[n - fade:] *= ramp[::-1]
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 0 else x


def make_weak_events(
    n_clips=200,
    n_classes=3,
    duration=4.0,
    sr=16000,
    max_events=2,
    event_duration=(0.3, 1.5),
    snr_db=(0.0, 10.0),
    noise_level=0.01,
    empty_prob=0.1,
    class_names=None,
    random_state=None,
):
    """Synthesise weakly labelled clips with known event onsets and offsets.

    Each clip is white Gaussian noise (RMS ``noise_level``) plus up to
    ``max_events`` events whose types are drawn uniformly from the first
    ``n_classes`` of :data:`EVENT_TYPES` (a type may repeat, events may overlap):

    * ``"tone"``: steady 500-700 Hz tone with 2nd and 3rd harmonics;
    * ``"chirp"``: linear sweep from ~1 kHz to ~4 kHz;
    * ``"noise_burst"``: white noise band-passed to 4-7 kHz;
    * ``"click_train"``: decaying clicks every 15-30 ms (broadband);
    * ``"am_tone"``: 150-250 Hz tone, 90 % amplitude modulation at 4-8 Hz.

    A clip has no event with probability ``empty_prob``, else 1 to
    ``max_events`` events (uniform). Event length is uniform in
    ``event_duration`` (capped at ``duration``), onset uniform in
    ``[0, duration - length]``, level uniform in ``snr_db`` dB above the noise
    RMS; 5 ms raised-cosine fades. Clips whose peak exceeds 0.99 are scaled down.

    Parameters
    ----------
    n_clips : int, default=200
        Number of clips.
    n_classes : int, default=3
        Number of event classes, 1 to ``len(EVENT_TYPES)`` (5).
    duration : float, default=4.0
        Clip length in seconds.
    sr : int, default=16000
        Sampling rate in Hz.
    max_events : int, default=2
        Maximum number of events per clip (0 gives only background).
    event_duration : (float, float), default=(0.3, 1.5)
        Range of event lengths in seconds.
    snr_db : (float, float), default=(0.0, 10.0)
        Range of event RMS relative to the noise RMS, in dB.
    noise_level : float, default=0.01
        RMS of the background noise (full scale is 1.0); may be 0.
    empty_prob : float, default=0.1
        Probability that a clip has no event.
    class_names : sequence of str or None, default=None
        Labels of the classes; ``class_names[k]`` names the type ``EVENT_TYPES[k]``.
        None means ``EVENT_TYPES[:n_classes]``.
    random_state : int, numpy Generator/RandomState or None, default=None
        Seed; the output is deterministic for a given int.

    Returns
    -------
    audio : np.ndarray of float32, shape (n_clips, round(duration * sr))
        Waveforms.
    Y : np.ndarray of int64, shape (n_clips, n_classes)
        ``Y[i, k] = 1`` iff clip ``i`` holds an event of class ``k``.
        Column ``k`` is ``EVENT_TYPES[k]`` (or ``class_names[k]``).
    events : list of (int, float, float, str)
        ``(clip_index, onset_s, offset_s, label)`` sorted; onsets and offsets
        in seconds fall on sample boundaries within ``[0, duration]``.

    Examples
    --------
    >>> from skattloc.datasets import make_weak_events
    >>> audio, Y, events = make_weak_events(n_clips=4, random_state=0)
    >>> audio.shape, audio.dtype, Y.shape
    ((4, 64000), dtype('float32'), (4, 3))
    >>> all(Y[i, ["tone", "chirp", "noise_burst"].index(lab)] for i, _, _, lab in events)
    True
    """
    for name, value, lo in (("n_clips", n_clips, 1), ("n_classes", n_classes, 1),
                            ("sr", sr, 1), ("max_events", max_events, 0)):
        _checks.check_int(value, name, lo)
    if n_classes > len(EVENT_TYPES):
        raise ValueError(
            f"n_classes must be at most {len(EVENT_TYPES)} (the event types {EVENT_TYPES}), got {n_classes}"
        )
    if not isinstance(duration, numbers.Real) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    for name, rng_ in (("event_duration", event_duration), ("snr_db", snr_db)):
        if len(rng_) != 2 or not rng_[0] <= rng_[1]:
            raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {rng_!r}")
    if event_duration[0] <= 0:
        raise ValueError(f"event_duration must be positive seconds, got {event_duration!r}")
    if not isinstance(noise_level, numbers.Real) or noise_level < 0:
        raise ValueError(f"noise_level must be a non-negative RMS, got {noise_level!r}")
    if not isinstance(empty_prob, numbers.Real) or not 0 <= empty_prob <= 1:
        raise ValueError(f"empty_prob must be in [0, 1], got {empty_prob!r}")
    if class_names is None:
        labels = list(EVENT_TYPES[:n_classes])
    else:
        labels = [str(c) for c in class_names]
        if len(labels) != n_classes or len(set(labels)) != n_classes:
            raise ValueError(
                f"class_names must hold {n_classes} distinct names (n_classes), got {list(class_names)!r}"
            )
    rng = _rng(random_state)

    n_samples = int(round(duration * sr))
    ref_rms = noise_level if noise_level > 0 else 0.01  # event level reference
    audio = rng.standard_normal((n_clips, n_samples), dtype=np.float32)
    audio *= np.float32(noise_level)
    Y = np.zeros((n_clips, n_classes), dtype=np.int64)
    events = []
    has_events = rng.random(n_clips) >= empty_prob if max_events > 0 else np.zeros(n_clips, bool)
    for i in np.flatnonzero(has_events):
        for _ in range(rng.integers(1, max_events + 1)):
            k = int(rng.integers(n_classes))
            length = int(round(min(rng.uniform(*event_duration), duration) * sr))
            length = max(1, min(length, n_samples))
            start = int(rng.integers(0, n_samples - length + 1))
            gain = ref_rms * 10 ** (rng.uniform(*snr_db) / 20)
            audio[i, start:start + length] += (gain * _synth_event(EVENT_TYPES[k], length, sr, rng)).astype(
                np.float32
            )
            Y[i, k] = 1
            events.append((int(i), start / sr, (start + length) / sr, labels[k]))
    peak = np.abs(audio).max(axis=1)
    loud = peak > 0.99
    audio[loud] *= (0.99 / peak[loud])[:, None].astype(np.float32)
    events.sort()
    return audio, Y, events


# --------------------------------------------------------------------------- loaders
def _split_tags(text):
    """Sorted, de-duplicated tags of a comma-separated cell (blanks dropped)."""
    return sorted({t.strip() for t in text.split(",") if t.strip()})


def _check_dir(path, what):
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{what} folder not found: {str(root)!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"{what} path {str(root)!r} is not a folder")
    return root.resolve()


def _check_files_exist(folder, names, what):
    """Raise FileNotFoundError naming up to 5 of ``names`` missing from ``folder``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {str(folder)!r}")
    present = set(os.listdir(folder))
    missing = [n for n in names if n not in present and not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(names)} {what} files are missing from {str(folder)!r}: "
            f"{_checks.preview(missing)}"
        )


def _resolve_classes(classes, tag_lists, source):
    """Class list (sorted unique tags if None); check every tag is a known class."""
    found = {t for tags in tag_lists for t in tags}
    if classes is None:
        return sorted(found)
    classes = [str(c) for c in _checks.check_classes(classes)]
    unknown = sorted(found - set(classes))
    if unknown:
        raise ValueError(f"{source} has tags outside classes={classes!r}: {_checks.preview(unknown, 10)}")
    return classes


def _indicator(tag_lists, classes):
    return encode_tags(tag_lists, classes, kind="names")[0]


def not_utf8_error(path, exc=None):
    """The ValueError for a text file that is not UTF-8: names the file, the first byte that
    cannot be decoded and its line, and the encoding expected."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        exc = err
    if exc is None:  # pragma: no cover - called only after a decode error
        return ValueError(f"{str(path)!r} is not UTF-8 text; expected a UTF-8 file")
    line = data.count(b"\n", 0, exc.start) + 1
    return ValueError(
        f"{str(path)!r} is not UTF-8 text: byte {data[exc.start]:#04x} on line {line} cannot be decoded; "
        f"expected a UTF-8 file (convert it, e.g. 'iconv -f latin1 -t utf-8', or save it as UTF-8)"
    )


def _read_table(path, delimiter, required, optional=(), aliases=None, ignore_unknown=False):
    """Rows of a headed table as dicts; check the header against the expected columns.

    ``aliases`` renames a column unless the table also has one of the new name;
    ``ignore_unknown`` accepts (and ignores) columns other than the expected ones. A file
    that is not UTF-8 raises ValueError naming it (:func:`not_utf8_error`).
    """
    try:
        return _read_table_utf8(path, delimiter, required, optional, aliases, ignore_unknown)
    except UnicodeDecodeError as exc:
        raise not_utf8_error(path, exc) from None


def _read_table_utf8(path, delimiter, required, optional, aliases, ignore_unknown):
    aliases = aliases or {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{str(path)!r} is empty; expected a header row {list(required)}")
        raw = [h.strip() for h in header]
        found = [h if aliases.get(h) in raw else aliases.get(h, h) for h in raw]
        expected = list(required) + list(optional)
        missing = [c for c in required if c not in found]
        unknown = [] if ignore_unknown else [h for h in found if h not in expected]
        if missing or unknown or len(set(found)) != len(found):
            sep = "tab" if delimiter == "\t" else repr(delimiter)
            other = {",": ("\t", "tab"), "\t": (",", "comma")}.get(delimiter)
            hint = ""
            if other is not None and len(raw) == 1 and other[0] in raw[0]:
                hint = f"; the header is {other[1]}-separated, but this file must be {sep}-separated"
            raise ValueError(
                f"{str(path)!r} has columns {[h.strip() for h in header]} ({sep}-separated) but "
                f"expected {list(required)}" + (f" plus optional {list(optional)}" if optional else "")
                + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else "") + hint
            )
        rows = []
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(found):
                raise ValueError(
                    f"{str(path)!r} line {line_no} has {len(row)} fields, expected {len(found)}: {row!r}"
                )
            rows.append((line_no, {h: c.strip() for h, c in zip(found, row)}))
    return rows


def _load_waves(paths, sr):
    waves = [_load_audio(p, sr=sr) for p in paths]
    if waves and len({w.shape for w in waves}) == 1:
        return np.stack(waves)
    return waves


def _readme(root):
    readme = root / "README.md"
    return readme.read_text(encoding="utf-8", errors="replace") if readme.is_file() else ""


def load_weak_dataset(path, classes=None, load_audio=False, sr=16000, folds=None, strong=None, check_audio=True):
    """Load a weakly labelled data set: a DCASE-style folder or a CSV list of audio files.

    Expected layout of a folder (as in ``shared/data/domestic-mix``)::

        path/
          audio/<filename>     audio files (FLAC, WAV, ...)
          weak.csv             columns filename,tags[,fold]; tags comma-joined
                               (quote the field), empty = no event
          strong.tsv           optional, tab-separated filename,onset,offset,event_label
                               (seconds)

    or a CSV file with a header row and the columns ``path`` (or ``filename``) and
    ``tags``, plus an optional ``fold`` (other columns are ignored); each path is relative
    to the CSV's folder, or absolute::

        path,tags,fold
        clips/a.wav,"dog,speech",1
        /data/b.flac,,2

    Parameters
    ----------
    path : str or os.PathLike
        Data set folder, or CSV list of audio files.
    classes : sequence of str or None, default=None
        Column order of ``Y``; None means the sorted unique tags of every listed clip.
        Tags of the loaded clips outside a given list raise ValueError.
    load_audio : bool, default=False
        Also load every clip with :func:`skattloc.features.load_audio` at ``sr``.
    sr : int, default=16000
        Sampling rate in Hz used when ``load_audio`` is True.
    folds : sequence of int or None, default=None
        Load only the clips of these folds (the ``fold`` column), e.g. the training folds
        of a cross-validation. With ``classes=None`` the classes are still those of every
        listed clip, so ``Y`` has the same columns whichever folds are loaded.
    strong : str or os.PathLike, optional
        An event list (tab-separated ``filename, onset, offset, event_label``, seconds) to
        read instead of the folder's ``strong.tsv``, e.g. the event times of the clips of a
        CSV list. Its names are matched to the clips by :func:`match_event_names`: a clip's
        name as listed (``audio/a.wav`` in a CSV list, ``a.wav`` in ``weak.csv``), or its
        file name alone (``a.wav``) when no two listed clips share it.
    check_audio : bool, default=True
        Raise FileNotFoundError when listed audio files are missing. False keeps them in
        ``paths`` (reading them fails later; ``skattloc --on-error skip`` skips them).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``filenames`` (list of str, as listed), ``paths`` (list of absolute str), ``tags``
        (list of the sorted tag names of each clip: ``AttLocTagger().fit(X, data.tags)``
        gives named ``classes_``), ``Y`` (int64 array (n_clips, n_classes)), ``classes``
        (list of str), ``folds`` (int64 array (n_clips,) or None without a fold column),
        ``strong`` (list of (filename, onset_s, offset_s, label) in file order, or None
        without ``strong.tsv``), ``audio`` (float32 array (n_clips, n_samples) if all clips
        have equal length, else a list of 1-D arrays; None unless ``load_audio``), ``root``
        (absolute str: the folder, or the CSV's folder), ``strong_path`` (str: the event
        list read, or None), ``strong_by_file_name`` (how many of its events were matched by
        file name alone, 0 without one) and ``DESCR`` (the folder's README.md, or "").

    Raises
    ------
    FileNotFoundError
        Missing folder, ``weak.csv``, ``audio/`` or audio files (up to 5 named).
    ValueError
        Bad columns or rows, a clip listed twice (``weak.csv``, or one file twice in a CSV
        list), non-integer folds, tags outside ``classes`` or holding a tab or line break,
        event list rows naming no listed clip or with an unknown label, ``folds`` without a
        fold column or matching no clip, a label file that is not UTF-8 (the message names
        the file, the byte and its line).

    Examples
    --------
    >>> import os, tempfile, numpy as np, soundfile as sf
    >>> from skattloc.datasets import load_weak_dataset
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = tmp.name
    >>> os.mkdir(os.path.join(root, "audio"))
    >>> for name in ("a.wav", "b.wav"):
    ...     sf.write(os.path.join(root, "audio", name), np.zeros(1600), 16000)
    >>> with open(os.path.join(root, "weak.csv"), "w") as f:
    ...     _ = f.write('filename,tags,fold\\na.wav,"dog,cat",1\\nb.wav,,2\\n')
    >>> data = load_weak_dataset(root)
    >>> data.classes, data.Y.tolist(), data.folds.tolist(), data.strong
    (['cat', 'dog'], [[1, 1], [0, 0]], [1, 2], None)
    >>> with open(os.path.join(root, "list.csv"), "w") as f:
    ...     _ = f.write('path,tags,fold\\naudio/a.wav,dog,1\\naudio/b.wav,cat,2\\n')
    >>> data = load_weak_dataset(os.path.join(root, "list.csv"), folds=[2])
    >>> data.filenames, data.tags, data.classes, data.Y.tolist()
    (['audio/b.wav'], [['cat']], ['cat', 'dog'], [[1, 0]])
    >>> tmp.cleanup()
    """
    src = Path(path).expanduser()
    if src.is_file():
        root = src.parent.resolve()
        source = repr(str(src))
        filenames, paths, tag_lists, fold_list = _read_clip_list(src, source, check_audio)
        audio_dir, strong_path, listed_in, descr = None, None, f"the path column of {source}", ""
    else:
        root = _check_dir(path, "dataset")
        weak_path = root / "weak.csv"
        if not weak_path.is_file():
            raise FileNotFoundError(
                f"weak label file not found: {str(weak_path)!r} (expected columns filename,tags[,fold])"
            )
        source = repr(str(weak_path))
        rows = _read_table(weak_path, ",", ["filename", "tags"], ["fold"], aliases={"event_labels": "tags"})
        filenames, tag_lists, fold_list = _parse_rows(rows, "filename", source)
        dupes = _checks.repeated(filenames)
        if dupes:
            raise ValueError(f"{source} lists {len(dupes)} filenames twice: {_checks.preview(dupes)}")
        audio_dir = root / "audio"
        paths = [str(audio_dir / fn) for fn in filenames]
        strong_path, listed_in, descr = root / "strong.tsv", "weak.csv", _readme(root)
    if strong is not None:
        strong_path = Path(strong).expanduser()
        if not strong_path.is_file():
            raise FileNotFoundError(f"strong label file not found: {str(strong)!r} (an event list: filename, onset, offset, event_label)")
    keep = _fold_selection(fold_list, folds, len(filenames), source)
    classes = _resolve_classes(classes, tag_lists if classes is None else [tag_lists[i] for i in keep], source)
    if audio_dir is not None and check_audio:
        _check_files_exist(audio_dir, filenames, "audio")
    events, by_file_name = _read_strong(strong_path, filenames, {filenames[i] for i in keep}, classes, listed_in)
    filenames, paths, tag_lists = ([seq[i] for i in keep] for seq in (filenames, paths, tag_lists))
    return Bunch(
        filenames=filenames,
        paths=paths,
        tags=tag_lists,
        Y=_indicator(tag_lists, classes),
        classes=classes,
        folds=np.asarray([fold_list[i] for i in keep], dtype=np.int64) if fold_list is not None else None,
        strong=events,
        strong_path=None if events is None else str(strong_path),
        strong_by_file_name=by_file_name,
        audio=_load_waves(paths, sr) if load_audio else None,
        root=str(root),
        DESCR=descr,
    )


def _parse_rows(rows, name_column, source):
    """Names, sorted tag lists and folds (None without a fold column) of table rows."""
    names, tag_lists, folds = [], [], []
    for line_no, row in rows:
        if not row[name_column]:
            raise ValueError(f"{source} line {line_no}: empty {name_column}")
        names.append(row[name_column])
        tag_lists.append(_split_tags(row["tags"]))
        for tag in tag_lists[-1]:
            _check_tag_name(tag, f"{source} line {line_no}")
        if "fold" in row:
            try:
                folds.append(int(row["fold"]))
            except ValueError:
                raise ValueError(f"{source} line {line_no}: fold must be an integer, got {row['fold']!r}") from None
    if not names:
        raise ValueError(f"{source} lists no clips")
    return names, tag_lists, (folds if "fold" in rows[0][1] else None)


def _check_tag_name(tag, where):
    """A tag is a name without a comma, tab or line break: the CSV and TSV files that list
    tags (weak.csv, a predictions CSV, an event list) could not tell it apart otherwise."""
    bad = [name for ch, name in ((",", "a comma"), ("\t", "a tab"), ("\n", "a line break"), ("\r", "a line break"))
           if ch in tag]
    if bad:
        raise ValueError(
            f"{where}: the tag {tag!r} holds {bad[0]}; tags are names without commas, tabs or line breaks "
            "(weak.csv separates a clip's tags with commas, event lists their columns with tabs)"
        )


def _read_clip_list(path, source, check_audio=True):
    """``(names, paths, tag_lists, folds)`` of a CSV list ``path,tags[,fold]``."""
    rows = _read_table(path, ",", ["path", "tags"], ["fold"], aliases={"filename": "path"}, ignore_unknown=True)
    names, tag_lists, folds = _parse_rows(rows, "path", source)
    base = path.parent
    paths = []
    for name in names:
        full = Path(name).expanduser()
        paths.append(str(full if full.is_absolute() else base / full))
    seen, twice = {}, []
    for name, p in zip(names, paths):
        key = os.path.realpath(p)
        if key in seen:
            twice.append(name if seen[key] == name else f"{seen[key]} = {name}")
        seen.setdefault(key, name)
    if twice:
        raise ValueError(
            f"{source} lists {len(twice)} audio file(s) twice: {_checks.preview(twice)}; list each file once, "
            "with all its tags in one row (comma-joined, quoted)"
        )
    missing = [n for n, p in zip(names, paths) if not os.path.isfile(p)] if check_audio else []
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(names)} audio files listed in {source} are missing "
            f"(paths relative to {str(base)!r}): {_checks.preview(missing)}"
        )
    return names, paths, tag_lists, folds


def _fold_selection(fold_list, folds, n_clips, source):
    """Indices of the clips in ``folds`` (every clip when ``folds`` is None)."""
    if folds is None:
        return list(range(n_clips))
    folds = [int(_checks.check_int(f, "each of folds")) for f in folds]
    if fold_list is None:
        raise ValueError(f"folds={folds} needs a fold column in {source}, which has none")
    wanted = set(folds)
    keep = [i for i, f in enumerate(fold_list) if f in wanted]
    if not keep:
        raise ValueError(f"no clip of {source} is in folds {folds} (folds present: {sorted(set(fold_list))})")
    return keep


def _base_name(name):
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def match_event_names(names, clips, *, source="the event list", listed_in="the clip list"):
    """The clip that each event file name stands for.

    A name matches the clip listed under the same name (``audio/a.wav`` in a CSV list of
    paths, ``a.wav`` in ``weak.csv``); a name that matches none matches the clip whose file
    name, the last part of its path, it is (``a.wav`` for ``audio/a.wav``), when no other
    listed clip has that file name. DCASE event lists name clips by file name, CSV lists
    by path: both work.

    Parameters
    ----------
    names : sequence of str
        File names of the events (e.g. the ``filename`` column of an event list).
    clips : sequence of str
        The names of the listed clips.
    source, listed_in : str
        How the error message names the event list and the clip list.

    Returns
    -------
    matched : list of str
        The clip name of each of ``names``.
    n_by_file_name : int
        How many of ``names`` were matched by file name alone.

    Raises
    ------
    ValueError
        Names that match no clip (up to 5 named), or whose file name is shared by several
        clips; the message says how names are matched.

    Examples
    --------
    >>> from skattloc.datasets import match_event_names
    >>> match_event_names(["a.wav", "audio/b.wav"], ["audio/a.wav", "audio/b.wav"])
    (['audio/a.wav', 'audio/b.wav'], 1)
    >>> match_event_names(["c.wav"], ["audio/a.wav"], source="'ev.tsv'", listed_in="'list.csv'")
    Traceback (most recent call last):
    ...
    ValueError: 'ev.tsv' has 1 filenames not listed in 'list.csv': 'c.wav'; an event's filename must be a clip's name as 'list.csv' gives it (e.g. 'audio/a.wav'), or its file name alone ('a.wav') when no two listed clips share that file name
    """
    listed = set(clips)
    by_base = {}
    for clip in clips:
        by_base.setdefault(_base_name(clip), []).append(clip)
    matched, unknown, shared, n_base = [], [], [], 0
    for name in names:
        if name in listed:
            matched.append(name)
            continue
        found = by_base.get(_base_name(name), [])
        if len(found) == 1:
            matched.append(found[0])
            n_base += 1
        else:
            (shared if found else unknown).append(name)
            matched.append(None)
    example = next(iter(clips), "a.wav")
    rule = (f"an event's filename must be a clip's name as {listed_in} gives it (e.g. {example!r}), or its file "
            f"name alone ({_base_name(example)!r}) when no two listed clips share that file name")
    if unknown:
        unknown = sorted(set(unknown))
        raise ValueError(f"{source} has {len(unknown)} filenames not listed in {listed_in}: "
                         f"{_checks.preview(unknown)}; {rule}")
    if shared:
        shared = sorted(set(shared))
        raise ValueError(f"{source} names {len(shared)} file(s) that several clips of {listed_in} have as their file "
                         f"name: {_checks.preview(shared)}; {rule}; give the clip's name as listed")
    return matched, n_base


def _read_strong(path, listed, kept, classes, listed_in="weak.csv"):
    """``(events, n_by_file_name)``: the events of an event list (``(None, 0)`` without one)
    in the ``kept`` clips, named as listed. Every row must name one of the ``listed``
    clips (:func:`match_event_names`) and every label of a kept clip be in ``classes``."""
    if path is None or not path.is_file():
        return None, 0
    rows = []
    for line_no, row in _read_table(path, "\t", ["filename", "onset", "offset", "event_label"]):
        if not row["event_label"] and not row["onset"] and not row["offset"]:
            continue  # DESED-style row marking a clip without events
        try:
            onset, offset = float(row["onset"]), float(row["offset"])
        except ValueError:
            raise ValueError(
                f"{str(path)!r} line {line_no}: onset/offset must be numbers (seconds), "
                f"got {row['onset']!r}, {row['offset']!r}"
            ) from None
        if not 0 <= onset <= offset:
            raise ValueError(f"{str(path)!r} line {line_no}: need 0 <= onset <= offset, got {onset}, {offset}")
        if not row["filename"] or not row["event_label"]:
            raise ValueError(f"{str(path)!r} line {line_no}: an event needs a filename and an event_label, got {row!r}")
        _check_tag_name(row["event_label"], f"{str(path)!r} line {line_no}")
        rows.append((row["filename"], onset, offset, row["event_label"]))
    names, n_base = match_event_names([r[0] for r in rows], listed, source=repr(str(path)), listed_in=listed_in)
    strong = [(name, *r[1:]) for name, r in zip(names, rows) if name in kept]
    bad_labels = sorted({e[3] for e in strong} - set(classes))
    if bad_labels:
        raise ValueError(
            f"{str(path)!r} has labels outside classes={classes!r}: {_checks.preview(bad_labels, 10)}"
        )
    return strong, n_base


def _read_chunk_list(path, with_fold):
    """Chunk names (and 0-based fold ids) of a headerless ``index,chunk[,fold]`` csv."""
    try:
        return _read_chunk_list_utf8(path, with_fold)
    except UnicodeDecodeError as exc:
        raise not_utf8_error(path, exc) from None


def _read_chunk_list_utf8(path, with_fold):
    names, folds = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not row or not any(row):
                continue
            if not row[0].isdigit():
                if line_no == 1:
                    continue  # tolerate a header row
                raise ValueError(f"{str(path)!r} line {line_no}: expected index,chunk[,fold], got {row!r}")
            if len(row) < (3 if with_fold else 2):
                raise ValueError(
                    f"{str(path)!r} line {line_no}: expected "
                    f"{'index,chunk,fold' if with_fold else 'index,chunk'}, got {row!r}"
                )
            names.append(row[1])
            if with_fold:
                try:
                    folds.append(int(row[2]))
                except ValueError:
                    raise ValueError(
                        f"{str(path)!r} line {line_no}: fold must be an integer, got {row[2]!r}"
                    ) from None
    if not names:
        raise ValueError(f"{str(path)!r} lists no chunks")
    return names, folds


def _chunk_tags(path):
    """Tag letters of the ``majorityvote`` row of a chunk annotation csv (S, U dropped)."""
    with open(path, newline="", encoding="utf-8") as f:
        try:
            for row in csv.reader(f):
                if len(row) >= 2 and row[0].strip() == "majorityvote":
                    return sorted({c for c in row[1].strip() if c not in "SU" and not c.isspace()})
        except UnicodeDecodeError as exc:
            raise not_utf8_error(path, exc) from None
    raise ValueError(f"chunk annotation {str(path)!r} has no 'majorityvote' row")


def load_chime_home(path, subset="development", classes=None, load_audio=False, sr=16000):
    """Load the CHiME-Home data set of DCASE 2016 Task 4 (domestic audio tagging).

    Expected layout of the release (``path`` is ``chime_home/`` or its parent)::

        chime_home/
          chunks/<chunk>.16kHz.wav    4 s, 16 kHz mono chunks
          chunks/<chunk>.csv          key,value rows incl. "majorityvote,<tag letters>"
          development_chunks_refined.csv                  index,chunk
          development_chunks_refined_crossval_dcase2016.csv  index,chunk,fold (0-4)
          evaluation_chunks_refined.csv                   index,chunk

    Tags are the letters of the ``majorityvote`` row; ``S`` (silence) and ``U``
    (unidentifiable) are dropped, leaving :data:`CHIME_HOME_TAGS`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``chime_home`` folder or the folder holding it.
    subset : {"development", "evaluation"}, default="development"
        Chunks of ``development_chunks_refined_crossval_dcase2016.csv`` (falling
        back to ``development_chunks_refined.csv``, without folds) or of
        ``evaluation_chunks_refined.csv``.
    classes : sequence of str or None, default=None
        Column order of ``Y``; None means :data:`CHIME_HOME_TAGS`
        (c, m, f, v, p, b, o as in the paper's Table 1).
    load_audio : bool, default=False
        Also load every chunk at ``sr`` Hz.
    sr : int, default=16000
        Sampling rate in Hz used when ``load_audio`` is True.

    Returns
    -------
    data : sklearn.utils.Bunch
        As :func:`load_weak_dataset`, with ``filenames`` = ``<chunk>.16kHz.wav``
        (relative to ``chunks/``), ``chunks`` (chunk names), ``folds`` = the
        chunk's cross-validation test fold **1-5** (the file's 0-4 plus one, so
        folds start at 1 as in ``weak.csv``; None for the evaluation subset or
        without the cross-validation file) and ``strong`` = None.

    Examples
    --------
    >>> import os, tempfile, numpy as np, soundfile as sf
    >>> from skattloc.datasets import load_chime_home
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = os.path.join(tmp.name, "chime_home")
    >>> os.makedirs(os.path.join(root, "chunks"))
    >>> sf.write(os.path.join(root, "chunks", "s0_chunk0.16kHz.wav"), np.zeros(8000), 16000)
    >>> with open(os.path.join(root, "chunks", "s0_chunk0.csv"), "w") as f:
    ...     _ = f.write("chunkname,s0_chunk0\\nmajorityvote,cpS\\n")
    >>> with open(os.path.join(root, "development_chunks_refined_crossval_dcase2016.csv"), "w") as f:
    ...     _ = f.write("0,s0_chunk0,2\\n")
    >>> data = load_chime_home(root)
    >>> data.classes, data.Y.tolist(), data.folds.tolist()
    (['c', 'm', 'f', 'v', 'p', 'b', 'o'], [[1, 0, 0, 0, 1, 0, 0]], [3])
    >>> tmp.cleanup()
    """
    root = _check_dir(path, "CHiME-Home")
    if (root / "chime_home").is_dir():
        root = root / "chime_home"
    chunk_dir = root / "chunks"
    if not chunk_dir.is_dir():
        raise FileNotFoundError(
            f"CHiME-Home chunks folder not found: {str(chunk_dir)!r} "
            "(pass the 'chime_home' folder or its parent)"
        )
    if subset == "development":
        crossval = root / "development_chunks_refined_crossval_dcase2016.csv"
        plain = root / "development_chunks_refined.csv"
        if crossval.is_file():
            chunks, folds = _read_chunk_list(crossval, with_fold=True)
            folds = np.asarray(folds, dtype=np.int64) + 1
        elif plain.is_file():
            chunks, folds = _read_chunk_list(plain, with_fold=False)[0], None
        else:
            raise FileNotFoundError(f"neither {str(crossval)!r} nor {str(plain)!r} exists")
    elif subset == "evaluation":
        listing = root / "evaluation_chunks_refined.csv"
        if not listing.is_file():
            raise FileNotFoundError(f"evaluation chunk list not found: {str(listing)!r}")
        chunks, folds = _read_chunk_list(listing, with_fold=False)[0], None
    else:
        raise ValueError(f"subset must be 'development' or 'evaluation', got {subset!r}")

    filenames = [f"{c}.16kHz.wav" for c in chunks]
    _check_files_exist(chunk_dir, [f"{c}.csv" for c in chunks], "chunk annotation")
    _check_files_exist(chunk_dir, filenames, "audio")
    tag_lists = [_chunk_tags(chunk_dir / f"{c}.csv") for c in chunks]
    classes = _resolve_classes(
        list(CHIME_HOME_TAGS) if classes is None else classes, tag_lists, "CHiME-Home majorityvote"
    )
    paths = [str(chunk_dir / fn) for fn in filenames]
    return Bunch(
        filenames=filenames,
        chunks=chunks,
        paths=paths,
        tags=tag_lists,
        Y=_indicator(tag_lists, classes),
        classes=classes,
        folds=folds,
        strong=None,
        audio=_load_waves(paths, sr) if load_audio else None,
        root=str(root),
        DESCR=_readme(root),
    )
