"""The files of the command line: collecting audio inputs, reading the data set, the model
file and the checkpoint, reading audio chunk by chunk with ``--on-error``, and writing
outputs safely (never over an input of the run, atomically, with a rescue copy when the
write fails; figures under names of their own). Used by :mod:`skattloc.cli` only; what it
computes is public library API elsewhere.
"""
from __future__ import annotations

import csv
import os
import re
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

from ._checks import repeated

#: Extensions that the commands pick up when given a folder (case-insensitive).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus")


class CLIError(Exception):
    """A problem with the command line's input, reported without a traceback."""


# ----------------------------------------------------------------------------- outputs
#: What each command writes: kind -> (description, default file name in a folder, whether a
#: file's first line shows it is of this kind).
OUTPUT_KINDS = {
    "model": ("model file", "model.skattloc", None),
    "predictions": ("predictions CSV", "predictions.csv", lambda line: line.startswith("filename,tags,proba_")),
    "events": ("event list", "events.tsv", lambda line: line == "filename\tonset\toffset\tevent_label"),
    "report": ("report CSV", "report.csv", lambda line: line.startswith("tag,n_clips,eer")),
    "skipped": ("list of skipped files", None, lambda line: line == "filename\terror"),
    "figure": ("figure", None, None),
}

#: What ``localize --plot-dir`` writes into its figures (a PNG text chunk), so that an
#: earlier figure is told apart from a user's own image of the same name.
FIGURE_MARK = "skattloc localize"


def a(what):
    """``what`` with its indefinite article: 'a model file', 'an event list'."""
    return ("an " if what[:1].lower() in "aeiou" else "a ") + what


def output_path(text, kind):
    """The file an ``-o`` value names, checked before any work.

    A value ending in a path separator (or an existing folder) is a folder: it is created if
    needed and gets the command's default file name. The folder must exist and be writable
    (a probe file is created in it and deleted: permission bits alone do not tell, e.g. for
    root or read-only mounts).
    """
    what, default_name, _ = OUTPUT_KINDS[kind]
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or path.is_dir():
        if path.exists() and not path.is_dir():
            raise CLIError(f"cannot write the {what} into {text!r}: it ends in '/' (a folder) but is a file")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"cannot create the output folder {text!r} for the {what}: {exc.strerror or exc}") from None
        path = path / default_name
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"cannot write the {what} {str(path)!r}: folder {str(parent)!r} does not exist")
    if path.is_dir():
        raise CLIError(f"cannot write the {what} {str(path)!r}: it is a folder")
    check_writable(parent, f"the {what} {str(path)!r}")
    return path


def check_writable(folder, what):
    try:
        fd, probe = tempfile.mkstemp(prefix=".skattloc-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CLIError(
            f"cannot write {what}: folder {str(folder)!r} is not writable ({exc.strerror or exc}); "
            f"choose another -o"
        ) from None


def file_kind(path):
    """``(kind, description)`` of an existing file: a kind of ``OUTPUT_KINDS``, "empty",
    "audio" or "other"."""
    try:
        if path.stat().st_size == 0:
            return "empty", "an empty file"
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        return "other", f"a file that cannot be read ({exc.strerror or exc})"
    if head.startswith(b"PK\x03\x04"):  # torch.save writes a zip archive
        try:
            with zipfile.ZipFile(path) as z:
                pickles = [n for n in z.namelist() if n.endswith("/data.pkl")]
                blob = z.read(pickles[0]) if pickles else b""
        except (OSError, zipfile.BadZipFile, KeyError):
            blob = b""
        if b"skattloc.AttLocTagger" in blob:
            return "model", "a skattloc model file"
        return "other", "a PyTorch file" if blob else "a zip archive"
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        return "audio", "an audio file"
    try:
        import soundfile

        soundfile.info(str(path))
        return "audio", "an audio file"
    except Exception:  # noqa: BLE001 - not audio that libsndfile knows
        pass
    if head.startswith(b"\x89PNG"):
        if FIGURE_MARK.encode() in head:
            return "figure", "a figure of skattloc localize"
        return "other", "a PNG image (not one of skattloc's figures)"
    if b"\0" in head:
        return "other", "a binary file"
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    for kind, (what, _, matches) in OUTPUT_KINDS.items():
        if matches is not None and matches(first):
            return kind, a(what)
    return "other", f"a text file whose first line is {first[:60]!r}"


