"""The ``skattloc`` command line: train, tag, localize and evaluate on folders of audio files.

Run ``skattloc --help`` (or ``python -m skattloc --help``) for the commands, and
``skattloc COMMAND --help`` for each command's options and examples. Every command reads
audio files with :func:`skattloc.load_audio` (WAV, FLAC, OGG, MP3...; resampled to the
model's rate) and computes features with :class:`skattloc.LogMelExtractor`, using the
settings the model was trained with.

Exit status: 0 on success, 1 for a problem with the input (a missing file or folder, an
unreadable audio or model file, a malformed label file, an invalid option value, an output
path that would overwrite an input), 2 for a malformed command line, 130 when interrupted
(Ctrl-C). Problems with the input are reported in one line without a traceback; set
``SKATTLOC_DEBUG=1`` or pass ``--debug`` to see it.

Output files (``-o``): checked before any work (the folder must exist and be writable; a
path ending in ``/`` is a folder, created if needed, that gets the command's default file
name). An output is never an input of the same run (model, labels, audio); an existing file
of another kind (e.g. audio or a label file where a predictions CSV goes) is replaced only
with ``--force``; an existing output of the same kind is replaced, with a note on stderr.
Files are written to a temporary file beside the output and renamed over it; when that
fails, the result is saved in the working folder (or the system temp folder) and the
message says where. ``--on-error skip`` goes on past unreadable audio files and lists them
on stderr and in ``OUTPUT.skipped.tsv``. See ``docs/cli.md`` and ``docs/reliability.md``.
"""
from __future__ import annotations

import argparse
import ast
import math
import os
import sys
import time
import warnings
from pathlib import Path

from ._cliio import (
    AUDIO_EXTENSIONS,
    CLIError,
    check_median_filter,
    check_writable,
    chunks,
    collect_audio,
    guard_output,
    AudioRun,
    output_path,
    report_skipped,
    skipped_path,
    write_csv,
    write_output,
)

__all__ = ["main", "build_parser", "CLIError"]





# ----------------------------------------------------------------------------- parser
_MAIN_EPILOG = """\
examples:
  # train on a folder with audio/ and weak.csv (filename,tags)
  skattloc fit my_data/ -o tagger.skattloc
  # tag every audio file under a folder: per-tag probabilities and 0/1 decisions
  skattloc predict tagger.skattloc recordings/ -o tags.csv
  # when does each event happen: DCASE event list and one figure per file
  skattloc localize tagger.skattloc recordings/ -o events.tsv --plot-dir plots/
  # a few clips with event times? tune the event settings on them
  skattloc tune tagger.skattloc val_data/ -o tuned.skattloc
  # per-tag EER, and segment/event F1 and PSDS when my_data/strong.tsv holds event times
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
  # the paper's own configuration (per-frame CNN, 3 GRU layers of 128, att_loc, 20 epochs)
  skattloc fit my_data/ -o paper.skattloc --paper
  # checkpoint every epoch; after Ctrl-C or a crash, continue with the same command + --resume
  skattloc fit my_data/ -o models/ --checkpoint-dir runs/tagger --epochs 50
  skattloc fit my_data/ -o models/ --checkpoint-dir runs/tagger --epochs 50 --resume
"""

_TUNE_EPILOG = """\
DATA holds clips the model did not train on (a validation set: a folder with audio/ and
weak.csv, or a CSV of path,tags; --folds picks folds of weak.csv). With event times
(DATA/strong.tsv or --strong), the per-tag event settings that 'localize' uses (threshold,
hysteresis, median filter, gap, minimum duration, clip gate) are tuned for the best
event-based F1 on these clips; with clip tags only (--weak, or no strong labels), they are
calibrated from the tags as 'fit' does on its validation split. The model is written to -o
with the new settings; its network is unchanged.

examples:
  skattloc tune tagger.skattloc my_data/ --folds 4 -o tuned.skattloc
  skattloc tune tagger.skattloc val.csv --strong val_events.tsv -o tuned.skattloc
  skattloc tune tagger.skattloc my_data/ --folds 4 --weak -o tuned.skattloc
"""

_PREDICT_EPILOG = """\
output: a CSV with one row per file: filename, tags (the predicted tags, comma-joined),
then proba_<tag> (clip probability) and pred_<tag> (0/1, proba >= threshold) per tag.

examples:
  skattloc predict tagger.skattloc recordings/ -o tags.csv
  skattloc predict tagger.skattloc a.wav b.flac -o tags.csv --threshold 0.3
  # go on past unreadable files; they are listed on stderr and in tags.csv.skipped.tsv
  skattloc predict tagger.skattloc recordings/ -o tags.csv --on-error skip
"""

