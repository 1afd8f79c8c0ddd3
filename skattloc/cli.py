"""The ``skattloc`` command line: train, tag, localize and evaluate on folders of audio files.

Run ``skattloc --help`` for the commands and ``skattloc COMMAND --help`` for their options
and examples. This module parses options, shows progress and prints; every step is
library API (:func:`skattloc.load_weak_dataset`, :class:`skattloc.LogMelExtractor`,
:mod:`skattloc.inference`, the model's event post-processing, :mod:`skattloc.evaluation`),
and the files of a run (inputs, outputs, the loop over audio files) are
:mod:`skattloc._cliio`. Exit status: 0 on success, 1 for a problem with the input (one line,
no traceback unless ``--debug`` or ``SKATTLOC_DEBUG=1``), 2 for a malformed command line,
130 when interrupted. See ``docs/cli.md`` and ``docs/reliability.md``.
"""
from __future__ import annotations

import argparse
import ast
import math
import os
import re
import sys
import time
import warnings

from ._cliio import (
    check_validation_split,
    progress as _progress,
    train_progress,
    read_unlabeled,
    AUDIO_EXTENSIONS,
    AudioRun,
    CLIError,
    audio_inputs,
    check_event_lengths,
    check_checkpoint,
    collect_audio,
    data_inputs,
    figure_paths,
    guard_outputs,
    labelled_run,
    load_model,
    output_path,
    plot_file,
    read_labelled,
    report_skipped,
    resume_hint,
    tag_cell,
    write_csv,
    write_output,
)

from .params import choices

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
  DATA/weak.csv           columns filename,tags[,fold]; tags (no comma, tab or line
                          break inside a tag) comma-joined, quoted:
                            filename,tags,fold
                            a.wav,"speech,dog",1
                            b.wav,,2          (no event)
