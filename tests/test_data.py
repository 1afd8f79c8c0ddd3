"""The training and inference data path (skattloc.data)."""
import numpy as np
import pytest
import torch

from skattloc import data as D
from skattloc.model import CGRNN


class _PerItem(D.ClipDataset):
    __getitems__ = None  # DataLoader then fetches clip by clip and collates a list


def _batches(loader):
    return [(x.clone(), lengths.clone(), None if y is None else y.clone()) for x, lengths, y in loader]


def _per_item_loader(X, Y, batch_size, seed, num_workers=0):
    loader = D.train_loader(X, Y, batch_size, seed, num_workers=num_workers)
    return torch.utils.data.DataLoader(_PerItem(X, Y), batch_size=batch_size, shuffle=True,
                                       generator=torch.Generator().manual_seed(seed), collate_fn=D.pad_collate,
                                       num_workers=num_workers), loader


@pytest.mark.parametrize("num_workers", [0, 1])
def test_one_gather_batches_equal_clip_by_clip_batches(num_workers):
    rng = np.random.RandomState(0)
    X = rng.randn(23, 7, 5).astype(np.float32)
    Y = (rng.rand(23, 3) > 0.5).astype(np.float32)
    reference, loader = _per_item_loader(X, Y, 5, seed=3, num_workers=num_workers)
    got, want = _batches(loader), _batches(reference)
    assert len(got) == len(want) == 5  # 23 clips, batches of 5: the last holds 3
    for (x, n, y), (x0, n0, y0) in zip(got, want):
        assert torch.equal(x, x0) and torch.equal(n, n0) and torch.equal(y, y0)
        assert x.dtype == torch.float32 and n.dtype == torch.int64 and y.dtype == torch.float32
    # the batches are X's rows in the seeded shuffle order
    order = np.concatenate([[int(np.flatnonzero((X == x[i].numpy()).all(axis=(1, 2)))[0]) for i in range(len(x))]
                            for x, _, _ in got])
    assert sorted(order.tolist()) == list(range(23)) and order.tolist() != list(range(23))


def test_gather_is_used_for_arrays_and_not_for_ragged_clips():
    X = np.zeros((4, 6, 2), np.float32)
    batch = D.ClipDataset(X, np.ones((4, 1), np.float32)).__getitems__([2, 0])
    x, lengths, y = D.pad_collate(batch)
    assert x.shape == (2, 6, 2) and lengths.tolist() == [6, 6] and y.shape == (2, 1)
    ragged = [np.ones((n, 2), np.float32) for n in (3, 5, 4)]
    items = D.ClipDataset(ragged).__getitems__([0, 1, 2])
    assert isinstance(items, list) and len(items) == 3
    x, lengths, y = D.pad_collate(items)
    assert x.shape == (3, 5, 2) and lengths.tolist() == [3, 5, 4] and y is None
    assert (x[0, 3:] == 0).all() and (x[2, 4:] == 0).all()


def test_inference_loader_covers_every_clip_once_in_length_order():
    clips = [np.full((n, 2), n, np.float32) for n in (5, 2, 9, 2)]
    loader = D.inference_loader(clips, batch_size=2)
    seen = [lengths.tolist() for _, lengths, _ in loader]
    assert seen == [[2, 2], [5, 9]]


def test_full_length_host_lengths_give_the_unmasked_output():
    torch.manual_seed(0)
    net = CGRNN(n_mels=8, n_classes=3, rnn_hidden=8, rnn_layers=1, dense_units=8, n_filters=4, kernel_size=3).eval()
    x = torch.randn(4, 11, 8)
    full = net(x, torch.full((4,), 11)).clip
    assert torch.allclose(full, net(x).clip, atol=0, rtol=0)
    short = net(x, torch.tensor([11, 11, 11, 6])).clip  # one padded clip changes only its own row
    assert torch.allclose(short[:3], full[:3], atol=1e-6) and not torch.allclose(short[3], full[3], atol=1e-4)


def _loaders(X, Y, num_workers=0):
    return D.train_loader(X, Y, 4, seed=0, num_workers=num_workers), D.train_loader(X[:3], Y[:3], 4, 0, shuffle=False)


def test_small_array_data_move_to_the_device_and_batches_come_from_there():
    X = np.random.RandomState(0).randn(10, 6, 3).astype(np.float32)
    Y = np.ones((10, 2), np.float32)
    train, val = _loaders(X, Y)
    nbytes = X.nbytes + Y.nbytes
    assert train.dataset.nbytes == nbytes
    # "meta" stands in for a GPU: tensors that only carry shape, dtype and device
    assert D.move_to_device_if_small([train, val], torch.device("meta"), free_bytes=4 * (nbytes + 3 * 6 * 3 * 4 + 24))
    x, lengths, y = next(iter(train))
    assert x.device.type == "meta" and y.device.type == "meta" and x.shape == (4, 6, 3)
    assert lengths.device.type == "cpu" and lengths.tolist() == [6] * 4  # lengths stay on the host
    assert next(iter(val))[0].device.type == "meta"


@pytest.mark.parametrize("case", ["too little free memory", "over the byte cap", "ragged clips", "worker processes"])
def test_data_stay_on_the_host_when_they_should(case, monkeypatch):
    X = np.zeros((8, 5, 2), np.float32)
    Y = np.ones((8, 1), np.float32)
    free = 10**9
    if case == "too little free memory":
        free = 4 * X.nbytes  # the data would take more than a quarter of it
    elif case == "over the byte cap":
        monkeypatch.setattr(D, "DEVICE_RESIDENT_MAX_BYTES", X.nbytes)
    loaders = _loaders(X, Y, num_workers=1 if case == "worker processes" else 0)
    if case == "ragged clips":
        loaders = [D.train_loader([np.zeros((n, 2), np.float32) for n in (3, 4)], Y[:2], 2, 0)]
    assert not D.move_to_device_if_small(loaders, torch.device("meta"), free_bytes=free)
    assert next(iter(loaders[0]))[0].device.type == "cpu"