_LOCALIZE_EPILOG = """\
output: a DCASE event list, tab-separated with the header filename, onset, offset,
event_label (seconds), as read by sed_eval, psds_eval and sed_scores_eval.

How events are made, per file and tag (skattloc.postprocessing.EventPostprocessor): the
model's frame scores (AttLocTagger.localize, in [0, 1]; which quantity is set by the model's
'localization' parameter or --localization) are median-filtered over --median-filter
seconds; an event starts where the score reaches --frame-threshold and extends while it
stays at or above --threshold-low (hysteresis); gaps shorter than --min-gap are merged and
events shorter than --min-duration dropped; only tags whose clip probability reaches the
clip gate (--clip-threshold; off with --no-clip-gate) get events. Every setting is per tag
and stored in the model: 'fit' calibrates them on its validation clips from their clip tags,
'skattloc tune' sets them from validation clips with event times. An option given here
overrides the stored value for every tag (or per tag: dog=0.3,cat=0.6).

examples:
  skattloc localize tagger.skattloc recordings/ -o events.tsv
  skattloc localize tagger.skattloc recordings/ -o events.tsv --plot-dir plots/
  skattloc localize tagger.skattloc a.wav -o events.tsv --frame-threshold dog=0.3,cat=0.6
  skattloc localize tagger.skattloc recordings/ -o events.tsv --median-filter 0.2 --min-gap 0.5
"""

_EVALUATE_EPILOG = """\
DATA is a folder (audio/, weak.csv, optional strong.tsv) or a CSV of paths and tags, as
for 'fit'. Prints a table per tag: the clip-level equal error rate (EER, DCASE 2016 Task 4;
lower is better) and, with strong labels (DATA/strong.tsv or --strong), for the events that
'localize' would write (same options): the 1 s segment-based F1, precision, recall and error
rate, the event-based F1 (onset collar 0.2 s, offset collar max(0.2 s, 20 %)), and, with
the optional sed_scores_eval (pip install "skattloc[psds]"), the intersection-based F1
(DTC = GTC = 0.5) and PSDS1/PSDS2 (DCASE task 4 scenarios 1 and 2) of the event scores:
the frame scores median-filtered as 'localize' does, times the clip probability.

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
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:  # NaN too
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


def _devices(text):
    """Lightning ``devices``: an int (``2``, ``-1`` for all GPUs), a list (``0,1``) or a name
    (``auto``); Lightning judges the value (see :func:`skattloc.training.check_trainer_settings`)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    if "," in text:
        try:
            return [int(d) for d in text.split(",") if d.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number of devices (1, 2, -1), device indices such as 0,1, or auto; got {text!r}"
            ) from None
    return text


def _frame_threshold(text):
    """``0.5`` or ``dog=0.3,cat=0.6``; frame scores are in [0, 1], so thresholds are too."""
    if "=" not in text:
        value = _fraction(text)
        return value
    out = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected a number or TAG=VALUE pairs such as dog=0.3,cat=0.6, got {text!r}")
        tag, value = item.rsplit("=", 1)
        try:
            out[tag.strip()] = _fraction(value)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{tag.strip()}={value.strip()}: {exc}") from None
    return out


def _add_common(p):
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="unreadable audio files: stop with an error (raise), or skip them and list "
                   "them at the end, on stderr and in OUTPUT.skipped.tsv (skip)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output file of another kind (never an input of the run)")
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


def _add_labelled_inputs(p, what):
    """MODEL and DATA (labelled clips, with folds and optional event times) of 'tune' and 'evaluate'."""
    p.add_argument("model", metavar="MODEL", help="model file written by 'skattloc fit'")
    p.add_argument("data", metavar="DATA", help=f"data folder (audio/ + weak.csv) or CSV of path,tags: the {what}")
    p.add_argument("--folds", type=_folds, default=None, help="use only these folds of weak.csv")
    p.add_argument("--strong", default=None, metavar="TSV",
                   help="event list (filename, onset, offset, event_label) of the clips (default: DATA/strong.tsv)")
    p.add_argument("--chunk", type=_positive_int, default=64, help="files processed at a time")
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel feature-extraction jobs (threads)")


