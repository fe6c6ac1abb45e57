"""ClipDataset: crops, padding and masks, ids, determinism, DataLoader workers, DistributedSampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sounds import tone, write
from wavesmith.db import ClipDataset, Database

RATE = 16000


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    src = root / "src"
    # long clips (crops inside them) and short ones (padded), labelled and not
    for i in range(12):
        seconds = 0.25 if i % 3 == 0 else 1.5
        write(src / ("kick" if i % 2 else "snare") / f"c{i}.wav", tone(100.0 + 50 * i, RATE, seconds), RATE)
    d = Database.create(root / "db", sample_rate=RATE, split_ratios="1,0,0")
    d.add([src], label_from="parent", progress=False)
    yield d
    d.close()


def test_item_has_the_batch_contract_types(db):
    ds = ClipDataset(db, split="train", crop_samples=8000)
    item = ds[0]
    assert item["audio"].shape == (1, 8000) and item["audio"].dtype == torch.float32
    assert item["mask"].shape == (8000,) and item["mask"].dtype == torch.float32
    for key in ("label", "speaker", "language", "length", "orig_rate"):
        assert item[key].dtype == torch.int64 and item[key].shape == ()
    assert item["speaker"].item() == -1  # no speakers in this database
    assert item["language"].item() == -1 and item["orig_rate"].item() == RATE
    assert item["label"].item() in (0, 1)
    assert isinstance(item["text"], str)


def test_short_clips_are_zero_padded_with_a_mask(db):
    ds = ClipDataset(db, crop_samples=8000)
    short = [i for i in range(len(ds)) if ds._loc[i, 2] < 8000]
    assert short
    for i in short:
        item = ds[i]
        n = int(ds._loc[i, 2])
        assert item["length"].item() == n
        assert item["mask"][:n].eq(1).all() and item["mask"][n:].eq(0).all()
        assert item["audio"][:, n:].eq(0).all()
        assert item["audio"][:, :n].abs().max() > 0.1


def test_crops_are_views_of_the_stored_audio(db):
    ds = ClipDataset(db, crop_samples=4000, seed=3)
    for i in range(len(ds)):
        start = ds.crop_start(i)
        full = db.audio(int(ds.clip_ids[i]))
        n = ds[i]["length"].item()
        np.testing.assert_array_equal(ds[i]["audio"][:, :n].numpy(), full[:, start : start + n])


def test_random_crops_are_deterministic_in_seed_epoch_and_index(db):
    a = ClipDataset(db, crop_samples=4000, seed=1)
    b = ClipDataset(db, crop_samples=4000, seed=1)
    long = [i for i in range(len(a)) if a._loc[i, 2] > 4000]
    starts = [a.crop_start(i) for i in long]
    assert starts == [b.crop_start(i) for i in long]
    assert len(set(starts)) > 1  # not all the same place
    a.set_epoch(1)
    assert [a.crop_start(i) for i in long] != starts  # a new epoch gives new crops
    c = ClipDataset(db, crop_samples=4000, seed=2)
    assert [c.crop_start(i) for i in long] != starts


def test_evaluation_crops_start_at_the_clip_start(db):
    ds = ClipDataset(db, crop_samples=4000, train=False)
    ds.set_epoch(5)
    assert all(ds.crop_start(i) == 0 for i in range(len(ds)))


def test_label_ids_index_the_database_labels(db):
    ds = ClipDataset(db, crop_samples=1000)
    for i in range(len(ds)):
        clip = next(c for c in db.clips() if c.id == ds.clip_ids[i])
        assert ds.labels[ds[i]["label"].item()] == clip.label


def test_whole_clips_when_crop_samples_is_none(db):
    ds = ClipDataset(db, crop_samples=None)
    item = ds[0]
    assert item["audio"].shape[1] == ds._loc[0, 2] and item["mask"].all()


def test_default_collate_gives_the_model_batch(db):
    ds = ClipDataset(db, crop_samples=2000)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["audio"].shape == (4, 1, 2000)
    assert batch["mask"].shape == (4, 2000)
    assert batch["label"].shape == (4,) and batch["label"].dtype == torch.int64
    assert isinstance(batch["text"], list) and len(batch["text"]) == 4


def test_dataloader_worker_processes_give_the_same_batches(db):
    ds = ClipDataset(db, crop_samples=3000, seed=7)
    ds[0]  # map the store in the parent first: workers must not reuse that map
    plain = [b["audio"] for b in torch.utils.data.DataLoader(ds, batch_size=3)]
    workers = [b["audio"] for b in torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)]
    assert len(plain) == len(workers)
    for a, b in zip(plain, workers, strict=True):
        torch.testing.assert_close(a, b)


def test_pickled_dataset_carries_no_memory_map(db):
    import pickle

    ds = ClipDataset(db, crop_samples=1000)
    ds[0]
    assert ds._reader._maps
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._reader._maps == {}
    torch.testing.assert_close(clone[1]["audio"], ds[1]["audio"])


def test_distributed_sampler_splits_items_between_ranks(db):
    from torch.utils.data.distributed import DistributedSampler

    ds = ClipDataset(db, crop_samples=1000)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(3)
        ds.set_epoch(3)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=sampler)
        seen.append([int(x) for b in loader for x in b["length"]])
        assert len(list(sampler)) == len(ds) // 2
    assert len(seen[0]) == len(seen[1]) == len(ds) // 2
    idx = [list(DistributedSampler(ds, num_replicas=2, rank=r, seed=0)) for r in range(2)]
    assert sorted(idx[0] + idx[1]) == list(range(len(ds)))


def test_dataset_opens_from_a_path(db):
    ds = ClipDataset(db.path, split="train", crop_samples=500)
    assert len(ds) == len(db.clips("train"))
    assert ds.sample_rate == RATE


def test_batched_indexing_equals_the_default_collate_of_items(db):
    from torch.utils.data import BatchSampler, SequentialSampler

    ds = ClipDataset(db, crop_samples=5000, seed=4)
    ds.set_epoch(2)
    indices = list(range(len(ds)))
    fast = ds[indices]
    slow = torch.utils.data.default_collate([ds[i] for i in indices])
    assert fast.keys() == slow.keys()
    for key in ("audio", "mask", "label", "speaker", "language", "length", "orig_rate"):
        assert fast[key].dtype == slow[key].dtype
        torch.testing.assert_close(fast[key], slow[key])
    assert fast["text"] == slow["text"]
    loader = torch.utils.data.DataLoader(ds, batch_size=None, sampler=BatchSampler(SequentialSampler(ds), 5, False))
    assert sum(b["audio"].shape[0] for b in loader) == len(ds)


def test_language_ids_and_original_rates_reach_items_and_batches(tmp_path):
    made = {}  # file name -> (language, original rate)
    for i, (rate, language) in enumerate([(8000, "en-us"), (16000, "fr-fr"), (22050, None), (8000, "fr-fr")]):
        write(tmp_path / f"c{i}.wav", tone(200.0 + 90 * i, rate, 0.3), rate)
        made[f"c{i}.wav"] = (language, rate)
    rows = "".join(f"{name},{language or ''}\n" for name, (language, _) in made.items())
    (tmp_path / "m.csv").write_text("path,language\n" + rows)
    with Database.create(tmp_path / "db", sample_rate=RATE, split_ratios="1,0,0") as d:
        d.add([], manifest=tmp_path / "m.csv", progress=False, workers=1)
        source = {c.id: c.source.rsplit("/", 1)[-1] for c in d.clips()}
        ds = ClipDataset(d, crop_samples=1000)
    assert ds.languages == ["en-us", "fr-fr"]
    expected = [made[source[int(i)]] for i in ds.clip_ids]
    names = [None, *ds.languages]  # id -1 -> None
    items = [ds[i] for i in range(len(ds))]
    assert [(names[x["language"].item() + 1], x["orig_rate"].item()) for x in items] == expected
    batch = ds[list(range(len(ds)))]
    assert batch["language"].dtype == batch["orig_rate"].dtype == torch.int64
    assert [(names[x + 1], r) for x, r in zip(batch["language"].tolist(), batch["orig_rate"].tolist(), strict=True)
            ] == expected


def test_data_info_keeps_languages_and_loads_checkpoints_from_before_them():
    from wavesmith.models.base import DataInfo

    info = DataInfo(16000, 1, ("a",), ("ann",), ("en-us", "fr-fr"))
    assert DataInfo.from_dict(info.to_dict()) == info
    assert info.language_id("fr-fr") == 1
    old = {"sample_rate": 16000, "channels": 1, "labels": ["a"], "speakers": ["ann"]}  # no "languages"
    assert DataInfo.from_dict(old) == DataInfo(16000, 1, ("a",), ("ann",)) and DataInfo.from_dict(old).languages == ()
