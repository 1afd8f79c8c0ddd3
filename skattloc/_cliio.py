"""The files of the command line: collecting audio inputs, reading them chunk by chunk with
``--on-error``, and writing outputs safely (never over an input of the run, atomically, with
a rescue copy when the write fails). Used by :mod:`skattloc.cli` only; what it computes is
public library API elsewhere.
"""
from __future__ import annotations

import csv
import os
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
}


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
    if b"\0" in head:
        return "other", "a binary file"
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    for kind, (what, _, matches) in OUTPUT_KINDS.items():
        if matches is not None and matches(first):
            return kind, f"a {what}"
    return "other", f"a text file whose first line is {first[:60]!r}"


def guard_output(out, kind, inputs, args):
    """Refuse to write ``out`` over an input of this run (``inputs``: ``(path, role)``
    pairs), or over an existing file of another kind unless ``--force``; print a note when
    an existing output of the same kind will be replaced."""
    if not out.exists():
        return
    what = OUTPUT_KINDS[kind][0]
    try:
        st = out.stat()
    except OSError:
        return
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
        if kind != "skipped":  # the list of an earlier run is replaced without a note
            note(args, f"{str(out)!r} exists ({description}) and will be replaced")
    elif args.force:
        note(args, f"{str(out)!r} is {description}, not a {what}; replacing it (--force)")
    else:
        raise CLIError(
            f"refusing to overwrite {str(out)!r} with the {what}: it is {description}, not a {what}; "
            f"choose another -o, or add --force to replace it"
        )


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
    """A ``write(path)`` function for :func:`write_output` that writes a CSV (or TSV) table."""

    def write(path):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter=delimiter)
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


def collect_audio(inputs, ext_text, args=None):
    """``(names, paths)`` of the audio files among files and folders (folders recursively).

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
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts)
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
    """What a command gathers over its chunks: skipped files and low-rate warnings."""

    def __init__(self, args, extractor):
        self.args, self.extractor = args, extractor
        self.skipped = []  # (name, error)
        self.low_rate = []  # (path, rate, n_empty_bands)

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


def check_median_filter(args, paths):
    """--median-filter must be shorter than the longest input (else no event can be found).

    Durations come from the file headers (``soundfile.info``), stopping at the first file
    longer than the filter; files whose header cannot be read are not counted.
    """
    seconds = args.median_filter
    if not seconds:
        return
    import soundfile

    longest, longest_path = None, None
    for path in paths:
        try:
            duration = soundfile.info(path).duration
        except Exception:  # noqa: BLE001 - judged when the file is read
            continue
        if duration > seconds:
            return
        if longest is None or duration > longest:
            longest, longest_path = duration, path
    if longest is not None:
        raise CLIError(
            f"--median-filter {seconds:g} s is not shorter than the longest input ({longest:.3g} s, "
            f"{longest_path!r}): a filter that long finds no event; expected a length in [0, {longest:.3g}) "
            f"seconds, e.g. the default 0.1"
        )