def _add_event_options(p):
    g = p.add_argument_group(
        "event options (default: the model's event settings, calibrated in 'fit' or set by 'skattloc tune')")
    g.add_argument(
        "--frame-threshold", type=_frame_threshold, default=None, metavar="T",
        help="score at which an event starts, in [0, 1]: one number, or TAG=VALUE pairs (dog=0.3,cat=0.6) "
        "covering every tag; the model's low/high ratio is kept unless --threshold-low is given",
    )
    g.add_argument("--threshold-low", type=_frame_threshold, default=None, metavar="T",
                   help="score down to which an event extends (hysteresis), at most --frame-threshold")
    g.add_argument("--localization", default=None, metavar="NAME",
                   help="frame quantity to threshold, an AttLocTagger 'localization' value "
                   "(default: the model's; see the user guide)")
    g.add_argument("--median-filter", type=_nonneg_float, default=None, metavar="SECONDS",
                   help="median filter length on the frame scores (0: off); shorter than the longest input")
    g.add_argument("--min-duration", type=_nonneg_float, default=None, metavar="SECONDS", help="drop shorter events")
    g.add_argument("--min-gap", type=_nonneg_float, default=None, metavar="SECONDS", help="merge events closer than this")
    g.add_argument("--clip-threshold", type=_fraction, default=None, metavar="P",
                   help="clip probability a tag needs to get events (the clip gate)")
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
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model file to write (e.g. tagger.skattloc); a folder ending in / gets model.skattloc")
    p.add_argument("--folds", type=_folds, default=None, help="train only on these folds of weak.csv, e.g. 1,2,3")
    from .estimator import AttLocTagger  # no torch: the estimator imports it when fitting

    d = AttLocTagger().get_params(deep=False)  # the options' defaults follow the estimator's

    def default(name):
        return f" (default {d[name]})"

    g = p.add_argument_group(
        "model (AttLocTagger parameters; unset options keep the estimator's defaults, the recipe of "
        "docs/benchmarks.md)")
    g.add_argument("--paper", action="store_true",
                   help="start from the paper's configuration (skattloc.PAPER_CONFIG: per-frame CNN, "
                   "3 GRU layers of 128, att_loc, 20 epochs); other options still apply")
    g.add_argument("--pooling", default=None,
                   help="att_loc (attention + localization), att, mean, linear_softmax or auto" + default("pooling"))
    g.add_argument("--n-filters", type=_positive_int, default=None, help="CNN channels/filters" + default("n_filters"))
    g.add_argument("--kernel-size", type=_positive_int, default=None,
                   help="kernel length in mel bands of the paper's per-frame CNN" + default("kernel_size"))
    g.add_argument("--rnn-hidden", type=_positive_int, default=None, help="GRU units per direction" + default("rnn_hidden"))
    g.add_argument("--rnn-layers", type=_positive_int, default=None, help="bidirectional GRU layers" + default("rnn_layers"))
    g.add_argument("--dense-units", type=_positive_int, default=None, help="units of the dense ReLU layer" + default("dense_units"))
    g.add_argument("--dropout", type=_fraction, default=None, help="dropout after the dense layer" + default("dropout"))
    g.add_argument("--threshold", type=_fraction, default=None, help="clip decision threshold stored in the model" + default("threshold"))
    g.add_argument("--localization", default=None, help="frame output of 'localize' (see the user guide)" + default("localization"))
    g.add_argument("--param", type=_key_value, action="append", default=[], metavar="NAME=VALUE",
                   help="any other AttLocTagger parameter, e.g. --param spec_augment=2 (repeatable)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_positive_int, default=None, help="passes over the training data (max_epochs)" + default("max_epochs"))
    g.add_argument("--batch-size", type=_positive_int, default=None, help="clips per step" + default("batch_size"))
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate" + default("learning_rate"))
    g.add_argument("--validation-fraction", type=_fraction, default=None,
                   help="clips held out for validation, early stopping and the event calibration" + default("validation_fraction"))
    g.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None,
                   help=f"stop when the validation metric ({d['early_stopping_metric']}) stops improving "
                   "(default: whenever there is a validation split)")
    g.add_argument("--seed", type=int, default=None, help="random seed (same model every run on the CPU)")
    g.add_argument("--accelerator", default=None, help="Lightning accelerator: cpu, gpu, auto..." + default("accelerator"))
    g.add_argument("--devices", type=_devices, default=None, help="Lightning devices: 1, 2, auto, 0,1..." + default("devices"))
    g.add_argument("--precision", default=None, help="Lightning precision, e.g. bf16-mixed on a GPU" + default("precision"))
    g.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="write DIR/last.ckpt after every epoch, to resume an interrupted run with --resume")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run whose checkpoint is in --checkpoint-dir")
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
    p.add_argument("-o", "--output", default="predictions.csv", metavar="CSV",
                   help="CSV file to write; a folder ending in / gets predictions.csv")
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
    p.add_argument("-o", "--output", default="events.tsv", metavar="TSV",
                   help="event list to write; a folder ending in / gets events.tsv")
    p.add_argument("--plot-dir", default=None, metavar="DIR", help="write one PNG figure per file into DIR")
    _add_event_options(p)
    _add_common(p)
    p.set_defaults(func=_cmd_localize)

    # tune -----------------------------------------------------------------------
    p = sub.add_parser(
        "tune", help="set a model's event post-processing from validation clips (strong or weak labels)",
        description="Tune (event times) or calibrate (clip tags) the per-tag event settings of a model "
        "on validation clips, and write the model with them.",
        epilog=_TUNE_EPILOG, formatter_class=_Formatter,
    )
    _add_labelled_inputs(p, "validation clips")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model file to write (not MODEL itself); a folder ending in / gets model.skattloc")
    p.add_argument("--weak", action="store_true", help="calibrate from the clip tags even when event times exist")
    _add_common(p)
    p.set_defaults(func=_cmd_tune)

    # evaluate -------------------------------------------------------------------
    p = sub.add_parser(
        "evaluate", help="per-tag EER; segment and event F1 and PSDS with strong labels",
        description="Evaluate a model on labelled audio: per-tag EER, and with event times the segment- "
        "and event-based F1 of the events and the PSDS of the frame scores.",
        epilog=_EVALUATE_EPILOG, formatter_class=_Formatter,
    )
    _add_labelled_inputs(p, "clips to evaluate")
    p.add_argument("--segment-length", type=float, default=1.0, metavar="SECONDS", help="segment length of the F1")
    p.add_argument("-o", "--output", default=None, metavar="CSV",
                   help="also write the table as CSV; a folder ending in / gets report.csv")
    _add_event_options(p)
    _add_common(p)
    p.set_defaults(func=_cmd_evaluate)
    return parser