def guard_output(out, kind, inputs, args):
    """Refuse to write ``out`` over an input of this run (``inputs``: ``(path, role)``
    pairs), or over an existing file of another kind unless ``--force``; print a note when
    an existing output of the same kind will be replaced (figures: the caller counts them).
    Returns True when an existing file will be replaced."""
    if not out.exists():
        return False
    what = OUTPUT_KINDS[kind][0]
    try:
        st = out.stat()
    except OSError:
        return False
    for path, role in inputs:
        try:
            other = os.stat(path)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            raise CLIError(
                f"refusing to write the {what} to {str(out)!r}: it is {role} of this run"
                + ("" if os.path.abspath(path) == os.path.abspath(out) else f" ({str(path)!r})")
                + "; choose another -o"
            )
    found, description = file_kind(out)
    if found == kind or found == "empty":
        if kind not in ("skipped", "figure"):  # the list of an earlier run is replaced without a note
            note(args, f"{str(out)!r} exists ({description}) and will be replaced")
    elif args.force:
        note(args, f"{str(out)!r} is {description}, not {a(what)}; replacing it (--force)")
    else:
        option = "--plot-dir" if kind == "figure" else "-o"
        raise CLIError(
            f"refusing to overwrite {str(out)!r} with the {what}: it is {description}, not {a(what)}; "
            f"choose another {option}, or add --force to replace it"
        )
    return True


def note(args, message):
    print(f"skattloc {args.command}: note: {message}", file=sys.stderr)


def write_output(out, what, write):
    """``write(path)`` to a hidden temporary file beside ``out``, renamed over it.

    When that fails (a full disk, a folder removed or made read-only meanwhile), the result
    is written to the working folder, else the system temp folder, and a CLIError names
    that copy and the real destination.
    """
    try:
        write_replacing(out, write)
        return out
    except (OSError, RuntimeError) as exc:  # torch.save reports write errors as RuntimeError
        reason = " ".join((getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).split())
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for folder in (Path.cwd(), Path(tempfile.gettempdir())):
            rescue = folder / f"{out.stem}.rescued-{stamp}-{os.getpid()}{out.suffix}"
            try:
                write(rescue)
            except (OSError, RuntimeError):
                continue
            raise CLIError(
                f"could not write the {what} {str(out)!r} ({reason}); it was saved to {str(rescue)!r} "
                f"instead: move it to {str(out)!r} when the problem is fixed"
            ) from exc
        raise CLIError(
            f"could not write the {what} {str(out)!r} ({reason}), nor a copy in the working folder or "
            f"{tempfile.gettempdir()!r}"
        ) from exc


def write_replacing(out, write):
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_csv(header, rows, delimiter=","):
    """A ``write(path)`` function for :func:`write_output` that writes a CSV (or TSV) table:
    UTF-8, LF line ends (as the event list), cells quoted where they hold the delimiter, a
    quote or a line break."""

    def write(path):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
    return write


# ----------------------------------------------------------------------------- unreadable files
def skipped_path(out):
    """``OUTPUT.skipped.tsv``: the list of files that ``--on-error skip`` skipped."""
    return out.with_name(out.name + ".skipped.tsv")