or a CSV file with columns path,tags[,fold] (paths relative to the CSV's folder).

examples:
  skattloc fit my_data/ -o tagger.skattloc
  skattloc fit my_data/ -o tagger.skattloc --folds 1,2,3 --epochs 30 --seed 0
  skattloc fit clips.csv -o tagger.skattloc --pooling att --rnn-hidden 64 --lr 3e-3
  skattloc fit my_data/ -o tagger.skattloc --accelerator gpu --param spec_augment=2
  # the paper's own configuration (per-frame CNN, 3 GRU layers of 128, att_loc, 20 epochs)
  skattloc fit my_data/ -o paper.skattloc --paper
  # the DCASE task 4 baseline CRNN, from scratch (skattloc.DESED_CONFIG)
  skattloc fit my_data/ -o desed.skattloc --desed
  # checkpoint every epoch; after Ctrl-C or a crash, continue with the same command + --resume
  skattloc fit my_data/ -o models/ --checkpoint-dir runs/tagger --epochs 50
  skattloc fit my_data/ -o models/ --checkpoint-dir runs/tagger --epochs 50 --resume
"""

_TUNE_EPILOG = """\
DATA holds clips the model did not train on (a folder with audio/ and weak.csv, or a CSV
of path,tags; --folds picks folds). With event times (DATA/strong.tsv or --strong, whose
filenames are the clips' names as DATA lists them, or their file names alone), the per-tag
event settings of 'localize' are tuned for the best event-based F1 on these clips; with clip
tags only (--weak), calibrated as 'fit' does. The network is unchanged.

examples:
  skattloc tune tagger.skattloc my_data/ --folds 4 -o tuned.skattloc
  skattloc tune tagger.skattloc val.csv --strong val_events.tsv -o tuned.skattloc
  skattloc tune tagger.skattloc my_data/ --folds 4 --weak -o tuned.skattloc
"""

_PREDICT_EPILOG = """\
output: a CSV with one row per file: filename, tags (the predicted tags, comma-joined; a
tag that holds a comma is quoted inside the cell), then proba_<tag> (clip probability) and
pred_<tag> (0/1, proba >= threshold) per tag.

examples:
  skattloc predict tagger.skattloc recordings/ -o tags.csv
  skattloc predict tagger.skattloc a.wav b.flac -o tags.csv --threshold 0.3
  # go on past unreadable files; they are listed on stderr and in tags.csv.skipped.tsv
  skattloc predict tagger.skattloc recordings/ -o tags.csv --on-error skip
"""

_LOCALIZE_EPILOG = """\
output: a DCASE event list, tab-separated with the header filename, onset, offset,
event_label (seconds), as read by sed_eval, psds_eval and sed_scores_eval.

Per file and tag, the frame scores (AttLocTagger.localize, in [0, 1]) are median-filtered;
an event starts where the score reaches --frame-threshold and lasts while it stays at or
above --threshold-low; gaps shorter than --min-gap are merged, events shorter than
--min-duration dropped; only tags whose clip probability passes the clip gate get events.
The settings are per tag and stored in the model ('fit' calibrates them, 'tune' tunes them);
an option here overrides them for this run (per tag: dog=0.3,cat=0.6).

examples:
  skattloc localize tagger.skattloc recordings/ -o events.tsv
  skattloc localize tagger.skattloc recordings/ -o events.tsv --plot-dir plots/
  skattloc localize tagger.skattloc a.wav -o events.tsv --frame-threshold dog=0.3,cat=0.6
  skattloc localize tagger.skattloc recordings/ -o events.tsv --median-filter 0.2 --min-gap 0.5
"""

_EVALUATE_EPILOG = """\
DATA is a folder (audio/, weak.csv, optional strong.tsv) or a CSV of paths and tags. Prints
skattloc.evaluation.evaluate_tagger's report per tag: the clip-level EER (DCASE 2016 Task 4)
and, with event times (DATA/strong.tsv or --strong), for the events 'localize' would write
(same options): 1 s segment-based F1/ER, event-based F1/ER (collars 0.2 s / 20 %) and, with
sed_scores_eval (pip install "skattloc[psds]"), intersection F1 and PSDS1/PSDS2.

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


def _number(text, what, convert, check):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not check(value):  # NaN fails every check
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_int(text):
    return _number(text, "a positive integer", int, lambda v: v >= 1)


def _batch_size(text):
    return text if text == "auto" else _number(text, 'a positive integer or "auto"', int, lambda v: v >= 1)


def _resamples(text):
    return _number(text, "a number of resamples >= 0", int, lambda v: v >= 0)


def _jobs(text):  # joblib's n_jobs: 1, 2, ... threads, or -1 (all cores), -2 (all but one)...; never 0
    return _number(text, "a number of jobs: 1, 2, ... or -1 for every core (not 0)", int, lambda v: v != 0)


def _nonneg_float(text):
    return _number(text, "a finite number >= 0", float, lambda v: math.isfinite(v) and v >= 0)


def _fraction(text):
    return _number(text, "a number in [0, 1]", float, lambda v: 0 <= v <= 1)


def _folds(text):
    parse = lambda t: [int(f) for f in t.split(",") if f.strip()]  # noqa: E731
    return _number(text, "comma-separated fold numbers such as 1,2,3", parse, bool)


def _key_value(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        parsed = value.strip()
    return key.strip().replace("-", "_"), parsed


def _devices(text):
    """Lightning ``devices``: an int (``2``, ``-1`` for all GPUs), a list (``0,1``) or a name
    (``auto``); Lightning judges the value (see :func:`skattloc.training.check_trainer_settings`)."""
    try:
        return int(text) if "," not in text else [int(d) for d in text.split(",") if d.strip()]
    except ValueError:
        if "," not in text:
            return text.strip()
        raise argparse.ArgumentTypeError(
            f"expected a number of devices (1, 2, -1), device indices such as 0,1, or auto; got {text!r}") from None


def _frame_threshold(text):
    """``0.5`` or ``dog=0.3,cat=0.6``; frame scores are in [0, 1], so thresholds are too."""
    if "=" not in text:
        return _fraction(text)
    out = {}
    for item in filter(str.strip, text.split(",")):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected a number or TAG=VALUE pairs such as dog=0.3,cat=0.6, got {text!r}")
        tag, value = item.rsplit("=", 1)
        try:
            out[tag.strip()] = _fraction(value)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{tag.strip()}={value.strip()}: {exc}") from None
    return out


def _add_common(p, chunk=True):
    if chunk:
        p.add_argument("--chunk", type=_positive_int, default=64, help="files processed (and held in memory) at a time")
    p.add_argument("-j", "--jobs", type=_jobs, default=None, help="parallel feature-extraction jobs (threads)")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="unreadable or missing audio files: stop with an error (raise), or skip them and list "
                   "them at the end, on stderr and in OUTPUT.skipped.tsv (skip)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output file of another kind (never an input of the run)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input problems")


def _add_audio_inputs(p):
    p.add_argument("model", metavar="MODEL", help="model file written by 'skattloc fit'")
    p.add_argument("inputs", metavar="AUDIO", nargs="+",
                   help="audio files and/or folders (searched recursively, following links to folders)")
    p.add_argument("--ext", default=",".join(e.lstrip(".") for e in AUDIO_EXTENSIONS),
                   help="comma-separated extensions picked up in folders")


def _add_labelled_inputs(p, what):
    """MODEL and DATA (labelled clips, with folds and optional event times) of 'tune' and 'evaluate'."""
    p.add_argument("model", metavar="MODEL", help="model file written by 'skattloc fit'")
    p.add_argument("data", metavar="DATA", help=f"data folder (audio/ + weak.csv) or CSV of path,tags: the {what}")
    p.add_argument("--folds", type=_folds, default=None, help="use only these folds of weak.csv")
    p.add_argument("--strong", default=None, metavar="TSV",
                   help="event list (tab-separated filename, onset, offset, event_label) of the clips; a filename "
                   "is a clip's name as DATA lists it, or its file name alone (default: DATA/strong.tsv)")


def _add_event_options(p):
    g = p.add_argument_group(
        "event options (default: the model's event settings, calibrated in 'fit' or set by 'skattloc tune')")
    for opt, kw in (
        ("--frame-threshold", dict(type=_frame_threshold, metavar="T", help="score at which an event starts, in "
                                   "[0, 1]: one number, or TAG=VALUE pairs (dog=0.3,cat=0.6) covering every tag; the "
                                   "model's low/high ratio is kept unless --threshold-low is given")),
        ("--threshold-low", dict(type=_frame_threshold, metavar="T", help="score down to which an event extends "
                                 "(hysteresis), at most --frame-threshold")),
        ("--localization", dict(metavar="NAME", help=f"frame quantity to threshold: {', '.join(choices('localization'))}"
                                " (default: the model's 'localization'; see the user guide)")),
        ("--median-filter", dict(type=_nonneg_float, metavar="SECONDS", help="median filter length on the frame "
                                 "scores (0: off); shorter than the longest input")),
        ("--min-duration", dict(type=_nonneg_float, metavar="SECONDS", help="drop shorter events; shorter than the "
                                "longest input")),
        ("--min-gap", dict(type=_nonneg_float, metavar="SECONDS", help="merge events closer than this")),
        ("--clip-threshold", dict(type=_fraction, metavar="P", help="clip probability a tag needs to get events "
                                  "(the clip gate)")),
        ("--no-clip-gate", dict(action="store_true", help="make events for every tag, whatever its clip probability")),
    ):
        g.add_argument(opt, **kw)


#: fit's options that set AttLocTagger parameters: group -> (option, parameter, add_argument keywords).
_FIT_OPTIONS = {
    "model (AttLocTagger parameters; unset options keep the estimator's defaults, the recipe of docs/benchmarks.md)": [
        ("--pooling", "pooling", dict(help="how frame outputs become clip probabilities: {choices}")),
        ("--n-filters", "n_filters", dict(type=_positive_int, help="CNN channels/filters")),
        ("--kernel-size", "kernel_size", dict(type=_positive_int, help="kernel length in mel bands of the paper's "
                                              "per-frame CNN, at most --n-mels")),
        ("--rnn-hidden", "rnn_hidden", dict(type=_positive_int, help="GRU units per direction")),
        ("--rnn-layers", "rnn_layers", dict(type=_positive_int, help="bidirectional GRU layers")),
        ("--dense-units", "dense_units", dict(type=_positive_int, help="units of the dense ReLU layer")),
        ("--dropout", "dropout", dict(type=_fraction, help="dropout after the dense layer")),
        ("--threshold", "threshold", dict(type=_fraction, help="clip decision threshold stored in the model")),
        ("--localization", "localization", dict(help="frame output of 'localize': {choices} (see the user guide)")),
    ],
    "training": [
        ("--epochs", "max_epochs", dict(type=_positive_int, help="passes over the training data")),
        ("--batch-size", "batch_size", dict(type=_batch_size, help="clips per step, or auto (100, fewer "
                                            "for small data: at least 10 steps an epoch)")),
        ("--lr", "learning_rate", dict(type=float, help="Adam learning rate")),
        ("--validation-fraction", "validation_fraction", dict(
            type=_fraction, help="clips held out for validation, early stopping and the event calibration")),
        ("--early-stopping", "early_stopping", dict(
            action=argparse.BooleanOptionalAction, help="stop when the validation metric stops improving "
            "(default: whenever there is a validation split)")),
        ("--seed", "random_state", dict(type=int, help="random seed (same model every run on the CPU)")),
        ("--accelerator", "accelerator", dict(help="Lightning accelerator: cpu, gpu, auto...")),
        ("--devices", "devices", dict(type=_devices, help="Lightning devices: 1, 2, auto, 0,1...")),
        ("--precision", "precision", dict(help="Lightning precision, e.g. bf16-mixed on a GPU")),
        ("--checkpoint-dir", "checkpoint_dir", dict(metavar="DIR", help="write DIR/last.ckpt after every epoch, "
                                                    "to resume an interrupted run with --resume")),
        ("--resume", "resume", dict(action="store_true", help="continue the interrupted run whose checkpoint is in "
                                    "--checkpoint-dir, with its seed; --epochs may raise its budget")),
    ],
}
#: AttLocTagger parameter -> the option that sets it, for messages in the command line's words.
_OPTION_OF = {param: opt for group in _FIT_OPTIONS.values() for opt, param, _ in group} | {"n_mels": "--n-mels"}


#: Event setting -> the option (attribute of args) that overrides it.
_EVENT_OPTIONS = {"threshold": "frame_threshold", "threshold_low": "threshold_low", "median_filter": "median_filter",
                  "min_gap": "min_gap", "min_duration": "min_duration"}


def _cli_words(text, options=None):
    """A library message with the parameters that options set named as those options
    (fit's options, or ``{setting: args attribute}``)."""
    names = _OPTION_OF if options is None else {k: "--" + v.replace("_", "-") for k, v in options.items()}
    for param, opt in names.items():
        text = re.sub(rf"(?<![\w-]){param}(?=\s*[=<>]|\s+(?:must|needs|dict|values)\b|$)", opt, text)
    return text


def build_parser():
    """The ``argparse`` parser of the ``skattloc`` command (for docs and tests)."""
    from ._version import __version__
    from .estimator import AttLocTagger  # no torch: the estimator imports it when fitting

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

    def command(name, func, help, description, epilog):
        p = sub.add_parser(name, help=help, description=description, epilog=epilog, formatter_class=_Formatter)
        p.set_defaults(func=func)
        return p

    p = command("fit", _cmd_fit, "train a tagger on weakly labelled audio and write a model file",
                "Train an AttLocTagger on clip-level tags and write a model file.", _FIT_EPILOG)
    p.add_argument("data", metavar="DATA", help="data folder (audio/ + weak.csv) or CSV of path,tags")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model file to write (e.g. tagger.skattloc); a folder ending in / gets model.skattloc")
    p.add_argument("--folds", type=_folds, default=None, help="train only on these folds of weak.csv, e.g. 1,2,3")
    g = p.add_argument_group("every label you have (see the user guide)")
    g.add_argument("--strong", default=None, metavar="TSV",
                   help="event times of some clips of DATA, to train on (tab-separated filename, onset, offset, "
                   "event_label; a filename is a clip's name as DATA lists it, or its file name alone); clips in it "
                   "are timed, the others keep their tags alone. Not read unless given")
    g.add_argument("--unlabeled", default=None, metavar="FOLDER_OR_CSV",
                   help="audio without tags, for the mean teacher: a folder (searched recursively) or a CSV whose "
                   "first column lists paths (relative to the CSV's folder)")
    d = AttLocTagger().get_params(deep=False)  # the options' defaults follow the estimator's
    for title, options in _FIT_OPTIONS.items():
        g = p.add_argument_group(title)
        if title.startswith("model"):
            start = g.add_mutually_exclusive_group()
            start.add_argument("--paper", action="store_true",
                               help="start from the paper's configuration (skattloc.PAPER_CONFIG: per-frame CNN, "
                               "3 GRU layers of 128, att_loc, 20 epochs); other options still apply")
            start.add_argument("--desed", action="store_true",
                               help="start from the DCASE task 4 baseline CRNN (skattloc.DESED_CONFIG: 7 GLU conv "
                               "blocks, 2 GRU layers of 128, up to 200 epochs); other options still apply")
        for opt, param, kw in options:
            kw = dict(kw, default=None, dest=opt.lstrip("-").replace("-", "_"))
            found = choices(param)
            kw["help"] = kw["help"].format(choices=", ".join(map(str, found or ())))
            if "default" not in kw["help"] and kw.get("action") != "store_true" and d[param] is not None:
                kw["help"] += f" (default {d[param]})"
            g.add_argument(opt, **kw)
        if title.startswith("model"):
            g.add_argument("--param", type=_key_value, action="append", default=[], metavar="NAME=VALUE",
                           help="any other AttLocTagger parameter, e.g. --param spec_augment=2 (repeatable)")
    g = p.add_argument_group("features (LogMelExtractor; stored in the model file)")
    g.add_argument("--sr", type=_positive_int, default=16000, help="sampling rate in Hz (files are resampled)")
    g.add_argument("--n-mels", type=_positive_int, default=40, help="mel bands")
    _add_common(p, chunk=False)

    p = command("predict", _cmd_predict, "clip-level tag probabilities and decisions of audio files (CSV)",
                "Tag audio files: per-tag clip probabilities and 0/1 decisions, as CSV.", _PREDICT_EPILOG)
    _add_audio_inputs(p)
    p.add_argument("-o", "--output", default="predictions.csv", metavar="CSV",
                   help="CSV file to write; a folder ending in / gets predictions.csv")
    p.add_argument("--threshold", type=_fraction, default=None, help="decision threshold (default: the model's)")
    _add_common(p)

    p = command("localize", _cmd_localize, "sound events (onset, offset, tag) of audio files (DCASE TSV)",
                "Find when each tagged event happens: a DCASE event list, and optionally a figure per file.",
                _LOCALIZE_EPILOG)
    _add_audio_inputs(p)
    p.add_argument("-o", "--output", default="events.tsv", metavar="TSV",
                   help="event list to write; a folder ending in / gets events.tsv")
    p.add_argument("--plot-dir", default=None, metavar="DIR",
                   help="write one PNG figure per file into DIR (FILE.png; replaces only earlier figures "
                   "unless --force)")
    _add_event_options(p)
    _add_common(p)

    p = command("tune", _cmd_tune, "set a model's event post-processing from validation clips (strong or weak labels)",
                "Tune (event times) or calibrate (clip tags) the per-tag event settings of a model on validation "
                "clips, and write the model with them.", _TUNE_EPILOG)
    _add_labelled_inputs(p, "validation clips")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model file to write (not MODEL itself); a folder ending in / gets model.skattloc")
    p.add_argument("--weak", action="store_true", help="calibrate from the clip tags even when event times exist")
    _add_common(p)

    p = command("evaluate", _cmd_evaluate, "per-tag EER; segment and event F1 and PSDS with strong labels",
                "Evaluate a model on labelled audio: per-tag EER, and with event times the segment- and "
                "event-based F1 and error rate of the events and the PSDS of the frame scores.", _EVALUATE_EPILOG)
    _add_labelled_inputs(p, "clips to evaluate")
    p.add_argument("--segment-length", type=float, default=1.0, metavar="SECONDS", help="segment length of the F1")
    p.add_argument("--bootstrap", type=_resamples, default=0, metavar="N",
                   help="95 %% confidence intervals of the EER, F1 and PSDS from N resamples of the clips (e.g. 1000)")
    p.add_argument("-o", "--output", default=None, metavar="CSV",
                   help="also write the table as CSV; a folder ending in / gets report.csv")
    _add_event_options(p)
    _add_common(p)
    return parser


def _check_event_options(tagger, args):
    """The model's event post-processing with the command line's overrides
    (:meth:`AttLocTagger.get_event_postprocessor`); fails on a bad --localization or event
    option before any audio is read."""
    from .params import validate_params

    try:
        if args.localization is not None:  # e.g. "loc" needs pooling="att_loc"
            validate_params({"localization": args.localization, "pooling": tagger.pooling})
            tagger.set_params(localization=args.localization)
        return tagger.get_event_postprocessor(**{k: getattr(args, opt) for k, opt in _EVENT_OPTIONS.items()},
                                              clip_threshold=False if args.no_clip_gate else args.clip_threshold)
    except ValueError as exc:
        pairs = any(isinstance(getattr(args, opt), dict) for opt in _EVENT_OPTIONS.values())
        raise CLIError(f"event options: {_cli_words(str(exc), _EVENT_OPTIONS)}" + (
            f" (TAG=VALUE pairs must give a value for every tag {_classes(tagger)})" if pairs else "")) from None


def _classes(tagger):
    return [str(c) for c in tagger.classes_]


def _fit_params(args):
    """The AttLocTagger parameters that fit's options ask for, checked (CLIError in the
    command line's words)."""
    from .params import DESED_CONFIG, PAPER_CONFIG, check_architecture, defaults, names, validate_params

    params = dict(PAPER_CONFIG) if args.paper else dict(DESED_CONFIG) if getattr(args, "desed", False) else {}
    for opt, param, kw in (o for group in _FIT_OPTIONS.values() for o in group):
        value = getattr(args, opt.lstrip("-").replace("-", "_"))
        if value is not None and not (value is False and kw.get("action") == "store_true"):
            params[param] = value
    for key, value in args.param:
        if key not in defaults():
            raise CLIError(f"--param {key}: AttLocTagger has no parameter {key!r}; known: {', '.join(sorted(defaults()))}")
        params[key] = value
    try:
        validate_params(params)
        values = {**defaults(), **params}
        check_architecture(n_mels=args.n_mels, **{k: values[k] for k in names("network")})
    except ValueError as exc:
        raise CLIError(_cli_words(str(exc))) from None
    return params


def _cmd_fit(args):
    from .estimator import AttLocTagger
    from .features import LogMelExtractor

    out = output_path(args.output, "model")
    params = _fit_params(args)
    data = read_labelled(args)
    if not any(data.tags) and not args.strong:
        raise CLIError(f"no clip of {args.data!r} has a tag; 'fit' needs clip-level tags")
    check_validation_split(params, len(data.paths))
    unlabeled = read_unlabeled(args.unlabeled, data.paths) if args.unlabeled else []
    inputs = data_inputs(args, data) + [(p, "an unlabeled audio input") for _, p in unlabeled]
    guard_outputs(out, "model", inputs + check_checkpoint(params), args)
    tagger = AttLocTagger(**params)
    from .training import check_trainer_settings  # imports torch and Lightning

    check_trainer_settings(tagger)  # bad Lightning settings fail before the long feature extraction
    extractor = LogMelExtractor(sr=args.sr, n_mels=args.n_mels, n_jobs=args.jobs, verbose=False)
    run = AudioRun(args, extractor, _progress)
    t0 = time.perf_counter()
    X, kept = run.read_all(data.paths, data.filenames, "features")
    tags = [data.tags[i] for i in kept]
    names = [data.filenames[i] for i in kept]
    events = [e for e in data.strong if e[0] in set(names)] if args.strong else None
    if not any(tags) and not events:
        raise CLIError(f"no readable clip of {args.data!r} has a tag; 'fit' needs clip-level tags")
    if unlabeled:
        XU, kept_u = run.read_all([p for _, p in unlabeled], [n for n, _ in unlabeled], "unlabeled features")
        X = type(X)(list(X) + list(XU), X.frame_timing)  # frames that keep their timing
        names += [f"unlabeled:{unlabeled[i][0]}" for i in kept_u]
        tags += [None] * len(kept_u)  # scikit-learn's mark of an unlabeled clip
    n_timed = len({e[0] for e in events or ()})
    print(f"{len(X)} clips ({sum(bool(t) for t in tags)} with tags): {sum(t is not None for t in tags) - n_timed} tagged, "
          f"{n_timed} timed, "
          f"{sum(t is None for t in tags)} unlabeled; {len({t for ts in tags if ts for t in ts})} tags; "
          f"features in {time.perf_counter() - t0:.1f} s"
          + (f"; {len(run.skipped)} unreadable file(s) skipped" if run.skipped else ""), file=sys.stderr)
    tagger.set_params(callbacks=None if args.quiet else [train_progress()])
    t0 = time.perf_counter()
    try:
        # X carries the extractor's frame timing: the tagger records it, and turns event times into frames
        tagger.fit(X, tags, events=events, filenames=names) if events or unlabeled else tagger.fit(X, tags)
    except KeyboardInterrupt as exc:
        exc.skattloc_hint = resume_hint(tagger)
        raise
    tagger.set_params(callbacks=None)
    write_output(out, "model file", lambda path: tagger.save(path, extractor=extractor))
    report_skipped(args, run.skipped, out)
    loss = tagger.history_[-1].get("train_loss", float("nan")) if tagger.history_ else float("nan")
    print(f"trained {tagger.n_epochs_} epoch(s) in {time.perf_counter() - t0:.1f} s (final train_loss {loss:.4f}); "
          f"tags: {', '.join(_classes(tagger))}\n{_event_settings_line(tagger)}\nwrote {out}", file=sys.stderr)
    return 0


def _event_settings_line(tagger):
    """One line on where the model's event post-processing comes from."""
    src, n = tagger.event_settings_.get("source", "default"), tagger.event_settings_.get("info", {}).get("n_clips")
    return "event settings: " + {
        "weak": f"calibrated on the clip tags of {n} held-out clips ('skattloc tune' with strong labels can refine them)",
        "strong": f"tuned on the event times of {n} clips",
    }.get(src, "defaults (no validation clips to calibrate them on; see 'skattloc tune')")


def _cmd_predict(args):
    out = output_path(args.output, "predictions")
    names, paths = collect_audio(args.inputs, args.ext, args)
    guard_outputs(out, "predictions", audio_inputs(args, paths), args)
    tagger, extractor = load_model(args)
    classes = _classes(tagger)
    threshold = tagger.threshold if args.threshold is None else args.threshold
    run = AudioRun(args, extractor, _progress)
    rows = []
    for X, idx in run.each_chunk(paths, names, "predict", args.chunk):
        for i, p in zip(idx, tagger.predict_proba(X) if X else ()):
            pred = (p >= threshold).astype(int)
            rows.append([names[i], tag_cell([c for c, d in zip(classes, pred) if d])]
                        + [f"{v:.6f}" for v in p] + [int(d) for d in pred])
    header = ["filename", "tags"] + [f"proba_{c}" for c in classes] + [f"pred_{c}" for c in classes]
    write_output(out, "predictions CSV", write_csv(header, rows))
    report_skipped(args, run.skipped, out)
    print(f"tagged {len(rows)} file(s) (threshold {threshold:g}); wrote {out}", file=sys.stderr)
    return 0


def _cmd_localize(args):
    from .events import write_events_tsv
    from .inference import forward

    out = output_path(args.output, "events")
    names, paths = collect_audio(args.inputs, args.ext, args)
    inputs = audio_inputs(args, paths)
    guard_outputs(out, "events", inputs, args)
    figures = None if args.plot_dir is None else figure_paths(args, names, inputs)
    check_event_lengths(args, paths)
    tagger, extractor = load_model(args)
    post = _check_event_options(tagger, args)
    classes, timing = _classes(tagger), tagger.frame_timing_
    keys = (tagger.localization,) + (("att",) if figures and tagger.model_.att is not None else ())
    run = AudioRun(args, extractor, _progress)
    events, n_done = [], 0
    for X, idx in run.each_chunk(paths, names, "localize", args.chunk):
        if not X:
            continue
        proba, per_clip, _ = forward(tagger, X, frames=keys)  # one pass: scores (and attention to plot)
        scores = per_clip[tagger.localization]
        events += post.decode(scores, proba, [names[i] for i in idx], timing=timing,
                              clip_duration=[timing.clip_duration(len(s)) for s in scores])
        for j, i in enumerate(idx if figures else ()):
            att = per_clip["att"][j] if "att" in per_clip else None
            plot_file(figures[i], names[i], X[j], scores[j], att, proba[j], classes, timing)
        n_done += len(idx)
    write_output(out, "event list", lambda path: write_events_tsv(events, path))
    report_skipped(args, run.skipped, out)
    print(f"{len(events)} event(s) in {len({e[0] for e in events})} of {n_done} file(s); wrote {out}"
          + (f" and {n_done} figure(s) to {args.plot_dir}" if figures else ""), file=sys.stderr)
    return 0


def _cmd_tune(args):
    out, data, strong, tagger, extractor = labelled_run(args, "model")
    if strong is not None and not strong:
        raise CLIError(f"the event list {data.strong_path!r} holds no event of the {len(data.paths)} clips of "
                       f"{args.data!r}; tuning on event times needs events (use --weak to calibrate from the clip tags)")
    run = AudioRun(args, extractor, _progress)
    X, kept = run.read_all(data.paths, data.filenames, "features", args.chunk)
    names = [data.filenames[i] for i in kept]
    before = tagger.event_settings_.get("source", "default")
    if strong is not None:
        strong = [e for e in strong if e[0] in set(names)]
        tagger.tune_events(X, reference=strong, filenames=names, verbose=not args.quiet)
        how = f"tuned on the event times of {len(X)} clips ({len(strong)} events)"
    else:
        tags = [data.tags[i] for i in kept]
        if not any(tags):
            raise CLIError(f"no readable clip of {args.data!r} has a tag; weak calibration needs clip tags")
        tagger.tune_events(X, tags)
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

    from .evaluation import evaluate_scores
    from .inference import frame_scores

    if args.segment_length <= 0 or not math.isfinite(args.segment_length):
        raise CLIError(f"--segment-length must be a positive number of seconds, got {args.segment_length}")
    out, data, strong, tagger, extractor = labelled_run(args, "report")
    if strong is not None:
        check_event_lengths(args, data.paths)
    post = _check_event_options(tagger, args)
    run = AudioRun(args, extractor, _progress)
    frames, proba, done = [], [], []
    for X, idx in run.each_chunk(data.paths, data.filenames, "evaluate", args.chunk):
        if X:
            scores, p = frame_scores(tagger, X)
            frames, done = frames + scores, done + idx
            proba.append(p)
    names = [data.filenames[i] for i in done]  # the clips read, against their labels only
    report = evaluate_scores(
        frames, np.concatenate(proba), [data.tags[i] for i in done], classes=_classes(tagger), postprocessor=post,
        timing=tagger.frame_timing_, reference=None if strong is None else [e for e in strong if e[0] in set(names)],
        filenames=names, segment_length=args.segment_length, bootstrap=args.bootstrap,
    )
    print(report.to_text(notes=False))
    notes = report.notes if strong is not None else ["no strong labels: give --strong or DATA/strong.tsv for the "
                                                     "segment and event metrics"]
    print("\n".join(f"({n})" for n in notes), file=sys.stderr)
    if out is not None:
        write_output(out, "report CSV", write_csv(*report.table()))
    report_skipped(args, run.skipped, out)
    if out is not None:
        print(f"wrote {out}", file=sys.stderr)
    return 0


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
        print(f"skattloc {args.command}: error: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = saved