# ----------------------------------------------------------------------------- helpers
def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True, **kwargs)


def _read_labelled(data, folds=None):
    """The data set (:func:`skattloc.load_weak_dataset`) of a weak-label folder or CSV."""
    from .datasets import load_weak_dataset

    src = Path(data).expanduser()
    if not src.exists():
        raise CLIError(f"data not found: {str(src)!r} (expected a folder with audio/ and weak.csv, or a CSV of path,tags)")
    return load_weak_dataset(src, folds=folds)


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


def _frame_scores(tagger, X):
    """``(clip_proba, [frame scores per clip], [attention per clip or None])`` from one
    forward pass; the frame scores are what ``tagger.localize`` returns."""
    import numpy as np

    out = tagger.frame_outputs(X)
    return np.stack([o["clip"] for o in out]), [o[tagger.localization] for o in out], [o.get("att") for o in out]


def _check_event_options(tagger, args):
    """The model's event post-processing with the command line's overrides
    (:meth:`AttLocTagger.get_event_postprocessor`); fails on a bad --localization or event
    option before any audio is read."""
    classes = _classes(tagger)
    if args.localization is not None:
        tagger.set_params(localization=args.localization)
        tagger._validate_params()  # e.g. "loc" needs pooling="att_loc": a clear ValueError
    for opt in ("frame_threshold", "threshold_low"):
        threshold = getattr(args, opt)
        if isinstance(threshold, dict):
            missing = [c for c in classes if c not in threshold]
            unknown = [t for t in threshold if t not in classes]
            if missing or unknown:
                raise CLIError(
                    f"--{opt.replace('_', '-')} must give a value for every tag {classes}"
                    + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else "")
                )
    overrides = dict(threshold=args.frame_threshold, threshold_low=args.threshold_low, median_filter=args.median_filter,
                     min_gap=args.min_gap, min_duration=args.min_duration,
                     clip_threshold=False if args.no_clip_gate else args.clip_threshold)
    try:
        return tagger.get_event_postprocessor(**overrides)
    except ValueError as exc:
        raise CLIError(f"event options: {exc}") from None