def report_skipped(args, skipped, out):
    """With ``--on-error skip``: list the skipped files on stderr, and in
    ``OUTPUT.skipped.tsv`` (header ``filename<TAB>error``; written even when empty, so it
    never describes an earlier run) when there is an output file."""
    if args.on_error != "skip":
        return
    listing = None
    if out is not None:
        listing = skipped_path(out)
        write_output(listing, "list of skipped files", write_csv(["filename", "error"], skipped, "\t"))
    if not skipped:
        return
    where = f"; listed in {str(listing)!r}" if listing is not None else ""
    print(f"skattloc {args.command}: skipped {len(skipped)} unreadable file(s){where}:", file=sys.stderr)
    for name, error in skipped[:20]:
        print(f"  {name}: {error}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"  ... and {len(skipped) - 20} more", file=sys.stderr)


def walk_files(folder):
    """The files under ``folder``, recursively, following links to folders; a folder reached
    twice (a link back up the tree, or to a folder already searched) is searched once."""
    seen = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in files:
            path = Path(top) / name
            if path.is_file():
                yield path


def collect_audio(inputs, ext_text, args=None):
    """``(names, paths)`` of the audio files among files and folders (folders recursively,
    following links to folders, each real folder once).

    A file given directly is named as given; a file found in a folder by its path inside that
    folder. When files of different folders would get the same name, every file found in a
    folder is named by its path as given instead (``a/x.wav``, ``b/x.wav``), so the output
    tells them apart. The same file given twice is refused.
    """
    exts = {("." + e.strip().lstrip(".")).lower() for e in ext_text.split(",") if e.strip()}
    entries = []  # (input as given, path, path inside the folder or None)
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in walk_files(p) if f.suffix.lower() in exts)
            if not found:
                raise CLIError(f"no audio files ({', '.join(sorted(exts))}) found in folder {str(p)!r}")
            entries += [(item, str(f), f.relative_to(p).as_posix()) for f in found]
        elif p.is_file():
            entries.append((item, str(p), None))
        else:
            raise CLIError(f"audio file or folder not found: {item!r}")
    seen = {}
    for item, path, _ in entries:
        key = os.path.realpath(path)
        if key in seen:
            first = seen[key]
            via = f"through {first!r} and {item!r}" if first != item else f"through {item!r} twice"
            raise CLIError(f"the inputs give the file {path!r} twice ({via}); give each file once")
        seen[key] = item
    names = [os.path.normpath(item) if rel is None else rel for item, _, rel in entries]
    dupes = repeated(names)
    if dupes:
        clash = dupes[0]
        where = [item for (item, _, rel), n in zip(entries, names) if n == clash]
        names = [os.path.normpath(item if rel is None else os.path.join(item, rel)) for item, _, rel in entries]
        left = repeated(names)
        if left:  # pragma: no cover - distinct files with one path as given
            raise CLIError(f"the inputs name different files {left[0]!r}; give them under different names")
        if args is not None:
            note(args, f"{clash!r} is in more than one input ({', '.join(repr(w) for w in where[:3])}); "
                        f"files found in folders are named by their path as given, e.g. {names[0]!r}")
    return names, [path for _, path, _ in entries]


def chunks(n, size):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class AudioRun:
    """The one loop over audio files, chunk by chunk, of every command: features, skipped
    files, low-rate warnings and the progress bar."""

    def __init__(self, args, extractor, progress):
        self.args, self.extractor, self.progress = args, extractor, progress
        self.skipped = []  # (name, error)
        self.low_rate = []  # (path, rate, n_empty_bands)

    def each_chunk(self, paths, names, desc, size=64):
        """Yield ``(X, idx)`` per chunk of ``size`` files: the frames of the files read (a
        list of (n_frames_i, n_mels) arrays) and their indices into ``paths``. At the end:
        CLIError when no file could be read, and one warning for files at a low rate."""
        with self.progress(total=len(paths), desc=desc, unit="file", disable=self.args.quiet) as bar:
            for sl in chunks(len(paths), size):
                X, ok = self.extract(paths[sl], names[sl])
                yield X, [sl.start + i for i in ok]
                bar.update(sl.stop - sl.start)
        if len(self.skipped) == len(paths):
            report_skipped(self.args, self.skipped, None)
            raise CLIError(f"none of the {len(paths)} audio file(s) could be read; nothing was written")
        self.warn_low_rates(len(paths))

    def read_all(self, paths, names, desc, size=64):
        """``(X, idx)`` of every file read: frames that carry the extractor's frame timing
        (:class:`skattloc.timing.FrameList`), and their indices into ``paths``."""
        from .timing import with_frame_timing

        X, idx = [], []
        for x, i in self.each_chunk(paths, names, desc, size):
            X += x
            idx += i
        return with_frame_timing(X, self.extractor.frame_timing), idx

    def extract(self, paths, names):
        """``(X, kept)``: log-mel frames (a list of (n_frames_i, n_mels) arrays) of the
        files that could be read, and their indices in ``paths``.

        A file that cannot be read or is too short raises CLIError (``--on-error raise``,
        the message says how to skip) or is skipped and remembered (``--on-error skip``).
        """
        try:
            return self._transform(paths), list(range(len(paths)))
        except (OSError, ValueError) as exc:
            if self.args.on_error != "skip":
                raise CLIError(
                    f"{one_line(exc)}; to skip unreadable files and go on, use --on-error skip"
                ) from exc
        X, kept = [], []
        for i, (path, name) in enumerate(zip(paths, names)):
            try:
                X += self._transform([path])
                kept.append(i)
            except (OSError, ValueError) as exc:
                self.skipped.append((name, one_line(exc)))
        return X, kept

    def _transform(self, paths):
        from .features import LowSampleRateWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            X = list(self.extractor.transform(paths))
        for w in caught:
            if isinstance(w.message, LowSampleRateWarning):
                self.low_rate += w.message.files
            else:  # the others as if not caught (the filters still apply)
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return X

    def warn_low_rates(self, n_total):
        """One warning line for every file whose rate left mel bands empty."""
        if self.low_rate:
            from .features import LowSampleRateWarning

            e = self.extractor
            warnings.warn(LowSampleRateWarning.from_files(self.low_rate, e.n_mels, e.sr, n_total))


