"""The ``skattloc`` command line: train, tag, localize and evaluate on folders of audio files.

Run ``skattloc --help`` (or ``python -m skattloc --help``) for the commands, and
``skattloc COMMAND --help`` for each command's options and examples. Every command reads
audio files with :func:`skattloc.load_audio` (WAV, FLAC, OGG, MP3...; resampled to the
model's rate) and computes features with :class:`skattloc.LogMelExtractor`, using the
settings the model was trained with.

Exit status: 0 on success, 1 for a problem with the input (a missing file or folder, an
unreadable audio or model file, a malformed label file, an invalid option value), 2 for a
malformed command line, 130 when interrupted. Problems with the input are reported in one
line without a traceback; set ``SKATTLOC_DEBUG=1`` or pass ``--debug`` to see it.
"""
from __future__ import annotations

import argparse
import ast
import csv
import math
import os
import sys
import time
import warnings
from pathlib import Path

from ._checks import repeated

__all__ = ["main", "build_parser", "CLIError"]

#: Extensions that the commands pick up when given a folder (case-insensitive).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus")


class CLIError(Exception):
    """A problem with the command line's input, reported without a traceback."""


# ----------------------------------------------------------------------------- parser
_MAIN_EPILOG = """\
examples:
  # train on a folder with audio/ and weak.csv (filename,tags), small and quick
  skattloc fit my_data/ -o tagger.skattloc --epochs 20 --rnn-layers 1
  # tag every audio file under a folder: per-tag probabilities and 0/1 decisions
  skattloc predict tagger.skattloc recordings/ -o tags.csv
  # when does each event happen: DCASE event list and one figure per file
  skattloc localize tagger.skattloc recordings/ -o events.tsv --plot-dir plots/
  # per-tag EER, and segment F1 when my_data/strong.tsv holds event times
  skattloc evaluate tagger.skattloc my_data/ --folds 4

Run 'skattloc COMMAND --help' for a command's options.
"""

_FIT_EPILOG = """\
data layout (a folder):
  DATA/audio/<filename>   audio files (WAV, FLAC, ...)
  DATA/weak.csv           columns filename,tags[,fold]; tags comma-joined, quoted:
                            filename,tags,fold
                            a.wav,"speech,dog",1
                            b.wav,,2          (no event)
or a CSV file with columns path,tags[,fold] (paths relative to the CSV's folder).

examples:
  skattloc fit my_data/ -o tagger.skattloc
  skattloc fit my_data/ -o tagger.skattloc --folds 1,2,3 --epochs 30 --seed 0
  skattloc fit clips.csv -o tagger.skattloc --pooling att --rnn-hidden 64 --lr 3e-3
  skattloc fit my_data/ -o tagger.skattloc --accelerator gpu --precision bf16-mixed
  skattloc fit my_data/ -o tagger.skattloc --param spec_augment=2 --param lr_schedule=cosine
"""

_PREDICT_EPILOG = """\
output: a CSV with one row per file: filename, tags (the predicted tags, comma-joined),
then proba_<tag> (clip probability) and pred_<tag> (0/1, proba >= threshold) per tag.

examples:
  skattloc predict tagger.skattloc recordings/ -o tags.csv
  skattloc predict tagger.skattloc a.wav b.flac -o tags.csv --threshold 0.3
"""

_LOCALIZE_EPILOG = """\
output: a DCASE event list, tab-separated with the header filename, onset, offset,
event_label (seconds), as read by sed_eval, psds_eval and sed_scores_eval.

How events are made, per file and tag: the model's frame scores (AttLocTagger.localize,
values in [0, 1]; which quantity is set by the model's 'localization' parameter or
--localization) at or above --frame-threshold are active; a median filter of
--median-filter seconds smooths them; runs of active frames become events; gaps shorter
than --min-gap are merged and events shorter than --min-duration dropped. Only tags whose
clip probability reaches the clip threshold get events (turn this off with --no-clip-gate).

examples:
  skattloc localize tagger.skattloc recordings/ -o events.tsv
  skattloc localize tagger.skattloc recordings/ -o events.tsv --plot-dir plots/
  skattloc localize tagger.skattloc a.wav -o events.tsv --frame-threshold dog=0.3,cat=0.6
"""