def _events(post, scores, proba, names, durations, extractor):
    """Events of a chunk of clips (see the 'localize' help for the steps)."""
    return post.decode(scores, proba, names, hop_s=extractor.hop_seconds, offset_s=extractor.frame_offset_seconds,
                       clip_duration=durations)


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

    out = output_path(args.output, "model")
    data = _read_labelled(args.data, args.folds)
    if not any(data.tags):
        raise CLIError(f"no clip of {args.data!r} has a tag; 'fit' needs clip-level tags")
    from .estimator import PAPER_CONFIG

    params = dict(PAPER_CONFIG) if args.paper else {}
    given = dict(
        pooling=args.pooling, n_filters=args.n_filters, kernel_size=args.kernel_size,
        rnn_hidden=args.rnn_hidden, rnn_layers=args.rnn_layers, dense_units=args.dense_units,
        dropout=args.dropout, threshold=args.threshold, localization=args.localization,
        max_epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        validation_fraction=args.validation_fraction, early_stopping=args.early_stopping,
        accelerator=args.accelerator, devices=args.devices, precision=args.precision,
    )
    params.update({k: v for k, v in given.items() if v is not None}, random_state=args.seed)
    if args.checkpoint_dir is not None:
        params["checkpoint_dir"] = args.checkpoint_dir
    if args.resume:
        params["resume"] = True
    known = AttLocTagger().get_params(deep=False)
    for key, value in args.param:
        if key not in known:
            raise CLIError(f"--param {key}: AttLocTagger has no parameter {key!r}; known: {', '.join(sorted(known))}")
        params[key] = value
    inputs = _data_inputs(args.data, data)
    if isinstance(params.get("checkpoint_dir"), (str, os.PathLike)):
        inputs.append((Path(params["checkpoint_dir"]) / "last.ckpt", "the training checkpoint"))
    guard_output(out, "model", inputs, args)
    if args.on_error == "skip":
        guard_output(skipped_path(out), "skipped", inputs, args)
    tagger = AttLocTagger(**params)
    # Fail on a bad option or Lightning setting before the long feature extraction.
    tagger._validate_params()
    from .training import check_trainer_settings  # imports torch and Lightning

    check_trainer_settings(tagger)
    if tagger.frontend == "frame_cnn" and tagger.kernel_size > args.n_mels:
        raise CLIError(f"--kernel-size {tagger.kernel_size} is larger than --n-mels {args.n_mels}; it must be at most the mel bands")
    extractor = LogMelExtractor(sr=args.sr, n_mels=args.n_mels, n_jobs=args.jobs, verbose=False)
    run = AudioRun(args, extractor)
    t0 = time.perf_counter()
    X, kept = [], []
    with _progress(total=len(data.paths), desc="features", unit="file", disable=args.quiet) as bar:
        for sl in chunks(len(data.paths), 64):
            x, ok = run.extract(data.paths[sl], data.filenames[sl])
            X += x
            kept += [sl.start + i for i in ok]
            bar.update(sl.stop - sl.start)
    _none_read(run, data.paths)
    tags = [data.tags[i] for i in kept]
    if not any(tags):
        raise CLIError(f"no readable clip of {args.data!r} has a tag; 'fit' needs clip-level tags")
    run.warn_low_rates(len(data.paths))
    n_tagged = sum(bool(t) for t in tags)
    print(f"{len(X)} clips ({n_tagged} with tags), {len(set(t for ts in tags for t in ts))} tags; "
          f"features in {time.perf_counter() - t0:.1f} s"
          + (f"; {len(run.skipped)} unreadable file(s) skipped" if run.skipped else ""), file=sys.stderr)
    callbacks = [] if args.quiet else [_train_progress()]
    tagger.set_params(callbacks=callbacks or None)
    t0 = time.perf_counter()
    try:
        tagger.fit(X, tags)
    except KeyboardInterrupt as exc:
        exc.skattloc_hint = _resume_hint(tagger)
        raise
    tagger.set_params(callbacks=None)
    default_timing = LogMelExtractor()
    if len(tagger.validation_indices_) and tagger.calibrate_events and (
        (extractor.hop_seconds, extractor.frame_offset_seconds)
        != (default_timing.hop_seconds, default_timing.frame_offset_seconds)
    ):  # fit calibrated with the default extractor's frame timing: redo it with this one's
        val = tagger.validation_indices_
        tagger.tune_events([X[i] for i in val], [tags[i] for i in val], hop_s=extractor.hop_seconds,
                           offset_s=extractor.frame_offset_seconds)
    # The safe format, with the feature settings; kept elsewhere if the write fails.
    write_output(out, "model file", lambda path: tagger.save(path, extractor=extractor))
    report_skipped(args, run.skipped, out)
    loss = tagger.history_[-1].get("train_loss", float("nan")) if tagger.history_ else float("nan")
    print(
        f"trained {tagger.n_epochs_} epoch(s) in {time.perf_counter() - t0:.1f} s (final train_loss "
        f"{loss:.4f}); tags: {', '.join(_classes(tagger))}\n{_event_settings_line(tagger)}\nwrote {out}",
        file=sys.stderr,
    )
    return 0


def _event_settings_line(tagger):
    """One line on where the model's event post-processing comes from."""
    src = tagger.event_settings_.get("source", "default")
    n = tagger.event_settings_.get("info", {}).get("n_clips")
    if src == "weak":
        return f"event settings: calibrated on the clip tags of {n} held-out clips ('skattloc tune' with strong labels can refine them)"
    if src == "strong":
        return f"event settings: tuned on the event times of {n} clips"
    return "event settings: defaults (no validation clips to calibrate them on; see 'skattloc tune')"


def _data_inputs(data_arg, data):
    """``(path, role)`` of every file a labelled data set of this run reads."""
    src = Path(data_arg).expanduser()
    if src.is_dir():
        labels = [(src / "weak.csv", "the label file"), (src / "strong.tsv", "the strong label file")]
    else:
        labels = [(src, "the label file")]
    return labels + [(p, "an audio input") for p in data.paths]