def one_line(exc):
    return " ".join((str(exc) or type(exc).__name__).split())


def check_event_lengths(args, paths):
    """--median-filter and --min-duration must be shorter than the longest input (else no
    event can be found).

    Durations come from the file headers (``soundfile.info``), stopping at the first file
    longer than both; files whose header cannot be read are not counted.
    """
    options = [(f"--{name.replace('_', '-')}", getattr(args, name, None)) for name in ("median_filter", "min_duration")]
    options = [(opt, seconds) for opt, seconds in options if seconds]
    if not options:
        return
    import soundfile

    limit = max(seconds for _, seconds in options)
    longest, longest_path = None, None
    for path in paths:
        try:
            duration = soundfile.info(path).duration
        except Exception:  # noqa: BLE001 - judged when the file is read
            continue
        if longest is None or duration > longest:
            longest, longest_path = duration, path
        if duration > limit:
            return
    for opt, seconds in options:
        if longest is not None and seconds >= longest:
            raise CLIError(
                f"{opt} {seconds:g} s is not shorter than the longest input ({longest:.3g} s, "
                f"{longest_path!r}): {'a filter' if 'filter' in opt else 'a minimum'} that long finds no event; "
                f"expected a length in [0, {longest:.3g}) seconds"
                + (", e.g. the default 0.1" if "filter" in opt else "")
            )


# ----------------------------------------------------------------------------- the run's files
def read_labelled(args):
    """The data set (:func:`skattloc.load_weak_dataset`) of a weak-label folder or CSV, with
    the event list of --strong; with --on-error skip, listed files missing from disk are
    left to the reading loop, which skips them."""
    from .datasets import load_weak_dataset

    src = Path(args.data).expanduser()
    if not src.exists():
        raise CLIError(f"data not found: {str(src)!r} (expected a folder with audio/ and weak.csv, or a CSV of path,tags)")
    return load_weak_dataset(src, folds=args.folds, strong=getattr(args, "strong", None),
                             check_audio=args.on_error != "skip")


def read_unlabeled(source, labelled_paths):
    """``[(name, path)]`` of the unlabeled audio of ``fit --unlabeled``: a folder (searched
    recursively) or a CSV whose first column lists paths (relative to the CSV's folder).
    Refuses files that DATA also lists (a clip is labelled or it is not)."""
    src = Path(source).expanduser()
    if not src.exists():
        raise CLIError(f"--unlabeled {str(src)!r} not found (expected a folder of audio files or a CSV of paths)")
    if src.is_dir():
        names, paths = collect_audio([str(src)], ",".join(e.lstrip(".") for e in AUDIO_EXTENSIONS))
        found = list(zip(names, paths))
    else:
        with open(src, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and r[0].strip()]
        if rows and rows[0][0].strip().lower() in ("path", "filename", "file"):
            rows = rows[1:]
        found = [(r[0].strip(), src.parent / r[0].strip()) for r in rows]
        missing = [n for n, p in found if not Path(p).is_file()]
        if missing:
            raise CLIError(f"--unlabeled {str(src)!r} lists {len(missing)} file(s) not found, e.g. {missing[:3]} "
                           f"(paths are relative to the CSV's folder)")
    if not found:
        raise CLIError(f"--unlabeled {str(src)!r} holds no audio file")
    labelled = {os.path.realpath(p) for p in labelled_paths}
    both = [n for n, p in found if os.path.realpath(p) in labelled]
    if both:
        raise CLIError(f"{len(both)} file(s) of --unlabeled are also in DATA, e.g. {both[:3]}: a clip is labelled or "
                       f"unlabeled, not both; leave them out of one of the two")
    return [(n, str(p)) for n, p in found]


def data_inputs(args, data):
    """``(path, role)`` of every file a labelled data set of this run reads."""
    src = Path(args.data).expanduser()
    labels = [(src / "weak.csv" if src.is_dir() else src, "the label file")]
    if data.strong_path is not None:
        labels.append((Path(data.strong_path), "the strong label file"))
    return labels + [(p, "an audio input") for p in data.paths]


