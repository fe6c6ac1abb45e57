from dataclasses import dataclass
from typing import Literal

import pytest

from wavesmith.config import dumps_toml, load_toml, resolve
from wavesmith.errors import WavesmithError


@dataclass
class M:
    layers: int = 10
    dilations: tuple[int, ...] = (1, 2)
    output: Literal["mulaw", "mol"] = "mulaw"
    dropout: float = 0.0


@dataclass
class T:
    lr: float = 1e-3
    steps: int | None = None
    compile: bool = False


def test_set_converts_types_and_finds_the_section():
    r = resolve({"model": M(), "train": T()}, sets=["layers=30", "train.lr=2e-4", "dilations=1,2,4", "compile=true"])
    assert r["model"].layers == 30 and r["model"].dilations == (1, 2, 4)
    assert r["train"].lr == 2e-4 and r["train"].compile is True


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(WavesmithError, match="valid keys.*layers"):
        resolve({"model": M(), "train": T()}, sets=["layerz=3"])


@pytest.mark.parametrize("item", ["layers=ten", "output=wav", "compile=maybe", "lr=nan"])
def test_wrong_types_are_refused_with_the_field_name(item):
    with pytest.raises(WavesmithError, match=item.split("=")[0]):
        resolve({"model": M(), "train": T()}, sets=[item])


def test_toml_tables_round_trip(tmp_path):
    r = resolve({"model": M(), "train": T()}, sets=["layers=3", "steps=7"])
    from wavesmith.config import to_dict

    path = tmp_path / "c.toml"
    path.write_text(dumps_toml({k: to_dict(v) for k, v in r.items()}))
    again = resolve({"model": M(), "train": T()}, toml=load_toml(path))
    assert again == r


@dataclass
class Grown:
    layers: int = 10
    window: tuple[float, float] = (-3.0, 6.0)  # a key added later, with a new default

    ABSENT = {"window": (-20.0, 20.0)}  # what configs saved before it behaved as


def test_a_key_an_old_config_lacks_keeps_the_old_behaviour_and_new_configs_get_the_default():
    from wavesmith.config import from_dict, to_dict

    assert from_dict(Grown, {"layers": 3}).window == (-20.0, 20.0)
    assert from_dict(Grown, to_dict(Grown())).window == (-3.0, 6.0)
    assert from_dict(Grown, {"layers": 3, "window": [-1.0, 2.0]}).window == (-1.0, 2.0)
    assert from_dict(M, {"layers": 3}).dropout == 0.0  # no ABSENT: the default


@pytest.mark.parametrize("bad", ["window=1", "window=[1,2,3]", "window=[a,2]"])
def test_a_fixed_length_pair_is_refused_with_the_wrong_count_or_type(bad):
    with pytest.raises(WavesmithError, match="window"):
        resolve({"model": Grown()}, sets=[bad])
    assert resolve({"model": Grown()}, sets=["window=[-1, 2.5]"])["model"].window == (-1.0, 2.5)