def _resume_hint(tagger):
    """How to continue an interrupted 'skattloc fit'."""
    if tagger.checkpoint_dir is None:
        return "no --checkpoint-dir was set, so the next run starts from the first epoch (set one to be able to resume)"
    ckpt = Path(tagger.checkpoint_dir) / "last.ckpt"
    if not ckpt.is_file():
        return f"no epoch had finished, so there is no checkpoint in {str(tagger.checkpoint_dir)!r} to resume from"
    again = "run the same command again" if tagger.resume else "run the same command with --resume"
    return f"the last finished epoch is saved in {str(ckpt)!r}; to continue from it, {again}"


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
    out = output_path(args.output, "predictions")
    names, paths = collect_audio(args.inputs, args.ext, args)
    _guard_audio_outputs(args, out, "predictions", paths)
    tagger, extractor = _load_model(args.model, args.jobs, args.quiet)
    classes = _classes(tagger)
    threshold = tagger.threshold if args.threshold is None else args.threshold
    run = AudioRun(args, extractor)
    done, proba = [], []
    with _progress(total=len(paths), desc="predict", unit="file", disable=args.quiet) as bar:
        for sl in chunks(len(paths), args.chunk):
            X, ok = run.extract(paths[sl], names[sl])
            if X:
                proba += list(tagger.predict_proba(X))
                done += [names[sl.start + i] for i in ok]
            bar.update(sl.stop - sl.start)
    _none_read(run, paths)
    run.warn_low_rates(len(paths))
    rows = []
    for name, p in zip(done, proba):
        pred = (p >= threshold).astype(int)
        rows.append([name, ",".join(c for c, d in zip(classes, pred) if d)] + [f"{v:.6f}" for v in p] + [int(d) for d in pred])
    header = ["filename", "tags"] + [f"proba_{c}" for c in classes] + [f"pred_{c}" for c in classes]
    write_output(out, "predictions CSV", write_csv(header, rows))
    report_skipped(args, run.skipped, out)
    print(f"tagged {len(done)} file(s) (threshold {threshold:g}); wrote {out}", file=sys.stderr)
    return 0


def _guard_audio_outputs(args, out, kind, paths):
    """The output checks of predict and localize: never the model nor an audio input."""
    inputs = [(Path(args.model).expanduser(), "the model file")] + [(p, "an audio input") for p in paths]
    guard_output(out, kind, inputs, args)
    if args.on_error == "skip":
        guard_output(skipped_path(out), "skipped", inputs, args)


def _none_read(run, paths):
    """CLIError when every file was skipped (--on-error skip): there is nothing to write."""
    if len(run.skipped) == len(paths):
        report_skipped(run.args, run.skipped, None)
        raise CLIError(f"none of the {len(paths)} audio file(s) could be read; nothing was written")


def _cmd_localize(args):
    from .events import write_events_tsv

    out = output_path(args.output, "events")
    if args.plot_dir is not None:
        try:
            Path(args.plot_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"cannot create the --plot-dir folder {args.plot_dir!r}: {exc.strerror or exc}") from None
        check_writable(Path(args.plot_dir), f"figures to {args.plot_dir!r}")
    names, paths = collect_audio(args.inputs, args.ext, args)
    _guard_audio_outputs(args, out, "events", paths)
    check_median_filter(args, paths)
    tagger, extractor = _load_model(args.model, args.jobs, args.quiet)
    post = _check_event_options(tagger, args)
    classes = _classes(tagger)
    run = AudioRun(args, extractor)
    events, n_done = [], 0
    with _progress(total=len(paths), desc="localize", unit="file", disable=args.quiet) as bar:
        for sl in chunks(len(paths), args.chunk):
            X, ok = run.extract(paths[sl], names[sl])
            chunk_names = [names[sl.start + i] for i in ok]
            if X:
                proba, scores, att = _frame_scores(tagger, X)
                durations = [extractor.clip_duration(len(x)) for x in X]
                events += _events(post, scores, proba, chunk_names, durations, extractor)
                if args.plot_dir is not None:
                    for j, name in enumerate(chunk_names):
                        _plot_file(args.plot_dir, name, X[j], scores[j], att[j], proba[j], classes, extractor)
            n_done += len(chunk_names)
            bar.update(sl.stop - sl.start)
    _none_read(run, paths)
    run.warn_low_rates(len(paths))
    write_output(out, "event list", lambda path: write_events_tsv(events, path))
    report_skipped(args, run.skipped, out)
    n_files = len({e[0] for e in events})
    print(f"{len(events)} event(s) in {n_files} of {n_done} file(s); wrote {out}"
          + (f" and {n_done} figure(s) to {args.plot_dir}" if args.plot_dir else ""), file=sys.stderr)
    return 0


def _read_strong(path, keep):
    """Events of the clips ``keep`` from a DCASE TSV (CLIError if missing or not UTF-8)."""
    from .events import read_events_tsv

    sp = Path(path).expanduser()
    if not sp.is_file():
        raise CLIError(f"strong label file not found: {path!r}")
    try:
        return sp, [e for e in read_events_tsv(sp) if e[0] in keep]
    except UnicodeDecodeError as exc:
        from .datasets import not_utf8_error

        raise not_utf8_error(sp, exc) from None