def audio_inputs(args, paths):
    """``(path, role)`` of the inputs of 'predict' and 'localize': the model and the audio."""
    return [(Path(args.model).expanduser(), "the model file")] + [(p, "an audio input") for p in paths]


def guard_outputs(out, kind, inputs, args):
    """The output checks of every command: ``out`` and, with --on-error skip, its list of
    skipped files."""
    guard_output(out, kind, inputs, args)
    if args.on_error == "skip":
        guard_output(skipped_path(out), "skipped", inputs, args)


def load_model(args):
    """``(tagger, extractor)`` from a model file."""
    from .estimator import AttLocTagger
    from .features import FEATURE_PARAMS, LogMelExtractor

    p = Path(args.model).expanduser()
    if not p.is_file():
        raise CLIError(f"model file not found: {str(args.model)!r}" + (" (it is a folder)" if p.is_dir() else ""))
    tagger = AttLocTagger.load(p)
    params = getattr(tagger, "feature_params_", None)
    if not isinstance(params, dict):
        warnings.warn(
            f"{str(args.model)!r} records no feature settings (it was not written by 'skattloc fit'); "
            f"using LogMelExtractor defaults with n_mels={tagger.n_features_in_}",
            UserWarning,
        )
        params = {"n_mels": int(tagger.n_features_in_)}
    params = {k: v for k, v in params.items() if k in FEATURE_PARAMS}
    return tagger, LogMelExtractor(**params, n_jobs=args.jobs, verbose=False)


def check_checkpoint(params):
    """``[(checkpoint, role)]``, the input that --checkpoint-dir adds to a fit (none without
    one), after checking it before any audio is read: the folder is not a file; --resume
    continues the run there as it was, so a --seed or --epochs that it cannot honour is
    refused, and the seed that really trains is recorded in ``params``."""
    folder = params.get("checkpoint_dir")
    if not isinstance(folder, (str, os.PathLike)):
        return []
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise CLIError(f"--checkpoint-dir {str(folder)!r} is a file; expected a folder (created if needed) for "
                       "last.ckpt")
    ckpt = folder / "last.ckpt"
    if not params.get("resume") or not ckpt.is_file():
        return [(ckpt, "the training checkpoint")]  # no checkpoint yet: the fit says so and trains from epoch 1
    from .params import defaults
    from .training import read_checkpoint_fingerprint

    saved = read_checkpoint_fingerprint(ckpt)
    seed, asked = int(saved["seed"]), params.get("random_state")
    if asked is not None and asked != seed:
        raise CLIError(f"--resume continues the run in {str(ckpt)!r}, which trains with --seed {seed}, but this "
                       f"command gives --seed {asked}; give --seed {seed} (or none) to resume it, or leave out "
                       f"--resume to train anew with --seed {asked}")
    params["random_state"] = seed
    done, epochs = saved["epochs_done"], params.get("max_epochs", defaults()["max_epochs"])
    if epochs < done:
        raise CLIError(f"--resume: {str(ckpt)!r} holds {done} finished epochs, more than --epochs {epochs}; give "
                       f"--epochs {done} or more to resume it, or leave out --resume to train anew")
    return [(ckpt, "the training checkpoint")]


def tag_cell(tags):
    """The predicted tags of a file as one CSV cell, comma-joined; a tag that holds a comma
    or a quote is quoted within the cell, so that ``csv.reader`` reads the cell back."""
    import csv
    import io

    if not any(ch in t for t in tags for ch in ',"\r\n'):
        return ",".join(tags)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(tags)
    return buf.getvalue()