_EVALUATE_EPILOG = """\
DATA is a folder (audio/, weak.csv, optional strong.tsv) or a CSV of paths and tags, as
for 'fit'. Prints a table per tag: the clip-level equal error rate (EER, DCASE 2016 Task 4;
lower is better) and, with strong labels (DATA/strong.tsv or --strong), the 1 s
segment-based F1 of the events that 'localize' would write (same options).

examples:
  skattloc evaluate tagger.skattloc my_data/ --folds 4
  skattloc evaluate tagger.skattloc test.csv --strong test_events.tsv -o report.csv
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Raw epilogs; shows an option's default unless it is None/False or already named."""

    def _get_help_string(self, action):
        help = action.help or ""
        quiet = action.default is None or action.default is False or action.default == [] or action.default == argparse.SUPPRESS
        if "default" in help or quiet or not action.option_strings:
            return help
        return help + " (default: %(default)s)"


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonneg_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _fraction(text):
    value = _nonneg_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _folds(text):
    try:
        folds = [int(f) for f in text.split(",") if f.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fold numbers such as 1,2,3, got {text!r}") from None
    if not folds:
        raise argparse.ArgumentTypeError("expected at least one fold number")
    return folds


def _key_value(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip().replace("-", "_")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        parsed = value.strip()
    return key, parsed


def _frame_threshold(text):
    """``0.5`` or ``dog=0.3,cat=0.6``."""
    if "=" not in text:
        value = _nonneg_float(text)
        return value
    out = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected a number or TAG=VALUE pairs such as dog=0.3,cat=0.6, got {text!r}")
        tag, value = item.rsplit("=", 1)
        out[tag.strip()] = _nonneg_float(value)
    return out


def _add_common(p):
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input problems")


def _add_audio_inputs(p):
    p.add_argument("model", metavar="MODEL", help="model file written by 'skattloc fit'")
    p.add_argument("inputs", metavar="AUDIO", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument(
        "--ext", default=",".join(e.lstrip(".") for e in AUDIO_EXTENSIONS),
        help="comma-separated extensions picked up in folders",
    )
    p.add_argument("--chunk", type=_positive_int, default=64, help="files processed (and held in memory) at a time")
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel feature-extraction jobs (threads)")


def _add_event_options(p):
    g = p.add_argument_group("event options")
    g.add_argument(
        "--frame-threshold", type=_frame_threshold, default=0.5, metavar="T",
        help="frame score threshold: one number, or TAG=VALUE pairs (dog=0.3,cat=0.6) covering every tag",
    )
    g.add_argument("--localization", default=None, metavar="NAME",
                   help="frame quantity to threshold, an AttLocTagger 'localization' value "
                   "(default: the model's; see the user guide)")
    g.add_argument("--median-filter", type=_nonneg_float, default=0.1, metavar="SECONDS",
                   help="median filter length on the frame activity (0: off)")
    g.add_argument("--min-duration", type=_nonneg_float, default=0.0, metavar="SECONDS", help="drop shorter events")
    g.add_argument("--min-gap", type=_nonneg_float, default=0.0, metavar="SECONDS", help="merge events closer than this")
    g.add_argument("--clip-threshold", type=_fraction, default=None, metavar="P",
                   help="clip probability a tag needs to get events (default: the model's threshold)")
    g.add_argument("--no-clip-gate", action="store_true",
                   help="make events for every tag, whatever its clip probability")


def build_parser():
    """The ``argparse`` parser of the ``skattloc`` command (for docs and tests)."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="skattloc",
        description="Weakly supervised audio tagging and sound event localization "
        "(Xu et al., Interspeech 2017): train on clip-level tags, then tag audio files "
        "and find when each event happens.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skattloc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # fit ------------------------------------------------------------------------
    p = sub.add_parser(
        "fit", help="train a tagger on weakly labelled audio and write a model file",
        description="Train an AttLocTagger on clip-level tags and write a model file.",
        epilog=_FIT_EPILOG, formatter_class=_Formatter,
    )
    p.add_argument("data", metavar="DATA", help="data folder (audio/ + weak.csv) or CSV of path,tags")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write (e.g. tagger.skattloc)")
    p.add_argument("--folds", type=_folds, default=None, help="train only on these folds of weak.csv, e.g. 1,2,3")
    from .estimator import AttLocTagger  # no torch: the estimator imports it when fitting

    d = AttLocTagger().get_params(deep=False)  # the options' defaults follow the estimator's
    g = p.add_argument_group("model (AttLocTagger parameters; defaults are the paper's)")
    g.add_argument("--pooling", default=d["pooling"], help="att_loc (attention + localization), att or mean")
    g.add_argument("--n-filters", type=_positive_int, default=d["n_filters"], help="CNN filters")
    g.add_argument("--kernel-size", type=_positive_int, default=d["kernel_size"], help="CNN kernel length in mel bands")
    g.add_argument("--rnn-hidden", type=_positive_int, default=d["rnn_hidden"], help="GRU units per direction")
    g.add_argument("--rnn-layers", type=_positive_int, default=d["rnn_layers"], help="bidirectional GRU layers")
    g.add_argument("--dense-units", type=_positive_int, default=d["dense_units"], help="units of the dense ReLU layer")
    g.add_argument("--dropout", type=_fraction, default=d["dropout"], help="dropout after the dense layer")
    g.add_argument("--threshold", type=_fraction, default=d["threshold"], help="clip decision threshold stored in the model")
    g.add_argument("--localization", default=d["localization"], help="frame output of 'localize' (see the user guide)")
    g.add_argument("--param", type=_key_value, action="append", default=[], metavar="NAME=VALUE",
                   help="any other AttLocTagger parameter, e.g. --param spec_augment=2 (repeatable)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_positive_int, default=d["max_epochs"], help="passes over the training data (max_epochs)")
    g.add_argument("--batch-size", type=_positive_int, default=d["batch_size"], help="clips per step")
    g.add_argument("--lr", type=float, default=d["learning_rate"], help="Adam learning rate")
    g.add_argument("--validation-fraction", type=_fraction, default=d["validation_fraction"], help="clips held out to log val_loss")
    g.add_argument("--early-stopping", action="store_true", help="stop when val_loss stops improving")
    g.add_argument("--seed", type=int, default=None, help="random seed (same model every run on the CPU)")
    g.add_argument("--accelerator", default=d["accelerator"], help="Lightning accelerator: cpu, gpu, auto...")
    g.add_argument("--devices", default=str(d["devices"]), help="Lightning devices: 1, 2, auto, 0,1...")
    g.add_argument("--precision", default=d["precision"], help="Lightning precision, e.g. bf16-mixed on a GPU")
    g = p.add_argument_group("features (LogMelExtractor; stored in the model file)")
    g.add_argument("--sr", type=_positive_int, default=16000, help="sampling rate in Hz (files are resampled)")
    g.add_argument("--n-mels", type=_positive_int, default=40, help="mel bands")
    g.add_argument("-j", "--jobs", type=int, default=None, help="parallel feature-extraction jobs (threads)")
    _add_common(p)
    p.set_defaults(func=_cmd_fit)

    # predict --------------------------------------------------------------------
    p = sub.add_parser(
        "predict", help="clip-level tag probabilities and decisions of audio files (CSV)",
        description="Tag audio files: per-tag clip probabilities and 0/1 decisions, as CSV.",
        epilog=_PREDICT_EPILOG, formatter_class=_Formatter,
    )
    _add_audio_inputs(p)
    p.add_argument("-o", "--output", default="predictions.csv", metavar="CSV", help="CSV file to write")
    p.add_argument("--threshold", type=_fraction, default=None, help="decision threshold (default: the model's)")
    _add_common(p)
    p.set_defaults(func=_cmd_predict)

    # localize -------------------------------------------------------------------
    p = sub.add_parser(
        "localize", help="sound events (onset, offset, tag) of audio files (DCASE TSV)",
        description="Find when each tagged event happens: a DCASE event list, and optionally a figure per file.",
        epilog=_LOCALIZE_EPILOG, formatter_class=_Formatter,
    )
    _add_audio_inputs(p)
    p.add_argument("-o", "--output", default="events.tsv", metavar="TSV", help="event list to write")
    p.add_argument("--plot-dir", default=None, metavar="DIR", help="write one PNG figure per file into DIR")
    _add_event_options(p)
    _add_common(p)
    p.set_defaults(func=_cmd_localize)

    # evaluate -------------------------------------------------------------------
    p = sub.add_parser(
        "evaluate", help="per-tag EER, and segment F1 with strong labels",
        description="Evaluate a model on labelled audio: per-tag EER, and segment-based F1 of the events.",
        epilog=_EVALUATE_EPILOG, formatter_class=_Formatter,
    )
    p.add_argument("model", metavar="MODEL", help="model file written by 'skattloc fit'")
    p.add_argument("data", metavar="DATA", help="data folder (audio/ + weak.csv) or CSV of path,tags")
    p.add_argument("--folds", type=_folds, default=None, help="evaluate only these folds of weak.csv")
    p.add_argument("--strong", default=None, metavar="TSV",
                   help="event list (filename, onset, offset, event_label) of the clips (default: DATA/strong.tsv)")
    p.add_argument("--segment-length", type=float, default=1.0, metavar="SECONDS", help="segment length of the F1")
    p.add_argument("-o", "--output", default=None, metavar="CSV", help="also write the table as CSV")
    p.add_argument("--chunk", type=_positive_int, default=64, help="files processed at a time")
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel feature-extraction jobs (threads)")
    _add_event_options(p)
    _add_common(p)
    p.set_defaults(func=_cmd_evaluate)
    return parser


# ----------------------------------------------------------------------------- helpers
def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True, **kwargs)


def _check_output(path, what):
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"cannot write the {what} {str(path)!r}: folder {str(parent)!r} does not exist")
    if path.is_dir():
        raise CLIError(f"cannot write the {what} {str(path)!r}: it is a folder")
    return path


def _read_labelled(data, folds=None):
    """The data set (:func:`skattloc.load_weak_dataset`) of a weak-label folder or CSV."""
    from .datasets import load_weak_dataset

    src = Path(data).expanduser()
    if not src.exists():
        raise CLIError(f"data not found: {str(src)!r} (expected a folder with audio/ and weak.csv, or a CSV of path,tags)")
    return load_weak_dataset(src, folds=folds)


def _collect_audio(inputs, ext_text):
    """``(names, paths)`` of the audio files among files and folders (folders recursively)."""
    exts = {("." + e.strip().lstrip(".")).lower() for e in ext_text.split(",") if e.strip()}
    names, paths = [], []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts)
            if not found:
                raise CLIError(f"no audio files ({', '.join(sorted(exts))}) found in folder {str(p)!r}")
            for f in found:
                names.append(f.relative_to(p).as_posix())
                paths.append(str(f))
        elif p.is_file():
            names.append(os.path.normpath(item))
            paths.append(str(p))
        else:
            raise CLIError(f"audio file or folder not found: {item!r}")
    dupes = repeated(names)
    if dupes:
        raise CLIError(f"the inputs name some files twice: {', '.join(repr(d) for d in dupes[:5])}")
    return names, paths


def _chunks(n, size):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _load_model(path, jobs=None, quiet=False):
    """``(tagger, extractor)`` from a model file."""
    from .estimator import AttLocTagger
    from .features import FEATURE_PARAMS, LogMelExtractor

    p = Path(path).expanduser()
    if not p.is_file():
        raise CLIError(f"model file not found: {str(path)!r}" + (" (it is a folder)" if p.is_dir() else ""))
    tagger = AttLocTagger.load(p)
    params = getattr(tagger, "feature_params_", None)
    if not isinstance(params, dict):
        warnings.warn(
            f"{str(path)!r} records no feature settings (it was not written by 'skattloc fit'); "
            f"using LogMelExtractor defaults with n_mels={tagger.n_features_in_}",
            UserWarning,
        )
        params = {"n_mels": int(tagger.n_features_in_)}
    params = {k: v for k, v in params.items() if k in FEATURE_PARAMS}
    extractor = LogMelExtractor(**params, n_jobs=jobs, verbose=False)
    return tagger, extractor


def _extract(extractor, paths):
    """Log-mel frames of ``paths``: a list of (n_frames_i, n_mels) arrays."""
    X = extractor.transform(paths)
    return list(X)


def _frame_scores(tagger, X):
    """``(clip_proba, [frame scores per clip], [attention per clip or None])`` from one
    forward pass; the frame scores are what ``tagger.localize`` returns."""
    import numpy as np

    out = tagger.frame_outputs(X)
    return np.stack([o["clip"] for o in out]), [o[tagger.localization] for o in out], [o.get("att") for o in out]


def _check_event_options(tagger, args):
    """Fail on a bad --localization or --frame-threshold before any audio is read.

    Returns the model's tags and the clip threshold that gates events (``--clip-threshold``,
    else the model's ``threshold``).
    """
    classes = _classes(tagger)
    if args.localization is not None:
        tagger.set_params(localization=args.localization)
        tagger._validate_params()  # e.g. "loc" needs pooling="att_loc": a clear ValueError
    threshold = args.frame_threshold
    if isinstance(threshold, dict):
        missing = [c for c in classes if c not in threshold]
        unknown = [t for t in threshold if t not in classes]
        if missing or unknown:
            raise CLIError(
                f"--frame-threshold must give a value for every tag {classes}"
                + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else "")
            )
    return classes, tagger.threshold if args.clip_threshold is None else args.clip_threshold


def _events_for(scores, proba, names, durations, classes, extractor, args, clip_threshold):
    """Events of a chunk of clips (see the 'localize' help for the steps)."""
    import numpy as np

    from .events import frames_to_events, median_filter_frames

    threshold = args.frame_threshold
    gated = []
    for s, p in zip(scores, proba):
        s = np.asarray(s, dtype=np.float64)
        if not args.no_clip_gate:
            s = s * (np.asarray(p) >= clip_threshold)[None, :]
        gated.append(s)
    return frames_to_events(
        gated, classes, hop_s=extractor.hop_seconds, offset_s=extractor.frame_offset_seconds,
        threshold=threshold, median_filter=median_filter_frames(args.median_filter, extractor.hop_seconds),
        min_duration=args.min_duration, min_gap=args.min_gap, filenames=names, clip_duration=durations,
    )


def _plot_file(plot_dir, name, features, scores, attention, clip_scores, classes, extractor):
    from .plotting import plot_localization

    fig = plot_localization(
        features, scores, classes, attention=attention, hop_s=extractor.hop_seconds,
        offset_s=extractor.frame_offset_seconds, clip_scores=clip_scores, title=name,
    )
    safe = name.replace("/", "__").replace("\\", "__")
    out = Path(plot_dir) / (safe + ".png")
    fig.savefig(out, dpi=90)
    return out


def _classes(tagger):
    return [str(c) for c in tagger.classes_]


# ----------------------------------------------------------------------------- commands
def _cmd_fit(args):
    from .estimator import AttLocTagger
    from .features import LogMelExtractor

    out = _check_output(args.output, "model file")
    data = _read_labelled(args.data, args.folds)
    if not any(data.tags):
        raise CLIError(f"no clip of {args.data!r} has a tag; 'fit' needs clip-level tags")
    devices = args.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    elif isinstance(devices, str) and "," in devices:
        devices = [int(d) for d in devices.split(",") if d.strip()]
    params = dict(
        pooling=args.pooling, n_filters=args.n_filters, kernel_size=args.kernel_size,
        rnn_hidden=args.rnn_hidden, rnn_layers=args.rnn_layers, dense_units=args.dense_units,
        dropout=args.dropout, threshold=args.threshold, localization=args.localization,
        max_epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        validation_fraction=args.validation_fraction, early_stopping=args.early_stopping,
        random_state=args.seed, accelerator=args.accelerator, devices=devices, precision=args.precision,
    )
    known = AttLocTagger().get_params(deep=False)
    for key, value in args.param:
        if key not in known:
            raise CLIError(f"--param {key}: AttLocTagger has no parameter {key!r}; known: {', '.join(sorted(known))}")
        params[key] = value
    tagger = AttLocTagger(**params)
    tagger._validate_params()  # fail on a bad option before the long feature extraction
    if args.kernel_size > args.n_mels:
        raise CLIError(f"--kernel-size {args.kernel_size} is larger than --n-mels {args.n_mels}; it must be at most the mel bands")
    extractor = LogMelExtractor(sr=args.sr, n_mels=args.n_mels, n_jobs=args.jobs, verbose=not args.quiet)
    t0 = time.perf_counter()
    X = _extract(extractor, data.paths)
    n_tagged = sum(bool(t) for t in data.tags)
    print(f"{len(X)} clips ({n_tagged} with tags), {len(set(t for ts in data.tags for t in ts))} tags; "
          f"features in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    callbacks = [] if args.quiet else [_train_progress()]
    tagger.set_params(callbacks=callbacks or None)
    t0 = time.perf_counter()
    tagger.fit(X, data.tags)
    tagger.set_params(callbacks=None)
    tagger.save(out, extractor=extractor)  # the safe format, with the feature settings
    loss = tagger.history_[-1].get("train_loss", float("nan")) if tagger.history_ else float("nan")
    print(
        f"trained {tagger.n_epochs_} epoch(s) in {time.perf_counter() - t0:.1f} s (final train_loss "
        f"{loss:.4f}); tags: {', '.join(_classes(tagger))}\nwrote {out}",
        file=sys.stderr,
    )
    return 0


def _train_progress():
    from lightning.pytorch.callbacks import Callback

    class _TrainProgress(Callback):
        """One tqdm bar over all training steps, with the epoch and loss."""

        def __init__(self):
            self.bar = None

        def on_train_start(self, trainer, pl_module):
            total = None
            try:
                total = int(trainer.num_training_batches) * int(trainer.max_epochs)
            except (TypeError, ValueError, OverflowError):
                pass
            self.bar = _progress(total=total, desc="training", unit="step")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if self.bar is not None:
                self.bar.update(1)

        def on_train_epoch_end(self, trainer, pl_module):
            if self.bar is not None:
                loss = trainer.callback_metrics.get("train_loss")
                post = {"epoch": int(trainer.current_epoch) + 1}
                if loss is not None:
                    post["loss"] = f"{float(loss):.4f}"
                self.bar.set_postfix(post)

        def on_train_end(self, trainer, pl_module):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

        def on_exception(self, trainer, pl_module, exception):
            self.on_train_end(trainer, pl_module)

    return _TrainProgress()


def _cmd_predict(args):
    import numpy as np

    out = _check_output(args.output, "predictions CSV")
    names, paths = _collect_audio(args.inputs, args.ext)
    tagger, extractor = _load_model(args.model, args.jobs, args.quiet)
    classes = _classes(tagger)
    threshold = tagger.threshold if args.threshold is None else args.threshold
    proba = np.empty((len(paths), len(classes)), dtype=np.float32)
    with _progress(total=len(paths), desc="predict", unit="file", disable=args.quiet) as bar:
        for sl in _chunks(len(paths), args.chunk):
            X = _extract(extractor, paths[sl])
            proba[sl] = tagger.predict_proba(X)
            bar.update(sl.stop - sl.start)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["filename", "tags"] + [f"proba_{c}" for c in classes] + [f"pred_{c}" for c in classes])
        for name, p in zip(names, proba):
            pred = (p >= threshold).astype(int)
            w.writerow([name, ",".join(c for c, d in zip(classes, pred) if d)]
                       + [f"{v:.6f}" for v in p] + [int(d) for d in pred])
    print(f"tagged {len(names)} file(s) (threshold {threshold:g}); wrote {out}", file=sys.stderr)
    return 0


def _cmd_localize(args):
    from .events import write_events_tsv

    out = _check_output(args.output, "event list")
    if args.plot_dir is not None:
        Path(args.plot_dir).mkdir(parents=True, exist_ok=True)
    names, paths = _collect_audio(args.inputs, args.ext)
    tagger, extractor = _load_model(args.model, args.jobs, args.quiet)
    classes, clip_threshold = _check_event_options(tagger, args)
    events = []
    with _progress(total=len(paths), desc="localize", unit="file", disable=args.quiet) as bar:
        for sl in _chunks(len(paths), args.chunk):
            X = _extract(extractor, paths[sl])
            proba, scores, att = _frame_scores(tagger, X)
            durations = [extractor.clip_duration(len(x)) for x in X]
            chunk_events = _events_for(scores, proba, names[sl], durations, classes, extractor, args, clip_threshold)
            events += chunk_events
            if args.plot_dir is not None:
                for j, name in enumerate(names[sl]):
                    _plot_file(args.plot_dir, name, X[j], scores[j], att[j], proba[j], classes, extractor)
            bar.update(sl.stop - sl.start)
    write_events_tsv(events, out)
    n_files = len({e[0] for e in events})
    print(f"{len(events)} event(s) in {n_files} of {len(names)} file(s); wrote {out}"
          + (f" and {len(names)} figure(s) to {args.plot_dir}" if args.plot_dir else ""), file=sys.stderr)
    return 0


def _cmd_evaluate(args):
    import numpy as np

    from .events import read_events_tsv
    from .metrics import equal_error_rate, segment_based_metrics
    from .tags import encode_tags

    if args.segment_length <= 0 or not math.isfinite(args.segment_length):
        raise CLIError(f"--segment-length must be a positive number of seconds, got {args.segment_length}")
    out = _check_output(args.output, "report CSV") if args.output else None
    data = _read_labelled(args.data, args.folds)
    names, strong = data.filenames, data.strong
    if args.strong is not None:
        sp = Path(args.strong).expanduser()
        if not sp.is_file():
            raise CLIError(f"strong label file not found: {args.strong!r}")
        kept = set(names)
        strong = [e for e in read_events_tsv(sp) if e[0] in kept]
    tagger, extractor = _load_model(args.model, args.jobs, args.quiet)
    classes, clip_threshold = _check_event_options(tagger, args)
    Y, _ = encode_tags(data.tags, classes, kind="names", name="the data", known_as=f"the model's tags {classes}")
    proba = np.empty(Y.shape, dtype=np.float32)
    est, durations = [], {}
    with _progress(total=len(data.paths), desc="evaluate", unit="file", disable=args.quiet) as bar:
        for sl in _chunks(len(data.paths), args.chunk):
            X = _extract(extractor, data.paths[sl])
            if strong is not None:
                p, scores, _ = _frame_scores(tagger, X)
                d = [extractor.clip_duration(len(x)) for x in X]
                durations.update(zip(names[sl], d))
                est += _events_for(scores, p, names[sl], d, classes, extractor, args, clip_threshold)
                proba[sl] = p
            else:
                proba[sl] = tagger.predict_proba(X)
            bar.update(sl.stop - sl.start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined EERs are reported as "n/a" below
        eer = np.atleast_1d(equal_error_rate(Y, proba, average=None))
    seg = None
    if strong is not None:
        bad = sorted({e[3] for e in strong} - set(classes))
        if bad:
            raise CLIError(f"the strong labels have tags {bad} that the model does not know (its tags: {classes})")
        seg = segment_based_metrics(strong, est, classes, segment_length=args.segment_length,
                                    filenames=names, durations=durations)
    rows = []
    for k, c in enumerate(classes):
        row = {"tag": c, "n_clips": int(Y[:, k].sum()), "eer": float(eer[k])}
        if seg is not None:
            cw = seg["class_wise"][c]
            row.update(segment_f1=cw["f_measure"], segment_precision=cw["precision"],
                       segment_recall=cw["recall"], segment_error_rate=cw["error_rate"])
        rows.append(row)
    summary = {"tag": "macro" if seg is None else "macro (EER) / overall (segment)",
               "n_clips": len(names), "eer": float(np.nanmean(eer)) if np.isfinite(eer).any() else float("nan")}
    if seg is not None:
        summary.update(segment_f1=seg["f_measure"], segment_precision=seg["precision"],
                       segment_recall=seg["recall"], segment_error_rate=seg["error_rate"])
    rows.append(summary)
    _print_table(rows, sys.stdout)
    if strong is None:
        print("(no strong labels: give --strong or DATA/strong.tsv for the segment F1)", file=sys.stderr)
    if out is not None:
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _print_table(rows, stream):
    cols = list(rows[0])
    def fmt(v):
        if isinstance(v, float):
            return "n/a" if not math.isfinite(v) else f"{v:.3f}"
        return str(v)
    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)), file=stream)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=stream)


# ----------------------------------------------------------------------------- entry point
def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"skattloc: warning: {message}", file=sys.stderr)


def main(argv=None):
    """Run the ``skattloc`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 for a problem with the input, 2 for a malformed
        command line (argparse exits itself), 130 when interrupted.

    Examples
    --------
    >>> from skattloc.cli import main
    >>> main(["predict", "no-such-model.skattloc", "no-such-folder"])  # the message goes to stderr
    1
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug = getattr(args, "debug", False) or os.environ.get("SKATTLOC_DEBUG", "") not in ("", "0")
    saved = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"skattloc {args.command}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, OSError, ValueError) as exc:
        # CLIError, missing/unreadable files (OSError), and every documented input error of
        # skattloc (ValueError: AudioLoadError, ModelFileError, label-file and parameter errors).
        if debug:
            raise
        msg = str(exc) or type(exc).__name__
        print(f"skattloc {args.command}: error: {msg}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = saved