def _cmd_tune(args):
    out = output_path(args.output, "model")
    data = _read_labelled(args.data, args.folds)
    names, strong = data.filenames, data.strong
    inputs = [(Path(args.model).expanduser(), "the model file")] + _data_inputs(args.data, data)
    if args.strong is not None:
        sp, strong = _read_strong(args.strong, set(names))
        inputs.append((sp, "the strong label file"))
    if args.weak:
        strong = None
    guard_output(out, "model", inputs, args)
    if args.on_error == "skip":
        guard_output(skipped_path(out), "skipped", inputs, args)
    tagger, extractor = _load_model(args.model, args.jobs, args.quiet)
    classes = _classes(tagger)
    if strong is not None:
        bad = sorted({e[3] for e in strong} - set(classes))
        if bad:
            raise CLIError(f"the strong labels have tags {bad} that the model does not know (its tags: {classes})")
    run = AudioRun(args, extractor)
    X, kept = [], []
    with _progress(total=len(data.paths), desc="features", unit="file", disable=args.quiet) as bar:
        for sl in chunks(len(data.paths), args.chunk):
            x, ok = run.extract(data.paths[sl], names[sl])
            X += x
            kept += [sl.start + i for i in ok]
            bar.update(sl.stop - sl.start)
    _none_read(run, data.paths)
    run.warn_low_rates(len(data.paths))
    kept_names = [names[i] for i in kept]
    timing = dict(hop_s=extractor.hop_seconds, offset_s=extractor.frame_offset_seconds)
    before = tagger.event_settings_.get("source", "default")
    if strong is not None:
        read = set(kept_names)
        strong = [e for e in strong if e[0] in read]
        durations = [extractor.clip_duration(len(x)) for x in X]
        tagger.tune_events(X, reference=strong, filenames=kept_names, clip_duration=durations,
                           verbose=not args.quiet, **timing)
        how = f"tuned on the event times of {len(X)} clips ({len(strong)} events)"
    else:
        tags = [data.tags[i] for i in kept]
        if not any(tags):
            raise CLIError(f"no readable clip of {args.data!r} has a tag; weak calibration needs clip tags")
        tagger.tune_events(X, tags, **timing)
        how = f"calibrated on the clip tags of {len(X)} clips"
    write_output(out, "model file", lambda path: tagger.save(path, extractor=extractor))
    report_skipped(args, run.skipped, out)
    pp = tagger.get_event_postprocessor()
    score = pp.info.get("event_f1") or pp.info.get("clip_event_f1") or {}
    label = "event F1 on these clips" if strong is not None else "clip-level F1 of 'has an event' on these clips"
    print(f"event settings {how} (were: {before}); {label}: "
          + ", ".join(f"{c} {v:.3f}" for c, v in score.items() if v == v) + f"\nwrote {out}", file=sys.stderr)
    return 0


