"""Tests for skattloc.datasets (make_weak_events, load_weak_dataset, load_chime_home)."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skattloc.datasets import (
    CHIME_HOME_TAGS,
    EVENT_TYPES,
    load_chime_home,
    load_weak_dataset,
    make_weak_events,
)

SR = 16000


# ------------------------------------------------------------------ make_weak_events
def test_make_weak_events_shapes_and_dtypes():
    audio, Y, events = make_weak_events(n_clips=20, n_classes=4, duration=2.0, random_state=0)
    assert audio.shape == (20, 32000) and audio.dtype == np.float32
    assert Y.shape == (20, 4) and np.issubdtype(Y.dtype, np.integer)
    assert set(np.unique(Y)) <= {0, 1}
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 0.99
    for clip, onset, offset, label in events:
        assert isinstance(clip, int) and isinstance(label, str)
        assert 0.0 <= onset < offset <= 2.0


def test_make_weak_events_tags_match_events():
    audio, Y, events = make_weak_events(n_clips=60, n_classes=5, max_events=3, random_state=1)
    assert events == sorted(events)
    expected = np.zeros_like(Y)
    for clip, _, _, label in events:
        expected[clip, EVENT_TYPES.index(label)] = 1
    np.testing.assert_array_equal(Y, expected)
    assert (Y.sum(axis=1) == 0).any(), "some clips should have no event"
    assert Y.sum(axis=0).min() > 0, "every class should occur"


def test_make_weak_events_event_is_audible_only_inside_its_span():
    audio, Y, events = make_weak_events(
        n_clips=1, n_classes=1, max_events=1, empty_prob=0.0, noise_level=0.0, random_state=3
    )
    (_, onset, offset, label), = events
    assert label == "tone"
    start, stop = round(onset * SR), round(offset * SR)
    assert np.all(audio[0, :start] == 0) and np.all(audio[0, stop:] == 0)
    assert np.abs(audio[0, start:stop]).max() > 0


def test_make_weak_events_determinism_and_class_names():
    a1, Y1, e1 = make_weak_events(n_clips=10, random_state=42)
    a2, Y2, e2 = make_weak_events(n_clips=10, random_state=np.random.default_rng(42))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(Y1, Y2)
    assert e1 == e2
    a3, _, e3 = make_weak_events(n_clips=10, random_state=43)
    assert not np.array_equal(a1, a3) and e1 != e3
    _, Y4, e4 = make_weak_events(n_clips=10, class_names=["x", "y", "z"], random_state=42)
    np.testing.assert_array_equal(Y4, Y1)
    names = dict(zip(EVENT_TYPES, "xyz"))
    assert e4 == [(c, on, off, names[lab]) for c, on, off, lab in e1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_classes": 6}, "n_classes must be at most 5"),
        ({"n_clips": 0}, "n_clips must be an int >= 1"),
        ({"event_duration": (1.0, 0.5)}, "event_duration must be a"),
        ({"class_names": ["a", "a", "b"]}, "class_names must hold 3 distinct names"),
        ({"empty_prob": 1.5}, r"empty_prob must be in \[0, 1\]"),
    ],
)
def test_make_weak_events_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_weak_events(**kwargs)


# ------------------------------------------------------------------ load_weak_dataset
def _write_tree(root, weak, strong=None, audio=("a.flac", "b.flac", "c.flac")):
    (root / "audio").mkdir(parents=True)
    for i, name in enumerate(audio):
        sf.write(root / "audio" / name, np.full(800, 0.01 * (i + 1)), SR)
    (root / "weak.csv").write_text(weak)
    if strong is not None:
        (root / "strong.tsv").write_text(strong)
    return root


WEAK = 'filename,tags,fold\na.flac,"m,b",1\nb.flac,,2\nc.flac,f,1\n'
STRONG = "filename\tonset\toffset\tevent_label\na.flac\t0.000\t0.020\tm\na.flac\t0.010\t0.050\tb\nc.flac\t0.0\t0.05\tf\n"


def test_load_weak_dataset_tree(tmp_path):
    root = _write_tree(tmp_path / "ds", WEAK, STRONG)
    data = load_weak_dataset(root, load_audio=True)
    assert data.filenames == ["a.flac", "b.flac", "c.flac"]
    assert data.paths == [str((root / "audio" / f).resolve()) for f in data.filenames]
    assert data.classes == ["b", "f", "m"]
    np.testing.assert_array_equal(data.Y, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(data.folds, [1, 2, 1])
    assert data.strong == [("a.flac", 0.0, 0.02, "m"), ("a.flac", 0.01, 0.05, "b"), ("c.flac", 0.0, 0.05, "f")]
    assert data.audio.shape == (3, 800) and data.audio.dtype == np.float32
    assert data.root == str(root.resolve())


def test_load_weak_dataset_options(tmp_path):
    root = _write_tree(tmp_path / "ds", "filename,tags\na.flac,m\nb.flac,\nc.flac,m\n")
    data = load_weak_dataset(str(root), classes=["m", "x"])
    assert data.classes == ["m", "x"] and data.folds is None and data.strong is None and data.audio is None
    np.testing.assert_array_equal(data.Y, [[1, 0], [0, 0], [1, 0]])


@pytest.mark.parametrize(
    "weak, strong, kwargs, exc, match",
    [
        ("filename,label\na.flac,m\n", None, {}, ValueError,
         r"columns \['filename', 'label'\].*expected \['filename', 'tags'\].*missing \['tags'\]"),
        ("filename,tags,fold,extra\n", None, {}, ValueError, r"unknown \['extra'\]"),
        ("", None, {}, ValueError, "is empty"),
        ("filename,tags,fold\na.flac,m,one\n", None, {}, ValueError, "line 2: fold must be an integer"),
        ("filename,tags\na.flac,m\na.flac,b\n", None, {}, ValueError, "filenames twice: 'a.flac'"),
        (WEAK, None, {"classes": ["m", "b"]}, ValueError, r"tags outside classes=\['m', 'b'\]: 'f'"),
        ("filename,tags\na.flac,m\nz1.flac,\nz2.flac,\n", None, {}, FileNotFoundError,
         r"2 of 3 audio files are missing .*'z1.flac', 'z2.flac'"),
        (WEAK, "filename\tonset\toffset\tevent_label\nq.flac\t0\t1\tm\n", {}, ValueError,
         "1 filenames not listed in weak.csv: 'q.flac'"),
        (WEAK, "filename\tonset\toffset\tevent_label\na.flac\t0\t1\tdog\n", {}, ValueError,
         r"labels outside classes=\['b', 'f', 'm'\]: 'dog'"),
        (WEAK, "filename\tonset\toffset\na.flac\t0\t1\n", {}, ValueError, r"missing \['event_label'\]"),
        (WEAK, "filename\tonset\toffset\tevent_label\na.flac\t2\t1\tm\n", {}, ValueError,
         "need 0 <= onset <= offset"),
    ],
)
def test_load_weak_dataset_errors(tmp_path, weak, strong, kwargs, exc, match):
    root = _write_tree(tmp_path / "ds", weak, strong)
    with pytest.raises(exc, match=match):
        load_weak_dataset(root, **kwargs)


def test_load_weak_dataset_missing_many_files_names_five(tmp_path):
    rows = "".join(f"m{i}.flac,\n" for i in range(7))
    root = _write_tree(tmp_path / "ds", "filename,tags\n" + rows)
    with pytest.raises(FileNotFoundError, match=r"7 of 7 audio files .*'m4.flac', \.\.\.$") as info:
        load_weak_dataset(root)
    assert "m5.flac" not in str(info.value)


def test_load_weak_dataset_missing_folder_and_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        load_weak_dataset(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"weak label file not found: .*weak\.csv"):
        load_weak_dataset(tmp_path / "empty")
    (tmp_path / "noaudio").mkdir()
    (tmp_path / "noaudio" / "weak.csv").write_text(WEAK)
    with pytest.raises(FileNotFoundError, match="audio folder not found"):
        load_weak_dataset(tmp_path / "noaudio")


_DOMESTIC_MIX = [
    Path("/work/shared/data/domestic-mix"),
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "domestic-mix",
]


@pytest.mark.data
def test_real_domestic_mix():
    root = next((p for p in _DOMESTIC_MIX if (p / "weak.csv").is_file()), None)
    if root is None:
        pytest.skip(f"domestic-mix data not found at {[str(p) for p in _DOMESTIC_MIX]}")
    data = load_weak_dataset(root)
    assert len(data.filenames) == 2400 and data.Y.shape == (2400, 5)
    assert data.classes == ["b", "f", "m", "o", "p"]
    assert sorted(set(data.folds.tolist())) == [1, 2, 3, 4]
    assert len(data.strong) == 4286
    assert sf.info(data.paths[0]).frames == 64000


# ------------------------------------------------------------------ load_chime_home
def _write_chime(root, chunks, folds=None, majority=None, eval_chunks=()):
    """Tiny fake CHiME-Home tree: ``chime_home/chunks`` + chunk lists."""
    home = root / "chime_home"
    (home / "chunks").mkdir(parents=True)
    for i, (name, vote) in enumerate(zip(list(chunks) + list(eval_chunks), majority)):
        sf.write(home / "chunks" / f"{name}.16kHz.wav", np.full(SR // 2, 0.01 * (i + 1)), SR)
        (home / "chunks" / f"{name}.csv").write_text(
            f"chunkname,{name}\nsegmentname,{name.split('_chunk')[0]}\n"
            f"annotation_a1,{vote}\nannotation_a2,{vote}\nmajorityvote,{vote}\n"
        )
    (home / "development_chunks_refined.csv").write_text("".join(f"{i},{c}\n" for i, c in enumerate(chunks)))
    if folds is not None:
        (home / "development_chunks_refined_crossval_dcase2016.csv").write_text(
            "".join(f"{i},{c},{f}\n" for i, (c, f) in enumerate(zip(chunks, folds)))
        )
    (home / "evaluation_chunks_refined.csv").write_text("".join(f"{i},{c}\n" for i, c in enumerate(eval_chunks)))
    return home


DEV = ["CR_lounge_220110_0731.s0_chunk70", "CR_lounge_220110_0731.s0_chunk71", "CR_lounge_200110_1601.s1_chunk3"]


def test_load_chime_home_development(tmp_path):
    home = _write_chime(tmp_path, DEV, folds=[0, 4, 2], majority=["cp", "S", "mvbo"], eval_chunks=["E_chunk1"])
    for path in (tmp_path, home):  # parent folder or chime_home itself
        data = load_chime_home(path, load_audio=True)
        assert data.classes == list(CHIME_HOME_TAGS) == ["c", "m", "f", "v", "p", "b", "o"]
        assert data.filenames == [f"{c}.16kHz.wav" for c in DEV] and data.chunks == DEV
        assert data.paths[0] == str(home.resolve() / "chunks" / f"{DEV[0]}.16kHz.wav")
        np.testing.assert_array_equal(
            data.Y, [[1, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1, 1]]
        )
        np.testing.assert_array_equal(data.folds, [1, 5, 3])
        assert data.strong is None and data.audio.shape == (3, SR // 2)


def test_load_chime_home_evaluation_and_fallback(tmp_path):
    home = _write_chime(tmp_path, DEV[:1], majority=["f", "cU"], eval_chunks=["E_chunk1"])
    data = load_chime_home(home, subset="evaluation", classes=["c", "f"])
    assert data.chunks == ["E_chunk1"] and data.folds is None
    np.testing.assert_array_equal(data.Y, [[1, 0]])
    dev = load_chime_home(home)  # no cross-validation file: folds None
    assert dev.chunks == DEV[:1] and dev.folds is None
    np.testing.assert_array_equal(dev.Y, [[0, 0, 1, 0, 0, 0, 0]])


def test_load_chime_home_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="CHiME-Home folder not found"):
        load_chime_home(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="chunks folder not found"):
        load_chime_home(tmp_path)
    home = _write_chime(tmp_path, DEV, folds=[0, 1, 2], majority=["c", "x", "p"])
    with pytest.raises(ValueError, match="subset must be 'development' or 'evaluation'"):
        load_chime_home(home, subset="train")
    with pytest.raises(ValueError, match=r"tags outside classes=.*: 'x'"):
        load_chime_home(home)
    (home / "chunks" / f"{DEV[1]}.16kHz.wav").unlink()
    (home / "chunks" / f"{DEV[2]}.16kHz.wav").unlink()
    with pytest.raises(FileNotFoundError, match=rf"2 of 3 audio files are missing .*'{DEV[1]}.16kHz.wav'"):
        load_chime_home(home)
    (home / "development_chunks_refined_crossval_dcase2016.csv").write_text(f"0,{DEV[0]},0\n")
    (home / "chunks" / f"{DEV[0]}.csv").write_text(f"chunkname,{DEV[0]}\n")
    with pytest.raises(ValueError, match=r"chunk annotation .*chunk70\.csv' has no 'majorityvote' row"):
        load_chime_home(home)
    (home / "development_chunks_refined_crossval_dcase2016.csv").write_text(f"0,{DEV[0]},zero\n")
    with pytest.raises(ValueError, match="line 1: fold must be an integer"):
        load_chime_home(home)


# ------------------------------------------------------------------ issue 17: event names, checks
def test_match_event_names_by_listed_name_or_unique_file_name():
    from skattloc.datasets import match_event_names

    clips = ["audio/a.wav", "audio/b.wav", "x/c.wav", "y/c.wav"]
    assert match_event_names(["audio/a.wav", "b.wav"], clips) == (["audio/a.wav", "audio/b.wav"], 1)
    with pytest.raises(ValueError, match=r"several clips .* 'c.wav'.*give the clip's name as listed"):
        match_event_names(["c.wav"], clips)
    with pytest.raises(ValueError, match=r"1 filenames not listed in the clip list: 'd.wav'; .*file name alone"):
        match_event_names(["d.wav"], clips)


def test_load_weak_dataset_reads_another_event_list_for_a_csv_list(tmp_path):
    root = _write_tree(tmp_path / "ds", WEAK)
    (root / "list.csv").write_text('path,tags,fold\naudio/a.flac,"m,b",1\naudio/c.flac,f,2\n')
    (root / "ev.tsv").write_text("filename\tonset\toffset\tevent_label\na.flac\t0\t0.02\tm\nc.flac\t0\t0.05\tf\n")
    data = load_weak_dataset(root / "list.csv", strong=root / "ev.tsv", folds=[2])
    assert data.strong == [("audio/c.flac", 0.0, 0.05, "f")] and data.strong_by_file_name == 2
    assert data.strong_path == str(root / "ev.tsv")
    assert load_weak_dataset(root / "list.csv").strong is None
    with pytest.raises(FileNotFoundError, match="strong label file not found"):
        load_weak_dataset(root / "list.csv", strong=root / "none.tsv")


@pytest.mark.parametrize("listing, match", [
    ("path,tags\naudio/a.flac,m\naudio/b.flac,b\n./audio/a.flac,f\n", r"lists 1 audio file\(s\) twice: 'audio/a.flac = ./audio/a.flac'"),
    ('path,tags\naudio/a.flac,"m\tx"\n', r"line 2: the tag 'm\\tx' holds a tab"),
])
def test_csv_list_refuses_a_file_twice_and_tags_with_tabs(tmp_path, listing, match):
    root = _write_tree(tmp_path / "ds", WEAK)
    (root / "list.csv").write_text(listing)
    with pytest.raises(ValueError, match=match):
        load_weak_dataset(root / "list.csv")


def test_check_audio_false_keeps_listed_files_missing_from_disk(tmp_path):
    root = _write_tree(tmp_path / "ds", WEAK + "gone.flac,m,2\n")
    with pytest.raises(FileNotFoundError, match="gone.flac"):
        load_weak_dataset(root)
    data = load_weak_dataset(root, check_audio=False)
    assert data.filenames[-1] == "gone.flac" and data.paths[-1].endswith("gone.flac")


def test_a_comma_separated_event_list_is_named_as_such(tmp_path):
    root = _write_tree(tmp_path / "ds", WEAK, "filename,onset,offset,event_label\na.flac,0,1,m\n")
    with pytest.raises(ValueError, match="the header is comma-separated, but this file must be tab-separated"):
        load_weak_dataset(root)