def figure_paths(args, names, inputs):
    """One figure path in --plot-dir per input, every name its own (``s1/y.flac`` is
    ``s1__y.flac.png``; a name taken already gets ``-2``, ``-3``...), checked as -o is."""
    folder = Path(args.plot_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create the --plot-dir folder {args.plot_dir!r}: {exc.strerror or exc}") from None
    check_writable(folder, f"figures to {args.plot_dir!r}")
    taken, paths = set(), []
    for name in names:
        stem = re.sub(r"[\\/]+", "__", name).lstrip("_.") or "audio"
        file, k = f"{stem}.png", 1
        while file.casefold() in taken:  # case too: one file on macOS and Windows
            k += 1
            file = f"{stem}-{k}.png"
        if k > 1:
            note(args, f"the figure of {name!r} is {file!r}: {stem + '.png'!r} is another input's")
        taken.add(file.casefold())
        paths.append(folder / file)
    replaced = sum(bool(guard_output(p, "figure", inputs, args)) for p in paths)
    if replaced:
        note(args, f"{replaced} earlier figure(s) in {args.plot_dir!r} will be replaced")
    return paths


def plot_file(path, name, features, scores, attention, clip_scores, classes, timing):
    from .plotting import plot_localization

    fig = plot_localization(features, scores, classes, attention=attention, timing=timing, clip_scores=clip_scores,
                            title=name)
    write_output(path, "figure", lambda p: fig.savefig(p, format="png", dpi=90, metadata={"Software": FIGURE_MARK}))


def resume_hint(tagger):
    """How to continue an interrupted 'skattloc fit'."""
    if tagger.checkpoint_dir is None:
        return "no --checkpoint-dir was set, so the next run starts from the first epoch (set one to be able to resume)"
    ckpt = Path(tagger.checkpoint_dir) / "last.ckpt"
    if not ckpt.is_file():
        return f"no epoch had finished, so there is no checkpoint in {str(tagger.checkpoint_dir)!r} to resume from"
    again = "run the same command again" if tagger.resume else "run the same command with --resume"
    return f"the last finished epoch is saved in {str(ckpt)!r}; to continue from it, {again}"


def labelled_run(args, kind):
    """What 'tune' and 'evaluate' share, all before any audio is read: the output checks,
    the data and its event times, the model, and the data's tags against the model's."""
    out = output_path(args.output, kind) if args.output else None
    data = read_labelled(args)
    strong = None if getattr(args, "weak", False) else data.strong
    if out is not None:
        guard_outputs(out, kind, [(Path(args.model).expanduser(), "the model file")] + data_inputs(args, data), args)
    if strong is not None:
        print(f"event times: {len(strong)} event(s) in {len({e[0] for e in strong})} of the {len(data.paths)} clips, "
              f"from {data.strong_path!r}" + (f"; {data.strong_by_file_name} event(s) name their clip by its file "
                                               "name alone" if data.strong_by_file_name else ""), file=sys.stderr)
    tagger, extractor = load_model(args)
    classes = [str(c) for c in tagger.classes_]
    for what, tags in (("clip tags", {t for ts in data.tags for t in ts}), ("event times", {e[3] for e in strong or ()})):
        if tags - set(classes):
            raise CLIError(f"the {what} of {args.data!r} have tags {sorted(tags - set(classes))} that the model does "
                           f"not know (its tags: {classes})")
    return out, data, strong, tagger, extractor


def check_validation_split(params, n_clips):
    """--early-stopping needs validation clips: say so before any audio is read."""
    from .params import AUTO_VALIDATION_FRACTION, AUTO_VALIDATION_MIN_CLIPS, defaults

    value = params.get("validation_fraction", defaults()["validation_fraction"])
    auto = value == "auto" and n_clips < AUTO_VALIDATION_MIN_CLIPS  # "auto": 0.1 from 100 clips on, else none
    if params.get("early_stopping") is True and (auto or value == 0):
        why = (f"the default --validation-fraction (auto) holds out none of fewer than {AUTO_VALIDATION_MIN_CLIPS} "
               f"clips, and DATA has {n_clips}" if auto else "--validation-fraction is 0")
        raise CLIError(f"--early-stopping needs a validation split, but {why}; set --validation-fraction, e.g. "
                       f"{AUTO_VALIDATION_FRACTION}, or leave out --early-stopping")


def progress(iterable=None, **kwargs):
    """A tqdm bar on stderr (the command line's progress output)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True, **kwargs)


def train_progress():
    """A Lightning callback: one tqdm bar over all training steps, with the epoch and loss."""
    from lightning.pytorch.callbacks import Callback

    class _TrainProgress(Callback):
        bar = None

        def on_train_start(self, trainer, pl_module):
            try:
                total = int(trainer.num_training_batches) * int(trainer.max_epochs)
            except (TypeError, ValueError, OverflowError):
                total = None
            self.bar = progress(total=total, desc="training", unit="step")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.bar.update(1)

        def on_train_epoch_end(self, trainer, pl_module):
            loss = trainer.callback_metrics.get("train_loss")
            self.bar.set_postfix({"epoch": int(trainer.current_epoch) + 1,
                                  **({} if loss is None else {"loss": f"{float(loss):.4f}"})})

        def on_train_end(self, trainer, pl_module):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

        def on_exception(self, trainer, pl_module, exception):
            self.on_train_end(trainer, pl_module)

    return _TrainProgress()