def _cmd_evaluate(args):
    import numpy as np

    from .metrics import equal_error_rate, segment_based_metrics
    from .tags import encode_tags

    if args.segment_length <= 0 or not math.isfinite(args.segment_length):
        raise CLIError(f"--segment-length must be a positive number of seconds, got {args.segment_length}")
    out = output_path(args.output, "report") if args.output else None
    data = _read_labelled(args.data, args.folds)
    names, strong = data.filenames, data.strong
    inputs = [(Path(args.model).expanduser(), "the model file")] + _data_inputs(args.data, data)
    if args.strong is not None:
        sp, strong = _read_strong(args.strong, set(names))
        inputs.append((sp, "the strong label file"))
    if out is not None:
        guard_output(out, "report", inputs, args)
        if args.on_error == "skip":
            guard_output(skipped_path(out), "skipped", inputs, args)
    if strong is not None:
        check_median_filter(args, data.paths)
    tagger, extractor = _load_model(args.model, args.jobs, args.quiet)
    post = _check_event_options(tagger, args)
    classes = _classes(tagger)
    Y, _ = encode_tags(data.tags, classes, kind="names", name="the data", known_as=f"the model's tags {classes}")
    proba = np.empty(Y.shape, dtype=np.float32)
    est, durations, frames = [], {}, []
    run = AudioRun(args, extractor)
    done = []  # indices of the clips read
    with _progress(total=len(data.paths), desc="evaluate", unit="file", disable=args.quiet) as bar:
        for sl in chunks(len(data.paths), args.chunk):
            X, ok = run.extract(data.paths[sl], names[sl])
            idx = [sl.start + i for i in ok]
            done += idx
            if not X:
                pass
            elif strong is not None:
                chunk_names = [names[i] for i in idx]
                p, scores, _ = _frame_scores(tagger, X)
                d = [extractor.clip_duration(len(x)) for x in X]
                durations.update(zip(chunk_names, d))
                est += _events(post, scores, p, chunk_names, d, extractor)
                # PSDS sees the threshold-free event scores (AttLocTagger.event_scores)
                frames += list(zip(chunk_names, post.scores(scores, p, extractor.hop_seconds)))
                proba[idx] = p
            else:
                proba[idx] = tagger.predict_proba(X)
            bar.update(sl.stop - sl.start)
    _none_read(run, data.paths)
    run.warn_low_rates(len(data.paths))
    if run.skipped:  # evaluate the clips that were read, against their labels only
        Y, proba, names = Y[done], proba[done], [names[i] for i in done]
        if strong is not None:
            read = set(names)
            strong = [e for e in strong if e[0] in read]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined EERs are reported as "n/a" below
        eer = np.atleast_1d(equal_error_rate(Y, proba, average=None))
    seg = ev = sed = None
    if strong is not None:
        bad = sorted({e[3] for e in strong} - set(classes))
        if bad:
            raise CLIError(f"the strong labels have tags {bad} that the model does not know (its tags: {classes})")
        from .metrics import event_based_metrics

        seg = segment_based_metrics(strong, est, classes, segment_length=args.segment_length,
                                    filenames=names, durations=durations)
        ev = event_based_metrics(strong, est, classes, t_collar=0.2, percentage_of_length=0.2, filenames=names)
        sed = _sed_scores_metrics(strong, est, frames, classes, durations, extractor)
    rows = []
    for k, c in enumerate(classes):
        row = {"tag": c, "n_clips": int(Y[:, k].sum()), "eer": float(eer[k])}
        if seg is not None:
            cw = seg["class_wise"][c]
            row.update(segment_f1=cw["f_measure"], segment_precision=cw["precision"],
                       segment_recall=cw["recall"], segment_error_rate=cw["error_rate"],
                       event_f1=ev["class_wise"][c]["f_measure"])
            if sed is not None:
                row.update(intersection_f1=sed["intersection"]["class_wise"][c]["f_measure"],
                           psds1=sed["psds1_class"].get(c, float("nan")), psds2=float("nan"))
        rows.append(row)
    summary = {"tag": "macro" if seg is None else "macro (EER, PSDS, intersection F1) / overall (segment, event F1)",
               "n_clips": len(names), "eer": float(np.nanmean(eer)) if np.isfinite(eer).any() else float("nan")}
    if seg is not None:
        summary.update(segment_f1=seg["f_measure"], segment_precision=seg["precision"],
                       segment_recall=seg["recall"], segment_error_rate=seg["error_rate"], event_f1=ev["f_measure"])
        if sed is not None:
            summary.update(intersection_f1=sed["intersection"]["f_measure"], psds1=sed["psds1"], psds2=sed["psds2"])
    rows.append(summary)
    _print_table(rows, sys.stdout)
    if strong is None:
        print("(no strong labels: give --strong or DATA/strong.tsv for the segment and event metrics)", file=sys.stderr)
    elif sed is None:
        print('(PSDS and intersection F1 need sed_scores_eval: pip install "skattloc[psds]")', file=sys.stderr)
    else:
        print("(event F1: onset collar 0.2 s, offset collar max(0.2 s, 20 %); intersection F1: DTC = GTC = 0.5; "
              "PSDS1/PSDS2 of the event scores (frame scores median-filtered, times the clip probability), "
              "DCASE task 4 scenarios; per-tag psds1 is the tag's own area)", file=sys.stderr)
    if out is not None:
        fields = list(rows[0])
        table = [[f"{r.get(k):.6f}" if isinstance(r.get(k), float) else r.get(k, "") for k in fields] for r in rows]
        write_output(out, "report CSV", write_csv(fields, table))
    report_skipped(args, run.skipped, out)
    if out is not None:
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _sed_scores_metrics(strong, est, frames, classes, durations, extractor):
    """PSDS1, PSDS2 (of the frame scores) and intersection F1 (of the events), or None
    without sed_scores_eval (the optional 'psds' extra)."""
    from . import sed_scores

    try:
        sed_scores.check_available()
    except ImportError:
        return None
    names = [n for n, _ in frames]
    scores = [sc for _, sc in frames]
    tagged = sorted({e[3] for e in strong})
    if not tagged:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inter = sed_scores.intersection_f1(strong, est, classes, names, durations, dtc_threshold=0.5, gtc_threshold=0.5)
        # PSDS needs reference events of every tag it scores: the tags that have some
        idx = [classes.index(c) for c in tagged]
        sub = [sc[:, idx] for sc in scores]
        kw = dict(hop_s=extractor.hop_seconds, offset_s=extractor.frame_offset_seconds)
        p1, d1 = sed_scores.psds(strong, sub, tagged, names, durations, scenario=1, return_details=True, **kw)
        p2 = sed_scores.psds(strong, sub, tagged, names, durations, scenario=2, **kw)
    return {"intersection": inter, "psds1": float(p1), "psds2": float(p2),
            "psds1_class": {c: float(v) for c, v in d1.get("class_wise", {}).items()}}


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
    except KeyboardInterrupt as exc:
        hint = getattr(exc, "skattloc_hint", "")
        print(f"skattloc {args.command}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
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

